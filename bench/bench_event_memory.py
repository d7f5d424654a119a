"""Benchmark: the gateway's memory while one subscription receives many live events.

A `jobgate serve` process (SQLite, memory bus) on loopback; one graphql-transport-ws
subscriber per path (the lean path, and Strawberry's with `server.lean_subscriptions = false`)
receives N provider updates of one job, reported in batches. The server's resident memory is
sampled every `--every` events; the report gives its growth per 10,000 events after the first
sample, which must stay flat (graphql-core 3.3.2 kept ~1.2 KiB per event: +12 MB per 10,000).

    .venv/bin/python -m bench.bench_event_memory [--events 20000] [--every 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.fanout.contenders import (
    CONFIG,
    PROVIDER_TOKEN,
    REPORT,
    SUBMIT,
    SUBSCRIPTION,
    TOKEN,
    gateway_process,
)
from bench.proc import rss_kib

BATCH = 250


async def open_subscription(url: str) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {TOKEN}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
    return ws


async def measure(lean: bool, events: int, every: int) -> list[tuple[int, int]]:
    """(events so far, server RSS in KiB) samples."""
    setting = f"graphiql = false\nlean_subscriptions = {str(lean).lower()}"
    with gateway_process(CONFIG.replace("graphiql = false", setting)) as (port, server):
        url = f"http://127.0.0.1:{port}/graphql"
        async with httpx.AsyncClient(timeout=60) as http:
            submitted = await http.post(
                url, json={"query": SUBMIT}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            job_id = submitted.json()["data"]["submitJobs"]["jobs"][0]["id"]
            ws = await open_subscription(url.replace("http", "ws"))
            received = 0
            progress = asyncio.Event()

            async def read() -> None:
                nonlocal received
                async for raw in ws:
                    if json.loads(raw)["type"] == "next":
                        received += 1
                        progress.set()

            async def until_received(count: int) -> None:
                while received < count:
                    progress.clear()
                    await progress.wait()

            reader = asyncio.create_task(read())
            samples: list[tuple[int, int]] = []
            sent = 0
            while sent < events:
                updates = [{"jobId": job_id, "status": f"tick {sent + n}"} for n in range(BATCH)]
                response = await http.post(
                    url,
                    json={"query": REPORT, "variables": {"u": updates}},
                    headers={"Authorization": f"Bearer {PROVIDER_TOKEN}"},
                )
                response.raise_for_status()
                sent += BATCH
                await until_received(sent - BATCH)  # keep the subscriber close behind
                if sent % every == 0:
                    await until_received(sent)
                    samples.append((sent, rss_kib(server.pid)))
            reader.cancel()
            await ws.close()
            return samples


async def run(events: int, every: int) -> None:
    for lean in (True, False):
        samples = await measure(lean, events, every)
        (first_n, first_rss), (last_n, last_rss) = samples[0], samples[-1]
        per_10k = (last_rss - first_rss) / (last_n - first_n) * 10_000 if last_n > first_n else 0.0
        path = "lean" if lean else "strawberry"
        trace = ", ".join(f"{n}: {rss / 1024:.1f} MiB" for n, rss in samples)
        print(f"{path:10}  RSS {trace}  growth {per_10k / 1024:+.2f} MiB per 10,000 events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=5_000)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.every))


if __name__ == "__main__":
    main()
