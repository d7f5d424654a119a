"""The two servers the jobs benchmark compares, run as their own processes.

- `graphql`: the whole jobgate app (`create_app`); `graphql-unkept` keeps no rendered jobs
  (`[server] kept_job_values = 0`: every job rendered afresh, as when every job changed since
  the last page); `graphql-nocache` has neither those nor the parser/validation caches;
  `graphql-nometrics` measures no operation.
- `bare`: one Starlette endpoint that reads the same jobs from the same store and returns the
  same JSON as the GraphQL query, by hand: the floor any GraphQL stack is measured against.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.lifted_limits import LIFTED_LIMITS
from jobgate.access import User
from jobgate.app import create_app
from jobgate.domain.job import Job, JobUpdate
from jobgate.domain.timestamps import serialize_datetime
from jobgate.server.config import tune_garbage_collector
from jobgate.settings import Settings
from jobgate.storage.base import JobQuery
from jobgate.storage.sqlite import SqliteJobStore

QUERY = """
query Jobs {
  jobs(first: 100) {
    nodes {
      id
      owner { createdBy project }
      createdAt
      status { state isFinal startedAt }
      specification { name replicas application { name version } product { id provider } }
      updates { cursor state status timestamp }
    }
  }
}
"""

USER = User.member_of("alice", {"proj-a"})


def job_json(job: Job, updates: list[JobUpdate]) -> dict[str, Any]:
    spec = job.specification
    return {
        "id": job.id,
        "owner": {"createdBy": job.owner.created_by, "project": job.owner.project},
        "createdAt": serialize_datetime(job.created_at),
        "status": {
            "state": job.status.state.value,
            "isFinal": job.status.state.is_final,
            "startedAt": None
            if job.status.started_at is None
            else serialize_datetime(job.status.started_at),
        },
        "specification": {
            "name": spec.name,
            "replicas": spec.replicas,
            "application": {"name": spec.application.name, "version": spec.application.version},
            "product": {"id": spec.product.id, "provider": spec.product.provider},
        },
        "updates": [
            {
                "cursor": str(u.seq),
                "state": None if u.request.state is None else u.request.state.value,
                "status": u.request.status,
                "timestamp": serialize_datetime(u.timestamp),
            }
            for u in updates
        ],
    }


def bare_app(db: Path) -> Starlette:
    store = SqliteJobStore(db)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    async def jobs(_request: Request) -> Response:
        page = await store.find_jobs(JobQuery(USER.visibility, limit=100))
        updates = await store.updates_of([job.id for job in page.jobs])
        nodes = [job_json(job, updates[job.id]) for job in page.jobs]
        return JSONResponse({"data": {"jobs": {"nodes": nodes}}})

    return Starlette(routes=[Route("/jobs", jobs)], lifespan=lifespan)


def graphql_app(
    db: Path,
    data_dir: Path,
    *,
    caches: bool,
    metrics: bool = True,
    kept_job_values: int | None = None,
    plans: bool = True,
) -> Starlette:
    """The gateway on `db`; `kept_job_values` as `server.kept_job_values` (None: its default)."""
    settings = Settings.model_validate(
        {
            "storage": {"url": f"sqlite://{db}"},
            "server": {
                "data_dir": str(data_dir),
                "graphiql": False,
                **({} if kept_job_values is None else {"kept_job_values": kept_job_values}),
            },
            "users": [{"username": "alice", "token": "bench-token", "projects": ["proj-a"]}],
            "limits": LIFTED_LIMITS,
            "operations": {"metrics": metrics},
        }
    )
    return create_app(settings, caches=caches, plans=plans)


# `server.kept_job_values` by mode. graphql-cold keeps at most one value, so every job's answer
# is evicted as soon as it is kept: each request completes all jobs afresh, as after every job
# changed, and pays for keeping them. graphql-unkept keeps none and computes no keys.
KEPT_JOB_VALUES = {"graphql-cold": 1, "graphql-unkept": 0, "graphql-core": 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "mode",
        choices=[
            "graphql",
            "graphql-cold",
            "graphql-unkept",
            "graphql-core",
            "graphql-nocache",
            "graphql-nometrics",
            "bare",
        ],
    )
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "bare":
        app = bare_app(args.db)
    else:
        app = graphql_app(
            args.db,
            args.db.parent,
            caches=args.mode != "graphql-nocache",
            metrics=args.mode != "graphql-nometrics",
            kept_job_values=KEPT_JOB_VALUES.get(args.mode),
            plans=args.mode != "graphql-core",
        )
    # As `jobgate serve` runs: both servers alike, so the ratio compares the code, not the
    # collector's settings.
    tune_garbage_collector()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        interface="asgi3",  # see jobgate.server.websocket_lane.LeanStarlette
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
