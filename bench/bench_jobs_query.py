"""Benchmark: `jobs(first: 100)` through the whole stack, against a bare Starlette endpoint.

Both servers run as separate processes on loopback and read the same 100 jobs (3 updates each)
from the same SQLite file; one client process sends requests one after another. Reported as
requests per second, and as ratios measured in this same run. Also reports the cost of a small
query with and without Strawberry's parser and validation caches.

    .venv/bin/python -m bench.bench_jobs_query [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.proc import cpu_seconds
from bench.servers import QUERY
from jobgate.access import initial_acl
from jobgate.domain.job import JobSpecification, JobStatus, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.domain.values import NameAndVersion, ProductReference, ResourceOwner, TextValue
from jobgate.storage.base import NewSubmission
from jobgate.storage.sqlite import SqliteJobStore
from tests.servers import free_port, wait_for_port

SMALL_QUERY = "query Small { latestUpdateCursor applications { name } }"


async def seed(db: Path, count: int = 100) -> None:
    store = SqliteJobStore(db)
    await store.open()
    spec = JobSpecification(
        application=NameAndVersion("echo", "1"),
        product=ProductReference("cpu-small", "cpu", "local"),
        name="benchmark job",
        parameters=(("message", TextValue("hello")),),
    )
    owner = ResourceOwner("alice", "proj-a")
    created = await store.create_jobs(
        NewSubmission(owner, [spec] * count, created_at=1_700_000_000_000, acl=initial_acl(owner))
    )
    for job in created.jobs:
        running = JobStatus(JobState.RUNNING, started_at=1_700_000_001_000)
        await store.commit_update(
            job, UpdateRequest(job.id, state=JobState.RUNNING), running, 1_700_000_001_000
        )
        (job,) = await store.get_jobs([job.id])
        done = JobStatus(JobState.SUCCESS, started_at=1_700_000_001_000)
        request = UpdateRequest(job.id, state=JobState.SUCCESS, status="exit code 0")
        await store.commit_update(job, request, done, 1_700_000_002_000)
    await store.close()


def start(mode: str, db: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.servers", mode, "--db", str(db), "--port", str(port)]
    )
    wait_for_port(port)
    return process, port


async def measure(url: str, body: dict[str, object] | None, requests: int) -> tuple[float, object]:
    """(requests per second, the last response's JSON), after a warm-up."""
    headers = {"Authorization": "Bearer bench-token"}
    async with httpx.AsyncClient(timeout=30) as client:

        async def once() -> object:
            if body is None:
                response = await client.get(url)
            else:
                response = await client.post(url, json=body, headers=headers)
            response.raise_for_status()
            return response.json()

        for _ in range(20):
            await once()
        samples = []
        result: object = None
        for _ in range(requests):
            started = time.perf_counter()
            result = await once()
            samples.append(time.perf_counter() - started)
    return 1 / statistics.mean(samples), result


async def metrics_cost(db: Path, requests: int, rounds: int = 7) -> dict[str, tuple[float, float]]:
    """With and without metrics, by mode: requests per second (median of the rounds) and the
    server's CPU per request (all rounds). Both servers run at once and are measured in
    turns, so a machine's drift (other work, CPU frequency) falls on both alike."""
    servers = {mode: start(mode, db) for mode in ("graphql", "graphql-nometrics")}
    try:
        rates: dict[str, list[float]] = {mode: [] for mode in servers}
        cpu = dict.fromkeys(servers, 0.0)
        per_round = max(20, requests // rounds)
        for number in range(rounds):
            # Each goes first in every other round: the second of a pair runs warmer.
            order = list(servers.items())
            for mode, (process, port) in order if number % 2 else reversed(order):
                url = f"http://127.0.0.1:{port}/graphql"
                before = cpu_seconds(process.pid)
                rate, _answer = await measure(url, {"query": QUERY}, per_round)
                cpu[mode] += cpu_seconds(process.pid) - before
                rates[mode].append(rate)
    finally:
        for process, _port in servers.values():
            process.terminate()
            process.wait()
    return {
        mode: (statistics.median(rates[mode]), cpu[mode] / (per_round * rounds)) for mode in servers
    }


async def run(requests: int, metrics_requests: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        await seed(db)
        results: dict[str, float] = {}
        answers: dict[str, object] = {}
        for mode in ("bare", "graphql", "graphql-unkept", "graphql-nocache"):
            process, port = start(mode, db)
            try:
                if mode == "bare":
                    url, body = f"http://127.0.0.1:{port}/jobs", None
                    results[mode], answers[mode] = await measure(url, body, requests)
                else:
                    url = f"http://127.0.0.1:{port}/graphql"
                    results[mode], answers[mode] = await measure(url, {"query": QUERY}, requests)
                    small, _ = await measure(url, {"query": SMALL_QUERY}, requests)
                    results[f"{mode} small query"] = small
            finally:
                process.terminate()
                process.wait()
        same = all(
            json.dumps(answers["bare"], sort_keys=True) == json.dumps(answers[mode], sort_keys=True)
            for mode in ("graphql", "graphql-unkept")
        )
        # A page of nothing would measure nothing (as it did while alice could not see them).
        shown = len(answers["graphql"]["data"]["jobs"]["nodes"])  # type: ignore[index]
        if shown != 100:
            raise SystemExit(f"the query shows {shown} jobs, not the 100 seeded")
        print(f"jobs(first: 100), 100 jobs x 3 updates, {requests} sequential requests each")
        print(f"  bare Starlette endpoint        {results['bare']:8.1f} req/s")
        print(f"  jobgate GraphQL                {results['graphql']:8.1f} req/s")
        print(
            f"  jobgate GraphQL, no kept jobs  {results['graphql-unkept']:8.1f} req/s"
            "  (every job rendered afresh)"
        )
        print(f"  jobgate GraphQL, no caches     {results['graphql-nocache']:8.1f} req/s")
        print(f"  ratio GraphQL / bare           {results['graphql'] / results['bare']:8.3f}")
        print(
            f"  ratio, no kept jobs / bare     {results['graphql-unkept'] / results['bare']:8.3f}"
        )
        cost = await metrics_cost(db, metrics_requests)
        (with_rate, with_cpu), (without_rate, without_cpu) = (
            cost["graphql"],
            cost["graphql-nometrics"],
        )
        print(f"metrics on the request path (both servers up, in turns, {metrics_requests} each)")
        print(
            f"  with metrics      {with_rate:8.1f} req/s, server CPU {with_cpu * 1000:.3f} ms/req"
        )
        print(
            f"  without           {without_rate:8.1f} req/s, server CPU {without_cpu * 1000:.3f} ms/req"
            "  (operations.metrics = false)"
        )
        print(
            f"  ratio with / without: time {without_rate / with_rate:.3f},"
            f" server CPU {with_cpu / without_cpu:.3f}  (target: < 1.03)"
        )
        print(f"  same JSON from both            {same}")
        small, small_nc = results["graphql small query"], results["graphql-nocache small query"]
        print("small query (latestUpdateCursor, applications)")
        print(f"  with parser+validation caches  {1000 / small:8.3f} ms")
        print(f"  without                        {1000 / small_nc:8.3f} ms")
        print(f"  ratio cached / uncached time   {small_nc / small:8.3f}")
        if not same:
            raise SystemExit("the two servers answered differently")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--metrics-requests",
        type=int,
        default=2100,
        help="requests to each server for the cost of metrics (CPU is counted in 10 ms ticks)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.metrics_requests))


if __name__ == "__main__":
    main()
