"""Benchmark: `jobs(first: 100)` through the whole stack, against a bare Starlette endpoint.

The servers run as separate processes on loopback and read the same 100 jobs (3 updates each)
from the same SQLite file: the bare endpoint (the same store calls and JSON, by hand), jobgate
with a page asked again (its jobs kept), with every job changed since (each completed afresh by
plans, then kept), keeping none, and completing by graphql-core alone. One client sends requests
one after another, to each server in turn, round after round; reported as requests per second
(the median of the rounds), the ratio to the bare endpoint (the median of the rounds' ratios)
and the server's CPU per request. Also the cost of a small query with and without the parser
and validation caches, and of metrics.

    .venv/bin/python -m bench.bench_jobs_query [--requests 600] [--rounds 15]
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
from typing import NamedTuple

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


Body = dict[str, object] | None  # None: GET the bare endpoint


async def measure(
    client: httpx.AsyncClient, url: str, body: Body, requests: int
) -> tuple[list[float], object]:
    """Seconds of each of `requests` sequential requests, and the last response's JSON."""
    headers = {"Authorization": "Bearer bench-token"}
    samples = []
    result: object = None
    for _ in range(requests):
        started = time.perf_counter()
        if body is None:
            response = await client.get(url)
        else:
            response = await client.post(url, json=body, headers=headers)
        response.raise_for_status()
        result = response.json()
        samples.append(time.perf_counter() - started)
    return samples, result


class Measured(NamedTuple):
    rate: float  # requests per second, the median of the rounds
    cpu: float  # the server's CPU seconds per request, over all rounds
    answer: object  # the last response's JSON
    rates: list[float]  # requests per second, round by round

    def of(self, other: Measured) -> float:
        """This run's rate as a share of `other`'s: the median of the rounds' ratios (the two
        measured next to each other in each round, so drift between rounds cancels)."""
        return statistics.median(
            mine / theirs for mine, theirs in zip(self.rates, other.rates, strict=True)
        )


async def in_turns(
    db: Path, runs: dict[str, tuple[str, Body]], requests: int, rounds: int
) -> dict[str, Measured]:
    """`runs` (name: server mode, request) measured in turns: every server is up at once and
    each round gives each run its share of `requests`, in an order that alternates, so a
    machine's drift (other work, CPU frequency) falls on all alike."""
    servers = {mode: start(mode, db) for mode, _body in runs.values()}
    rates: dict[str, list[float]] = {name: [] for name in runs}
    cpu = dict.fromkeys(runs, 0.0)
    answers: dict[str, object] = {}
    per_round = max(20, requests // rounds)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            urls = {
                name: f"http://127.0.0.1:{servers[mode][1]}/{'jobs' if body is None else 'graphql'}"
                for name, (mode, body) in runs.items()
            }
            for name, (_mode, body) in runs.items():
                await measure(client, urls[name], body, 20)  # warm-up
            order = list(runs.items())
            for number in range(rounds):
                for name, (mode, body) in order if number % 2 else reversed(order):
                    process = servers[mode][0]
                    before = cpu_seconds(process.pid)
                    samples, answers[name] = await measure(client, urls[name], body, per_round)
                    cpu[name] += cpu_seconds(process.pid) - before
                    rates[name].append(1 / statistics.mean(samples))
    finally:
        for process, _port in servers.values():
            process.terminate()
            process.wait()
    total = per_round * rounds
    return {
        name: Measured(
            statistics.median(rates[name]), cpu[name] / total, answers[name], rates[name]
        )
        for name in runs
    }


async def run(requests: int, metrics_requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        await seed(db)
        page: Body = {"query": QUERY}
        results = await in_turns(
            db,
            {
                "bare": ("bare", None),
                "graphql": ("graphql", page),
                "graphql-cold": ("graphql-cold", page),
                "graphql-unkept": ("graphql-unkept", page),
                "graphql-core": ("graphql-core", page),
            },
            requests,
            rounds,
        )
        answers = {name: measured.answer for name, measured in results.items()}
        same = all(
            json.dumps(answers["bare"], sort_keys=True) == json.dumps(answer, sort_keys=True)
            for answer in answers.values()
        )
        # A page of nothing would measure nothing (as it did while alice could not see them).
        shown = len(answers["graphql"]["data"]["jobs"]["nodes"])  # type: ignore[index]
        if shown != 100:
            raise SystemExit(f"the query shows {shown} jobs, not the 100 seeded")
        bare = results["bare"]
        print(f"jobs(first: 100), 100 jobs x 3 updates, {requests} sequential requests each")
        print(
            f"  (all servers up at once, measured in {rounds} rounds of turns;"
            " medians of the rounds, and of the rounds' ratios)"
        )
        rows = [
            ("bare Starlette endpoint", "bare", ""),
            ("jobgate GraphQL", "graphql", "a page asked again: its jobs kept"),
            ("jobgate, every job changed", "graphql-cold", "each completed afresh, and kept"),
            ("jobgate, no kept jobs", "graphql-unkept", "kept_job_values = 0"),
            ("jobgate, graphql-core only", "graphql-core", "no kept jobs, no plans"),
        ]
        for label, name, note in rows:
            measured = results[name]
            print(
                f"  {label:28} {measured.rate:7.1f} req/s  {measured.of(bare):6.3f} of bare"
                f"  CPU {measured.cpu * 1000:6.2f} ms/req  {note}"
            )
        print(f"  same JSON from all             {same}")
        small_page: Body = {"query": SMALL_QUERY}
        small = await in_turns(
            db,
            {
                "cached": ("graphql", small_page),
                "uncached": ("graphql-nocache", small_page),
            },
            requests,
            rounds,
        )
        print("small query (latestUpdateCursor, applications)")
        print(f"  with parser+validation caches  {1000 / small['cached'].rate:8.3f} ms")
        print(f"  without                        {1000 / small['uncached'].rate:8.3f} ms")
        print(f"  ratio cached / uncached time   {small['uncached'].of(small['cached']):8.3f}")
        cost = await in_turns(
            db,
            {"with": ("graphql", page), "without": ("graphql-nometrics", page)},
            metrics_requests,
            rounds,
        )
        print(f"metrics on the request path (in turns, {metrics_requests} requests each)")
        for name, note in (("with", ""), ("without", "  (operations.metrics = false)")):
            print(
                f"  {name:8} metrics {cost[name].rate:8.1f} req/s,"
                f" server CPU {cost[name].cpu * 1000:.3f} ms/req{note}"
            )
        print(
            f"  ratio with / without: time {cost['without'].of(cost['with']):.3f},"
            f" server CPU {cost['with'].cpu / cost['without'].cpu:.3f}  (target: < 1.03)"
        )
        if not same:
            raise SystemExit("the servers answered differently")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=600, help="to each server, in all")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--metrics-requests",
        type=int,
        default=2100,
        help="requests to each server for the cost of metrics (CPU is counted in 10 ms ticks)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.metrics_requests, args.rounds))


if __name__ == "__main__":
    main()
