"""Benchmark: fan-out of one update to N idle WebSocket subscribers, and end-to-end latency.

A `jobgate serve` process (SQLite, memory bus) on loopback; this process holds N
graphql-transport-ws subscriptions to `jobUpdates` (every job the user may read) and measures:

- memory per idle subscriber: the server's resident memory before connecting N, halfway and
  after, as an average over N and as the cost of each subscriber in the second half;
- fan-out: one provider update (`reportJobUpdates`), and the time until each subscriber has it,
  reported at p50 and p99 (this client reads all N sockets on one core: its own time is in it);
- end to end: with one subscriber, `reportJobUpdates` to the event's arrival, p50 and p99.

    .venv/bin/python -m bench.bench_fanout [--subscribers 1000 10000] [--distinct-callers]
    .venv/bin/python -m bench.bench_fanout --metrics-cost --subscribers 2000 --rounds 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.lifted_limits import LIFTED_LIMITS_TOML
from bench.proc import cpu_seconds, rss_kib
from tests.processes import JOBGATE
from tests.servers import free_port, wait_for_port

TOKEN, PROVIDER_TOKEN = "bench-user", "bench-provider"
SUBSCRIPTION = "subscription { jobUpdates { cursor } }"
REPORT = """mutation($u: [JobUpdateInput!]!) {
  reportJobUpdates(input: {updates: $u}) { results { outcome } } }"""
SUBMIT = """mutation { submitJobs(input: {project: "lab", jobs: [{
  application: {name: "sleep", version: "1"},
  product: {id: "cpu", category: "cpu", provider: "local"},
  parameters: [{name: "seconds", value: {integer: 3600}}]}]}) { jobs { id } } }"""

CONFIG = (
    f"""
[server]
data_dir = "{{data}}"
graphiql = false
[[users]]
username = "bench"
token = "{TOKEN}"
projects = ["lab"]
[[providers]]
id = "local"
kind = "local"
token = "{PROVIDER_TOKEN}"
[[providers.products]]
name = "cpu"
category = "cpu"
[[applications]]
name = "sleep"
version = "1"
command = ["sleep", "{{{{seconds}}}}"]
parameters = [{{{{ name = "seconds", type = "integer" }}}}]
"""
    + LIFTED_LIMITS_TOML
)


def member_tokens(count: int) -> list[str]:
    return [f"bench-member-{n}" for n in range(count)]


def members_config(count: int) -> str:
    """`count` more users in the job's project, each watching as themselves."""
    return "".join(
        f'[[users]]\nusername = "member-{n}"\ntoken = "{token}"\nprojects = ["lab"]\n'
        for n, token in enumerate(member_tokens(count))
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def open_subscription(
    url: str, token: str = TOKEN, query: str = SUBSCRIPTION
) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None, open_timeout=60)  # type: ignore[list-item]
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    return ws


async def next_event(ws: ClientConnection) -> float:
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "next":
            return time.perf_counter()


async def report(http: httpx.AsyncClient, url: str, job_id: str, n: int) -> None:
    response = await http.post(
        url,
        json={"query": REPORT, "variables": {"u": [{"jobId": job_id, "status": f"tick {n}"}]}},
        headers={"Authorization": f"Bearer {PROVIDER_TOKEN}"},
    )
    response.raise_for_status()


@contextlib.contextmanager
def gateway_process(config_text: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`jobgate serve` with this config (its `{data}` filled in) in a temporary folder: its
    port and process, stopped on leaving."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "jobgate.toml"
        config.write_text(config_text.format(data=Path(folder) / "data"))
        port = free_port()
        command = [str(JOBGATE), "serve", "--config", str(config), "--port", str(port)]
        server = subprocess.Popen([*command, "--log-level", "warning"])
        try:
            wait_for_port(port)
            yield port, server
        finally:
            server.terminate()
            server.wait(20)


async def run(counts: list[int], rounds: int, distinct_callers: bool, query: str) -> None:
    members = members_config(max(counts)) if distinct_callers else ""
    # Started once, before anything is measured.
    with gateway_process(CONFIG + members.replace("{", "{{").replace("}", "}}")) as (port, server):
        http_url, ws_url = f"http://127.0.0.1:{port}/graphql", f"ws://127.0.0.1:{port}/graphql"
        async with httpx.AsyncClient(timeout=120) as http:
            created = await http.post(
                http_url, json={"query": SUBMIT}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            job_id = created.json()["data"]["submitJobs"]["jobs"][0]["id"]
            await asyncio.sleep(1)

            # End to end, one subscriber.
            ws = await open_subscription(ws_url)
            await asyncio.sleep(0.5)
            latencies = []
            for n in range(200):
                started = time.perf_counter()
                await report(http, http_url, job_id, n)
                latencies.append(await next_event(ws) - started)
            await ws.close()
            print("end to end, reportJobUpdates -> subscriber, 200 updates")
            print(
                f"  p50 {percentile(latencies, 0.5) * 1000:7.2f} ms   p99 {percentile(latencies, 0.99) * 1000:7.2f} ms"
            )

            for count in counts:
                await asyncio.sleep(1)
                before = rss_kib(server.pid)
                sockets: list[ClientConnection] = []
                half, at_half = 0, 0
                tokens = member_tokens(count) if distinct_callers else [TOKEN] * count
                # Batches of 200, at most half the count: the half-way sample splits them.
                batch = max(1, min(200, count // 2))
                for start in range(0, count, batch):
                    sockets += await asyncio.gather(
                        *(
                            open_subscription(ws_url, t, query)
                            for t in tokens[start : start + batch]
                        )
                    )
                    if not half and len(sockets) >= count // 2:
                        await asyncio.sleep(2)
                        half, at_half = len(sockets), rss_kib(server.pid)
                await asyncio.sleep(2)
                after = rss_kib(server.pid)
                average = (after - before) / count
                # The second half's growth: what one more subscriber costs, without the
                # one-off costs (allocator arenas, caches) the average spreads over N.
                marginal = (after - at_half) / (count - half)
                # This client's own full collections (it holds N connections too) would
                # show up as delivery latency: only the server's pauses belong in it.
                gc.collect()
                gc.freeze()
                fanouts: list[float] = []
                for n in range(rounds):
                    waiting = [asyncio.create_task(next_event(s)) for s in sockets]
                    # A fresh connection: a pooled one may have idled out meanwhile.
                    async with httpx.AsyncClient(timeout=120) as fresh:
                        started = time.perf_counter()
                        await report(fresh, http_url, job_id, 1000 + n)
                    arrived = await asyncio.gather(*waiting)
                    fanouts += [t - started for t in arrived]
                    await asyncio.sleep(0.5)
                callers = "each its own caller" if distinct_callers else "one caller"
                print(f"fan-out to {count} idle subscribers, {callers} ({rounds} updates)")
                print(
                    f"  p50 {percentile(fanouts, 0.5) * 1000:7.1f} ms   p99 {percentile(fanouts, 0.99) * 1000:7.1f} ms"
                )
                print(
                    f"  server memory per idle subscriber: {average:.1f} KiB on average, "
                    f"{marginal:.1f} KiB for each of the second {count - half}"
                )
                await asyncio.gather(*(s.close() for s in sockets))


async def metrics_cost(count: int, rounds: int) -> None:
    """Fan-out with metrics on and off (`operations.metrics`), in one run: two gateways up at
    once, `count` subscribers each, one update to each in turns; the server's CPU per broadcast
    (mean) and the delivery p50 (median), and their ratios."""
    off = CONFIG + "\n[operations]\nmetrics = false\n"
    with (
        gateway_process(CONFIG) as (on_port, on_server),
        gateway_process(off) as (
            off_port,
            off_server,
        ),
    ):
        modes = {"on": (on_port, on_server), "off": (off_port, off_server)}
        sockets: dict[str, list[ClientConnection]] = {}
        jobs: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=120) as http:
            for mode, (port, _server) in modes.items():
                url = f"http://127.0.0.1:{port}/graphql"
                created = await http.post(
                    url, json={"query": SUBMIT}, headers={"Authorization": f"Bearer {TOKEN}"}
                )
                jobs[mode] = created.json()["data"]["submitJobs"]["jobs"][0]["id"]
                ws_url = f"ws://127.0.0.1:{port}/graphql"
                sockets[mode] = []
                for start in range(0, count, 200):
                    sockets[mode] += await asyncio.gather(
                        *(open_subscription(ws_url) for _ in range(min(200, count - start)))
                    )
            await asyncio.sleep(2)
            gc.collect()
            gc.freeze()
            cpu: dict[str, list[float]] = {mode: [] for mode in modes}
            p50: dict[str, list[float]] = {mode: [] for mode in modes}
            for n in range(rounds):
                for mode, (port, server) in modes.items():
                    waiting = [asyncio.create_task(next_event(s)) for s in sockets[mode]]
                    before = cpu_seconds(server.pid)
                    started = time.perf_counter()
                    await report(http, f"http://127.0.0.1:{port}/graphql", jobs[mode], n)
                    arrived = await asyncio.gather(*waiting)
                    await asyncio.sleep(0.3)  # the server's own after-work, into its CPU
                    cpu[mode].append(cpu_seconds(server.pid) - before)
                    p50[mode].append(percentile([t - started for t in arrived], 0.5))
            for mode in modes:
                await asyncio.gather(*(s.close() for s in sockets[mode]))
    # Totals: /proc counts CPU in ticks of 10 ms, as coarse as one broadcast's whole cost.
    on_cpu, off_cpu = sum(cpu["on"]) / rounds, sum(cpu["off"]) / rounds
    on_p50, off_p50 = statistics.median(p50["on"]), statistics.median(p50["off"])
    print(f"fan-out to {count} subscribers, metrics on and off ({rounds} updates each)")
    print(
        f"  server CPU per broadcast (mean)  on {on_cpu * 1000:7.1f} ms   off {off_cpu * 1000:7.1f} ms"
    )
    print(f"  delivery p50 (median)     on {on_p50 * 1000:7.1f} ms   off {off_p50 * 1000:7.1f} ms")
    print(
        f"  ratio on / off: CPU {on_cpu / off_cpu:.3f}, p50 {on_p50 / off_p50:.3f}  (target: < 1.03)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--distinct-callers",
        action="store_true",
        help="every subscriber a different user of the job's project (no two share a rendering)",
    )
    parser.add_argument(
        "--subscription",
        default=SUBSCRIPTION,
        help="the document every subscriber sends, e.g. one selecting `job { permissions "
        "{ myself } }`, which is rendered once per caller",
    )
    parser.add_argument(
        "--metrics-cost",
        action="store_true",
        help="instead: fan-out with metrics on and off, as ratios (at the first --subscribers)",
    )
    args = parser.parse_args()
    if args.metrics_cost:
        asyncio.run(metrics_cost(args.subscribers[0], max(args.rounds, 9)))
        return
    asyncio.run(run(args.subscribers, args.rounds, args.distinct_callers, args.subscription))


if __name__ == "__main__":
    main()
