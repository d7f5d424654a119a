"""Benchmark: one update fanned out to N idle WebSocket subscribers, against its floor and peer.

Four servers, one at a time on loopback, each driven by the same Go client (`fanout/go/client`:
reading 10,000 sockets in Python would be the bottleneck of what is measured):

- `floor (python)` and `floor (go)`: bare broadcasters writing one precomputed message (the
  bytes jobgate sent) to every subscriber (`fanout/floor.py`, `fanout/go/floor`);
- `graphql-js`: the reference JavaScript stack, graphql-js 16 + graphql-ws 6 on Node.js
  (`fanout/peer`, its npm packages pinned), publishing the same event;
- `jobgate`: `jobgate serve` (SQLite, memory bus), one `reportJobUpdates` per broadcast.

For N = 1,000 and 10,000 subscribers of the same document: the time until each has the update
(p50 and p99 of each round, the median over rounds), the server's CPU per broadcast (from
/proc, ticks of 10 ms, the mean over rounds) and its memory per idle subscriber (resident
memory grown since before the first one connected, over N). Then the ratios the targets are
set in: jobgate against the Python floor, and against the peer.

    .venv/bin/python -m bench.bench_fanout [--subscribers 1000 10000] [--rounds 5]
    .venv/bin/python -m bench.bench_fanout --servers jobgate --distinct-callers
    .venv/bin/python -m bench.bench_fanout --metrics-cost --subscribers 2000 --rounds 15
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from bench.fanout.client import SubscriberClient
from bench.fanout.contenders import (
    CONFIG,
    SUBSCRIPTION,
    Contender,
    floor,
    jobgate,
    peer,
)
from bench.proc import cpu_seconds, rss_kib
from bench.stats import percentile

SERVERS = ("floor-python", "floor-go", "graphql-js", "jobgate")
# The server's own work after the last delivery (its after-work, into its CPU figure).
SETTLE = 0.3


@dataclass(frozen=True)
class Row:
    server: str
    subscribers: int
    p50: float
    p99: float
    cpu_ms: float
    kib_per_subscriber: float


def measure(contender: Contender, counts: list[int], rounds: int, query: str) -> Iterator[Row]:
    client = SubscriberClient(contender.ws_url, contender.token, query, contender.trigger)
    try:
        baseline = rss_kib(contender.pid)
        for count in counts:
            client.connect(count - client.count)
            time.sleep(2)
            memory = (rss_kib(contender.pid) - baseline) / count
            client.round(0)  # warm: the first broadcast to these subscribers is not measured
            time.sleep(SETTLE)
            p50s, p99s, cpu = [], [], []
            for n in range(1, rounds + 1):
                before = cpu_seconds(contender.pid)
                latencies = client.round(n)
                time.sleep(SETTLE)
                cpu.append(cpu_seconds(contender.pid) - before)
                p50s.append(latencies.p50)
                p99s.append(latencies.p99)
            yield Row(
                contender.name,
                count,
                statistics.median(p50s),
                statistics.median(p99s),
                statistics.mean(cpu) * 1000,
                memory,
            )
    finally:
        client.close()


def sampled_message(query: str) -> tuple[str, list[float]]:
    """A `next` message jobgate sends for `query` (what the floors send and the peer
    renders), and `reportJobUpdates`-to-receipt latencies of 100 updates to one subscriber."""
    with jobgate() as gateway:
        client = SubscriberClient(gateway.ws_url, gateway.token, query, gateway.trigger)
        try:
            client.connect(1)
            time.sleep(0.5)
            latencies = [client.round(n).first for n in range(100)]
            return client.sample(), latencies
        finally:
            client.close()


def starters(
    message: str, distinct_callers: int
) -> dict[str, Callable[[], AbstractContextManager[Contender]]]:
    return {
        "floor-python": lambda: floor("python", message),
        "floor-go": lambda: floor("go", message),
        "graphql-js": lambda: peer(message),
        "jobgate": lambda: jobgate(distinct_callers),
    }


def compare(
    servers: list[str], counts: list[int], rounds: int, query: str, distinct_callers: bool
) -> None:
    message, end_to_end = sampled_message(query)
    print(f"message: {len(message.encode())} bytes")
    print("jobgate end to end, reportJobUpdates -> one subscriber, 100 updates:")
    p50, p99 = percentile(end_to_end, 0.5), percentile(end_to_end, 0.99)
    print(f"  p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    members = max(counts) if distinct_callers else 0
    rows: list[Row] = []
    for server in servers:
        with starters(message, members)[server]() as contender:
            for row in measure(contender, counts, rounds, query):
                rows.append(row)
                print(
                    f"{row.server:16} {row.subscribers:>6}  p50 {row.p50:7.1f} ms  "
                    f"p99 {row.p99:7.1f} ms  CPU {row.cpu_ms:6.1f} ms  "
                    f"{row.kib_per_subscriber:5.1f} KiB/subscriber",
                    flush=True,
                )
    by = {(row.server, row.subscribers): row for row in rows}
    for count in counts:
        ours = by.get(("jobgate", count))
        if ours is None:
            continue
        for other, label in (("floor (python)", "the Python floor"), ("graphql-js", "the peer")):
            theirs = by.get((other, count))
            if theirs is not None:
                print(
                    f"N={count}: jobgate / {label}: p50 {ratio(ours.p50, theirs.p50)}, "
                    f"p99 {ratio(ours.p99, theirs.p99)}, CPU {ratio(ours.cpu_ms, theirs.cpu_ms)}, "
                    f"memory {ratio(ours.kib_per_subscriber, theirs.kib_per_subscriber)}"
                )


def ratio(ours: float, theirs: float) -> str:
    """`ours / theirs`, or `n/a` where theirs measured nothing (CPU comes in 10 ms ticks: a
    small broadcast may take none)."""
    return f"{ours / theirs:.2f}" if theirs else "n/a"


def metrics_cost(count: int, rounds: int) -> None:
    """Fan-out with metrics on and off (`operations.metrics`), in one run: two gateways up at
    once, `count` subscribers each, one update to each in turns; the server's CPU per broadcast
    (mean) and the delivery p50 (median), and their ratios."""
    off = CONFIG + "\n[operations]\nmetrics = false\n"
    with contextlib.ExitStack() as stack:
        clients: dict[str, tuple[SubscriberClient, int]] = {}
        for mode, config in (("on", CONFIG), ("off", off)):
            contender = stack.enter_context(jobgate(config=config))
            client = SubscriberClient(
                contender.ws_url, contender.token, SUBSCRIPTION, contender.trigger
            )
            stack.callback(client.close)
            client.connect(count)
            clients[mode] = (client, contender.pid)
        time.sleep(2)
        cpu: dict[str, list[float]] = {mode: [] for mode in clients}
        p50: dict[str, list[float]] = {mode: [] for mode in clients}
        for n in range(rounds):
            for mode, (client, pid) in clients.items():
                before = cpu_seconds(pid)
                latencies = client.round(n)
                time.sleep(SETTLE)
                cpu[mode].append(cpu_seconds(pid) - before)
                p50[mode].append(latencies.p50)
    # Totals: /proc counts CPU in ticks of 10 ms, as coarse as one broadcast's whole cost.
    on_cpu, off_cpu = sum(cpu["on"]) / rounds, sum(cpu["off"]) / rounds
    on_p50, off_p50 = statistics.median(p50["on"]), statistics.median(p50["off"])
    print(f"fan-out to {count} subscribers, metrics on and off ({rounds} updates each)")
    print(
        f"  server CPU per broadcast (mean)  on {on_cpu * 1000:7.1f} ms   off {off_cpu * 1000:7.1f} ms"
    )
    print(f"  delivery p50 (median)     on {on_p50:7.1f} ms   off {off_p50:7.1f} ms")
    print(
        f"  ratio on / off: CPU {on_cpu / off_cpu:.3f}, p50 {on_p50 / off_p50:.3f}  (target: < 1.03)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument(
        "--distinct-callers",
        action="store_true",
        help="jobgate's subscribers each a different user of the job's project (no two share "
        "a rendering)",
    )
    parser.add_argument(
        "--subscription",
        default=SUBSCRIPTION,
        help="the document every subscriber sends (the peer serves only the default's fields: "
        "with another, use --servers jobgate and the floors)",
    )
    parser.add_argument(
        "--metrics-cost",
        action="store_true",
        help="instead: jobgate's fan-out with metrics on and off, as ratios (at the first "
        "--subscribers)",
    )
    args = parser.parse_args()
    if args.metrics_cost:
        metrics_cost(args.subscribers[0], max(args.rounds, 9))
        return
    compare(args.servers, args.subscribers, args.rounds, args.subscription, args.distinct_callers)


if __name__ == "__main__":
    main()
