"""Hostile clients against one `jobgate serve`: how much a well-behaved client feels them.

Two phases of `--seconds` each on the same gateway: quiet, then with hostile clients sending the
worst requests of issue 10 at a fixed rate (`--rate` per second in all, round robin): 10,000
aliases without a token (249 kB), a 10 MB body, distinct 0.4 MB documents, 200 aliases of
`jobs(first: 1000)` with a token, 1,000 aliases of a failing field. Throughout, a health probe
(`GET /healthz`, every 50 ms) and a normal client, another user (`jobs(first: 100)` over its 100
jobs with their updates, twice a second: within the default allowance per user) are timed. It reports each one's p50 and p99 in both phases and their
ratio (hostile / quiet), the gateway's CPU and RSS per phase, and the log's growth.

    PYTHONPATH=. .venv/bin/python -m bench.bench_hostile --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.proc import cpu_seconds, rss_kib
from bench.stats import percentile
from tests.processes import ServeProcess, write_config

TOKEN = "alice-secret"  # the hostile user
NORMAL_TOKEN = "bob-secret"
NORMAL = "{ jobs(first: 100) { nodes { id status { state } updates { state timestamp } } } }"
SUBMIT = """mutation { submitJobs(input: {jobs: [%s]}) { jobs { id } } }"""
ECHO = (
    '{application: {name: "echo", version: "1"}, product: {id: "cpu-small", category: "cpu",'
    ' provider: "local"}, allowDuplicateJob: true,'
    ' parameters: [{name: "message", value: {text: "hi"}}]}'
)


Request = tuple[bytes, dict[str, str]]


def hostile_requests() -> Iterator[Request]:
    """The worst requests, as (body, headers), forever, round robin."""
    aliases = "{ " + " ".join(f"a{i}: latestUpdateCursor" for i in range(10_000)) + " }"
    costly = "{ " + " ".join(f"a{i}: jobs(first: 1000) {{ nodes {{ id }} }}" for i in range(200))
    failing = "{ " + " ".join(f"a{i}: jobs(first: 0) {{ totalCount }}" for i in range(1000))
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    plain = {"Content-Type": "application/json"}
    fixed: list[Request] = [
        (json.dumps({"query": aliases}).encode(), plain),
        (json.dumps({"query": "{ latestUpdateCursor }", "pad": "x" * 10_000_000}).encode(), plain),
        (json.dumps({"query": costly + " }"}).encode(), auth),
        (json.dumps({"query": failing + " }"}).encode(), auth),
    ]
    for n in itertools.count():
        yield from fixed
        # A new 0.4 MB document each round: no cache may keep them.
        big = "{ " + " ".join(f"a{n}_{i}: latestUpdateCursor" for i in range(18_000)) + " }"
        yield json.dumps({"query": big}).encode(), auth


async def timed_loop(
    probe: httpx.AsyncClient, stop: asyncio.Event, call: str, pause: float, out: list[float]
) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        if call == "health":
            response = await probe.get("/healthz")
        else:
            response = await probe.post(
                "/graphql",
                json={"query": NORMAL},
                headers={"Authorization": f"Bearer {NORMAL_TOKEN}"},
            )
        assert response.status_code == 200, response.text[:200]
        out.append(time.perf_counter() - started)
        await asyncio.sleep(pause)


async def hostile(base: str, rate: float, stop: asyncio.Event, refused: list[int]) -> None:
    requests = hostile_requests()
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        pending: set[asyncio.Task[None]] = set()

        async def one(body: bytes, headers: dict[str, str]) -> None:
            response = await http.post("/graphql", content=body, headers=headers)
            codes = {e.get("extensions", {}).get("code") for e in response.json()["errors"]}
            refused[0] += bool(codes & {"LIMIT_EXCEEDED", "BAD_USER_INPUT", "RATE_LIMITED"})

        while not stop.is_set():
            body, headers = next(requests)
            task = asyncio.create_task(one(body, headers))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class Phase:
    health: list[float]
    normal: list[float]
    cpu_percent: float
    rss_mib: float
    rss_growth_mib: float
    refused: int


async def phase(base: str, pid: int, seconds: float, rate: float | None) -> Phase:
    health: list[float] = []
    normal: list[float] = []
    refused = [0]
    stop = asyncio.Event()
    cpu_before, rss_before = cpu_seconds(pid), rss_kib(pid)
    async with httpx.AsyncClient(base_url=base, timeout=60) as probe:
        tasks = [
            asyncio.create_task(timed_loop(probe, stop, "health", 0.05, health)),
            asyncio.create_task(timed_loop(probe, stop, "normal", 0.5, normal)),
        ]
        if rate:
            tasks.append(asyncio.create_task(hostile(base, rate, stop, refused)))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
    return Phase(
        health=health,
        normal=normal,
        cpu_percent=(cpu_seconds(pid) - cpu_before) / seconds * 100,
        rss_mib=rss_kib(pid) / 1024,
        rss_growth_mib=(rss_kib(pid) - rss_before) / 1024,
        refused=refused[0],
    )


async def main_async(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="jobgate-hostile-"))
    config = write_config(
        folder / "jobgate.toml", data_dir=folder / "data", storage=f"sqlite://{folder}/j.db"
    )
    serve = ServeProcess(config)
    client = serve.start(NORMAL_TOKEN)
    assert serve.process is not None
    pid = serve.process.pid
    try:
        await client.execute(SUBMIT % ", ".join([ECHO] * 100))
        await asyncio.sleep(3)  # the echo jobs end: 100 jobs with three updates each
        quiet = await phase(serve.url.removesuffix("/graphql"), pid, args.seconds, None)
        log_before = serve.log_file.stat().st_size
        attacked = await phase(serve.url.removesuffix("/graphql"), pid, args.seconds, args.rate)
        log_growth = serve.log_file.stat().st_size - log_before
    finally:
        serve.stop()
    print(f"{args.seconds:.0f} s per phase; hostile: {args.rate:g} requests/s, round robin")
    print("                          quiet p50/p99 ms   hostile p50/p99 ms   ratio p50/p99")
    for label, q, h in (
        ("GET /healthz", quiet.health, attacked.health),
        ("jobs(first: 100)", quiet.normal, attacked.normal),
    ):
        qp50, qp99 = percentile(q, 0.5) * 1000, percentile(q, 0.99) * 1000
        hp50, hp99 = percentile(h, 0.5) * 1000, percentile(h, 0.99) * 1000
        print(
            f"  {label:22s} {qp50:7.1f}/{qp99:7.1f}      {hp50:7.1f}/{hp99:7.1f}"
            f"        {hp50 / qp50:5.2f}/{hp99 / qp99:5.2f}   ({len(h)} calls)"
        )
    print(
        f"  gateway CPU: {quiet.cpu_percent:.0f} % quiet, {attacked.cpu_percent:.0f} % hostile;"
        f" RSS {quiet.rss_mib:.0f} -> {attacked.rss_mib:.0f} MiB"
        f" (+{attacked.rss_growth_mib:.1f} in the hostile phase);"
        f" {attacked.refused} hostile requests refused; log +{log_growth / 1024:.1f} KiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=10, help="hostile requests per second")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
