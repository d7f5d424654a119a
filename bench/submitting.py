"""What the bulk-submit benchmarks share: a `jobgate serve` of their own, and one timed
`submitJobs` of many jobs to it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.proc import running
from tests.processes import JOBGATE
from tests.servers import free_port

SUBMIT = """
mutation Submit($input: SubmitJobsInput!) {
  submitJobs(input: $input) { jobs { id } userErrors { code message } }
}
"""
TOKEN = "alice-secret"  # the one user of each benchmark's config


@contextlib.contextmanager
def serving(folder: Path, config: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`jobgate serve` with `config` (written to `folder`/jobgate.toml, its log beside it):
    its GraphQL URL, until the block ends."""
    (folder / "jobgate.toml").write_text(config)
    port = free_port()
    command = [str(JOBGATE), "serve", "--config", str(folder / "jobgate.toml"), "--port", str(port)]
    with (
        open(folder / "serve.log", "wb") as log,
        running(
            command,
            port,
            ready_timeout=15,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        ),
    ):
        yield f"http://127.0.0.1:{port}/graphql"


def timed_submit(url: str, jobs: list[dict[str, Any]]) -> tuple[float, list[str]]:
    """One `submitJobs` of `jobs`: the seconds until it answered, and the new jobs' ids (the
    benchmark fails on any user error, or a job missing)."""
    with httpx.Client(timeout=600) as http:
        started = time.perf_counter()
        response = http.post(
            url,
            json={"query": SUBMIT, "variables": {"input": {"jobs": jobs}}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        elapsed = time.perf_counter() - started
    payload = response.json()["data"]["submitJobs"]
    assert payload["userErrors"] == [], payload["userErrors"]
    ids = [job["id"] for job in payload["jobs"]]
    assert len(ids) == len(jobs)
    return elapsed, ids
