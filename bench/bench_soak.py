"""Soak: minutes of steady mixed load on one `jobgate serve`, sampled every 30 s.

The load of issue 15's soak: `--rate` jobs per second submitted (short local jobs, each its own
request), `--subscribers` graphql-transport-ws subscribers to `jobUpdates` (`--busy` of them
receive every update of the submitting user; the rest watch a quiet user, as most open browser
tabs do), and `--queries` `jobs(first: 50)` listings per second. Every 30 s it samples the
gateway's resident memory, open descriptors, threads, live job supervisors, database size,
active jobs, and the window's submit and query latencies (p50, p99). At the end it reports each
measure's growth per hour (least squares over the samples after the first, warm-up, window) and
whether the gateway kept up (accepted = submitted, nothing left active that should have ended).

    .venv/bin/python -m bench.bench_soak --minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.lifted_limits import LIFTED_LIMITS_TOML
from bench.proc import cpu_seconds, rss_kib
from bench.stats import percentile
from jobgate.providers.supervisor import stat_fields
from tests.processes import JOBGATE
from tests.servers import free_port, wait_for_port

USER, VIEWER = "soak-user", "soak-viewer"
CONFIG = (
    f"""
[server]
data_dir = "{{data}}"
graphiql = false
[[users]]
username = "soak"
token = "{USER}"
projects = ["lab"]
[[users]]
username = "viewer"
token = "{VIEWER}"
[[providers]]
id = "local"
kind = "local"
max_concurrent_jobs = 64
[[providers.products]]
name = "cpu"
category = "cpu"
[[applications]]
name = "work"
version = "1"
command = ["sh", "-c", "echo started; sleep {{{{seconds}}}}; echo done"]
parameters = [{{{{ name = "seconds", type = "floating_point" }}}}]
"""
    + LIFTED_LIMITS_TOML
)
SUBMIT = """mutation($s: Float!) { submitJobs(input: {jobs: [{
  application: {name: "work", version: "1"},
  product: {id: "cpu", category: "cpu", provider: "local"},
  allowDuplicateJob: true,
  parameters: [{name: "seconds", value: {floatingPoint: $s}}]}]}) { jobs { id } } }"""
LIST = "{ jobs(first: 50) { nodes { id status { state } updates { state timestamp } } } }"
COUNTS = """{
  active: jobs(first: 1, filter: {states: [IN_QUEUE, RUNNING]}) { totalCount }
  succeeded: jobs(first: 1, filter: {states: [SUCCESS]}) { totalCount }
  failed: jobs(first: 1, filter: {states: [FAILURE, EXPIRED]}) { totalCount }
}"""
WATCH = "subscription { jobUpdates { cursor jobId update { state } } }"


@dataclass
class Window:
    submits: list[float] = field(default_factory=list)
    queries: list[float] = field(default_factory=list)
    failures: int = 0
    lag: float = 0.0  # the longest this client's own event loop was late, in seconds


@dataclass
class Sample:
    minute: float
    rss_mib: float
    cpu_percent: float
    fds: int
    threads: int
    supervisors: int
    zombies: int
    db_mib: float
    wal_mib: float
    active: int
    succeeded: int
    failed: int
    events: int
    submit_p50: float
    submit_p99: float
    query_p50: float
    query_p99: float
    failures: int
    client_lag_ms: float


def process_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def zombies_of(pid: int) -> int:
    """Children of `pid` that ended and were never collected."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(stat)
        count += fields is not None and fields[0] == "Z" and int(fields[1]) == pid
    return count


def live_supervisors(data: Path) -> int:
    """Job supervisors running for this soak's gateway.

    Read from /proc (a few hundred entries), not from the job folders: those grow by one per job,
    and globbing tens of thousands of them is exactly the kind of cost that grows with the run.
    """
    marker = str(data).encode()
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        count += any(arg.endswith(b"supervisor.py") for arg in argv) and any(
            arg.startswith(marker) for arg in argv
        )
    return count


def database_bytes(data: Path) -> int:
    return sum(path.stat().st_size for path in data.glob("jobgate.db*"))


def wal_bytes(data: Path) -> int:
    wal = data / "jobgate.db-wal"
    return wal.stat().st_size if wal.exists() else 0


@dataclass
class Probe:
    """What the soak reads about the gateway's process and files, on a thread of its own."""

    rss_mib: float
    cpu_seconds: float
    fds: int
    threads: int
    supervisors: int
    zombies: int
    db_mib: float
    wal_mib: float


def probe(pid: int, data: Path) -> Probe:
    return Probe(
        rss_mib=rss_kib(pid) / 1024,
        cpu_seconds=cpu_seconds(pid),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=process_status(pid, "Threads"),
        supervisors=live_supervisors(data),
        zombies=zombies_of(pid),
        db_mib=database_bytes(data) / 2**20,
        wal_mib=wal_bytes(data) / 2**20,
    )


async def watch_own_lag(window: list[Window], stop: asyncio.Event) -> None:
    """Record how late this client's event loop wakes: a late client inflates every latency."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.05)
        window[0].lag = max(window[0].lag, loop.time() - before - 0.05)


def growth_per_hour(minutes: list[float], values: list[float]) -> float:
    """The least-squares slope, per hour."""
    if len(minutes) < 2:
        return float("nan")
    slope = statistics.linear_regression(minutes, values).slope
    return slope * 60


async def subscriber(url: str, token: str, counter: list[int], stop: asyncio.Event) -> None:
    async with connect(url, subprotocols=["graphql-transport-ws"], max_size=None) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": WATCH}}))
        await read_until(ws, counter, stop)


async def read_until(ws: ClientConnection, counter: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async with asyncio.timeout(1):
                message = json.loads(await ws.recv())
        except TimeoutError:
            continue
        if message["type"] == "next":
            counter[0] += 1
        elif message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))


async def submitter(
    http: httpx.AsyncClient,
    url: str,
    rate: float,
    seconds: float,
    window: list[Window],
    stop: asyncio.Event,
) -> None:
    interval = 1 / rate
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        started = time.perf_counter()
        try:
            response = await http.post(
                url,
                json={"query": SUBMIT, "variables": {"s": seconds}},
                headers={"Authorization": f"Bearer {USER}"},
            )
            ok = response.status_code == 200 and not response.json().get("errors")
        except httpx.HTTPError:
            ok = False
        window[0].submits.append(time.perf_counter() - started)
        window[0].failures += not ok

    while not stop.is_set():
        next_at += interval
        task = asyncio.create_task(one())
        pending.add(task)
        task.add_done_callback(pending.discard)
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    await asyncio.gather(*pending)


async def querier(
    http: httpx.AsyncClient, url: str, rate: float, window: list[Window], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            response = await http.post(
                url, json={"query": LIST}, headers={"Authorization": f"Bearer {USER}"}
            )
            ok = response.status_code == 200 and not response.json().get("errors")
        except httpx.HTTPError:
            ok = False
        window[0].queries.append(time.perf_counter() - started)
        window[0].failures += not ok
        await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))


def start_gateway(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    config = folder / "jobgate.toml"
    config.write_text(CONFIG.format(data=folder / "data"))
    port = free_port()
    with (folder / "gateway.log").open("wb") as log:
        gateway = subprocess.Popen(
            [JOBGATE, "serve", "--config", config, "--port", str(port), "--log-level", "warning"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port)
    return gateway, port


def stop_gateway(gateway: subprocess.Popen[bytes], data: Path) -> None:
    """Stop the gateway and the jobs it leaves running (they outlive it by design)."""
    gateway.terminate()
    gateway.wait(30)
    for record in data.glob("local/local/*/supervisor.json"):
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(json.loads(record.read_text())["pid"], 9)


async def soak(
    args: argparse.Namespace, gateway: subprocess.Popen[bytes], port: int, data: Path
) -> list[Sample]:
    url = f"http://127.0.0.1:{port}/graphql"
    ws_url = f"ws://127.0.0.1:{port}/graphql"
    samples: list[Sample] = []
    stop = asyncio.Event()
    counter = [0]
    window = [Window()]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        watchers = [
            asyncio.create_task(
                subscriber(ws_url, USER if n < args.busy else VIEWER, counter, stop)
            )
            for n in range(args.subscribers)
        ]
        await asyncio.sleep(2)
        load = [
            asyncio.create_task(submitter(http, url, args.rate, args.job_seconds, window, stop)),
            *(
                asyncio.create_task(querier(http, url, args.queries / 5, window, stop))
                for _ in range(5)
            ),
            asyncio.create_task(watch_own_lag(window, stop)),
        ]
        started = time.monotonic()
        cpu_before, cpu_at = cpu_seconds(gateway.pid), time.monotonic()
        print(
            "minute  rss MiB  cpu %  fds  threads  supervisors  zombies  db MiB  wal MiB  active"
            "  succeeded  failed  events  submit p50/p99 ms  query p50/p99 ms  failures  lag ms"
        )
        while time.monotonic() - started < args.minutes * 60:
            await asyncio.sleep(args.sample_seconds)
            current, window[0] = window[0], Window()
            counts = (
                await http.post(
                    url, json={"query": COUNTS}, headers={"Authorization": f"Bearer {USER}"}
                )
            ).json()["data"]
            # Off this loop: the load's own latencies must not include the time spent looking.
            seen = await asyncio.to_thread(probe, gateway.pid, data)
            now = time.monotonic()
            cpu_percent = 100 * (seen.cpu_seconds - cpu_before) / (now - cpu_at)
            cpu_before, cpu_at = seen.cpu_seconds, now
            sample = Sample(
                minute=(now - started) / 60,
                rss_mib=seen.rss_mib,
                cpu_percent=cpu_percent,
                fds=seen.fds,
                threads=seen.threads,
                supervisors=seen.supervisors,
                zombies=seen.zombies,
                db_mib=seen.db_mib,
                wal_mib=seen.wal_mib,
                active=counts["active"]["totalCount"],
                succeeded=counts["succeeded"]["totalCount"],
                failed=counts["failed"]["totalCount"],
                events=counter[0],
                submit_p50=percentile(current.submits, 0.5) * 1000,
                submit_p99=percentile(current.submits, 0.99) * 1000,
                query_p50=percentile(current.queries, 0.5) * 1000,
                query_p99=percentile(current.queries, 0.99) * 1000,
                failures=current.failures,
                client_lag_ms=current.lag * 1000,
            )
            counter[0] = 0
            samples.append(sample)
            print(
                f"{sample.minute:6.1f}  {sample.rss_mib:7.1f}  {sample.cpu_percent:5.1f}  {sample.fds:3d}  {sample.threads:7d}"
                f"  {sample.supervisors:11d}  {sample.zombies:7d}  {sample.db_mib:6.1f}  {sample.wal_mib:7.1f}"
                f"  {sample.active:6d}  {sample.succeeded:9d}  {sample.failed:6d}"
                f"  {sample.events:6d}  {sample.submit_p50:7.1f}/{sample.submit_p99:7.1f}"
                f"  {sample.query_p50:7.1f}/{sample.query_p99:7.1f}  {sample.failures:8d}"
                f"  {sample.client_lag_ms:6.1f}",
                flush=True,
            )
        stop.set()
        await asyncio.gather(*load)
        for watcher in watchers:
            watcher.cancel()
        for watcher in watchers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
    return samples


def report(samples: list[Sample], args: argparse.Namespace) -> None:
    steady = samples[1:]
    minutes = [s.minute for s in steady]
    print(f"\ngrowth per hour over minutes {minutes[0]:.1f}-{minutes[-1]:.1f} (least squares):")
    for name, unit in (
        ("rss_mib", "MiB"),
        ("cpu_percent", "% of a core"),
        ("fds", "descriptors"),
        ("threads", "threads"),
        ("supervisors", "live supervisors"),
        ("zombies", "uncollected children"),
        ("active", "active jobs"),
        ("submit_p99", "ms of submit p99"),
        ("query_p99", "ms of query p99"),
        ("db_mib", "MiB of database (grows with the jobs kept: no retention yet)"),
        ("wal_mib", "MiB of write-ahead log"),
        ("client_lag_ms", "ms of this client's own loop lag"),
    ):
        values = [float(getattr(s, name)) for s in steady]
        print(
            f"  {name:12s} {growth_per_hour(minutes, values):+9.2f} {unit}"
            f"   (first {values[0]:.1f}, last {values[-1]:.1f}, max {max(values):.1f})"
        )
    print(f"  failed requests: {sum(s.failures for s in samples)}")
    last = samples[-1]
    print(
        f"  jobs: {last.succeeded} succeeded, {last.failed} failed or expired, {last.active} active"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20, help="jobs submitted per second")
    parser.add_argument("--job-seconds", type=float, default=1.0, help="how long each job runs")
    parser.add_argument("--subscribers", type=int, default=300)
    parser.add_argument("--busy", type=int, default=10, help="subscribers that see every update")
    parser.add_argument("--queries", type=float, default=5, help="jobs(first: 50) per second")
    parser.add_argument("--sample-seconds", type=float, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="jobgate-soak-"))
    gateway, port = start_gateway(folder)
    try:
        samples = asyncio.run(soak(args, gateway, port, folder / "data"))
    finally:
        stop_gateway(gateway, folder / "data")
    report(samples, args)


if __name__ == "__main__":
    main()
