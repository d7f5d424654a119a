"""What the fault cases share: retrying clients and the checks every case ends with."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, WebSocketException

from tests.agent.setup import AgentProcess, write_agent_config, write_gateway_config
from tests.api.documents import SUBMIT, get_job
from tests.gateway import GraphQLClient, GraphQLError, WebSocketTarget, subscribe
from tests.processes import ServeProcess

Json = dict[str, Any]
# How long a careful client waits before it tries again, at first and at most.
RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 3.0


async def submit_until_accepted(
    client: GraphQLClient, spec: Json, key: str, *, timeout: float = 60
) -> str:
    """Submit one job with an idempotency key, retrying (same key) through any failure of the
    gateway, as a careful client does: backing off (exponentially, with jitter, so that fifty
    clients do not come back at once to a store that is slow already) and waiting as long as a
    refusal for its rate says; the id the gateway finally answers with."""
    deadline = asyncio.get_running_loop().time() + timeout
    backoff = RETRY_SECONDS
    while True:
        pause = backoff * random.uniform(0.5, 1.5)
        backoff = min(backoff * 2, MAX_RETRY_SECONDS)
        try:
            body = await client.raw(SUBMIT, {"input": {"jobs": [spec], "idempotencyKey": key}})
            if not body.get("errors"):
                payload = body["data"]["submitJobs"]
                assert payload["userErrors"] == [], payload["userErrors"]
                (job,) = payload["jobs"]
                job_id: str = job["id"]
                return job_id
            (error,) = body["errors"]
            extensions = error.get("extensions", {})
            assert extensions.get("code") in ("STORE_UNAVAILABLE", "RATE_LIMITED"), error
            pause = max(pause, extensions.get("retryAfter", 0))
        except (httpx.HTTPError, ValueError):
            pass  # the gateway is down, or went down mid-answer
        if asyncio.get_running_loop().time() + pause > deadline:
            raise AssertionError(f"submission {key} was never accepted")
        await asyncio.sleep(pause)


STATES = """query States($ids: [ID!]) {
  jobs(filter: {ids: $ids}, first: 100) { edges { node { id status { state } } } }
}"""
FINAL = ("SUCCESS", "FAILURE", "EXPIRED")


async def final_jobs(client: GraphQLClient, job_ids: list[str], timeout: float = 90) -> list[Json]:
    """Every job once it is final (polling their states, through gateway restarts, in one
    request a round: a client that polls each job apart runs out of its rate in a minute)."""
    deadline = asyncio.get_running_loop().time() + timeout
    left = set(job_ids)
    while left:
        with contextlib.suppress(httpx.HTTPError, ValueError, GraphQLError):
            ordered = sorted(left)
            for start in range(0, len(ordered), 100):
                data = await client.execute(STATES, {"ids": ordered[start : start + 100]})
                nodes = [edge["node"] for edge in data["jobs"]["edges"]]
                left -= {job["id"] for job in nodes if job["status"]["state"] in FINAL}
        if not left:
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"jobs {sorted(left)} did not end")
        await asyncio.sleep(0.5)
    jobs = []
    for job_id in job_ids:
        job = await get_job(client, job_id)
        assert job is not None, job_id
        jobs.append(job)
    return jobs


def states(job: Json) -> list[str]:
    return [u["state"] for u in job["updates"] if u["state"]]


class ResumingWatcher:
    """A careful watcher of every update a user can see: it subscribes from a cursor, and
    whenever the connection fails (the gateway died, the store went away) subscribes again
    after the last cursor it got, as the contract says a client should."""

    QUERY = "subscription($after: String) { jobUpdates(after: $after) { cursor jobId } }"

    def __init__(self, target: WebSocketTarget, after: str) -> None:
        self.target = target
        self.after = after
        self.seen: list[tuple[str, str]] = []  # (cursor, job id), in arrival order
        self.close_codes: list[int] = []  # how the gateway closed each connection it closed
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> ResumingWatcher:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                async with subscribe(self.target, self.QUERY, {"after": self.after}) as stream:
                    while not self._stop.is_set():
                        try:
                            data = await stream.next(timeout=0.5)
                        except TimeoutError:
                            continue
                        event = data["jobUpdates"]
                        self.seen.append((event["cursor"], event["jobId"]))
                        self.after = event["cursor"]
            except (
                OSError,
                WebSocketException,
                GraphQLError,
                TimeoutError,
                StopAsyncIteration,
            ) as e:
                if isinstance(e, ConnectionClosed) and e.rcvd is not None:
                    self.close_codes.append(e.rcvd.code)
                await asyncio.sleep(0.2)  # the gateway or its store is away: try again


def every_update_once(watcher: ResumingWatcher, jobs: list[Json]) -> None:
    """The watcher saw each of these jobs' stored updates exactly once, in order."""
    cursors = [cursor for cursor, _ in watcher.seen]
    assert len(cursors) == len(set(cursors)), "an update was delivered twice"
    for job in jobs:
        stored = [update["cursor"] for update in job["updates"]]
        seen = [cursor for cursor, job_id in watcher.seen if job_id == job["id"]]
        assert seen == stored, (job["id"], seen, stored)


@contextlib.contextmanager
def gateway_and_agent(folder: Path, **config: Any) -> Iterator[tuple[ServeProcess, AgentProcess]]:
    """`jobgate serve` with the remote provider `edge` and a local-adapter agent for it, neither
    started yet; both are SIGKILLed at the end (a stalled agent is let go on first)."""
    serve = ServeProcess(write_gateway_config(folder, **config))
    agent = AgentProcess(write_agent_config(folder, "local"), serve.url)
    try:
        yield serve, agent
    finally:
        if agent.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(agent.process.pid, signal.SIGCONT)
        agent.stop(signal.SIGKILL)
        serve.stop(signal.SIGKILL)
