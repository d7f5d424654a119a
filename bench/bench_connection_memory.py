"""Where a WebSocket subscriber's server memory goes: per connection, after `connection_init`,
and with one `jobUpdates` subscription, for jobgate's protocol (`lean`, what `jobgate serve`
runs) and each of uvicorn's WebSocket implementations, with permessage-deflate off (jobgate's
default) and on.

    .venv/bin/python -m bench.bench_connection_memory [--connections 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from bench.fanout.contenders import CONFIG, SUBSCRIPTION, TOKEN
from bench.proc import rss_kib, running
from tests.servers import free_port

SERVER = """
import sys, uvicorn
from pathlib import Path
from jobgate.app import create_app
from jobgate.server.protocol import LeanWebSocketProtocol
from jobgate.settings import load_settings
app = create_app(load_settings(Path(sys.argv[1])))
uvicorn.run(
    app,
    host="127.0.0.1",
    port=int(sys.argv[2]),
    interface="asgi3",  # see jobgate.server.websocket_lane.LeanStarlette
    ws=LeanWebSocketProtocol if sys.argv[3] == "lean" else sys.argv[3],
    ws_per_message_deflate=sys.argv[4] == "on",
    log_level="warning",
)
"""
STAGES = ("open", "connection_init", "subscribed")


async def open_to(url: str, stage: int) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    if stage >= 1:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {TOKEN}"}}
        await ws.send(json.dumps(init))
        await ws.recv()
    if stage >= 2:
        start = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
        await ws.send(json.dumps(start))
    return ws


async def measure(ws_impl: str, compression: str, stage: int, count: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "jobgate.toml"
        config.write_text(CONFIG.format(data=Path(folder) / "data"))
        port = free_port()
        command = [sys.executable, "-c", SERVER, str(config), str(port), ws_impl, compression]
        # Started before anything is measured.
        with running(command, port, ready_timeout=15) as server:
            await asyncio.sleep(1)
            before = rss_kib(server.pid)
            sockets: list[ClientConnection] = []
            for start in range(0, count, 200):
                batch = min(200, count - start)
                sockets += await asyncio.gather(
                    *(open_to(f"ws://127.0.0.1:{port}/graphql", stage) for _ in range(batch))
                )
            await asyncio.sleep(2)
            per_connection = (rss_kib(server.pid) - before) / count
            await asyncio.gather(*(ws.close() for ws in sockets))
            return per_connection


async def run(count: int) -> None:
    print(f"server memory per connection (KiB), {count} connections")
    print(f"  {'uvicorn ws, deflate':26} " + " ".join(f"{s:>16}" for s in STAGES))
    for ws_impl in ("lean", "websockets-sansio", "websockets", "wsproto"):
        for compression in ("off", "on"):
            figures = [
                await measure(ws_impl, compression, stage, count) for stage in range(len(STAGES))
            ]
            label = f"{ws_impl}, {compression}"
            print(f"  {label:26} " + " ".join(f"{f:16.1f}" for f in figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=1000)
    asyncio.run(run(parser.parse_args().connections))


if __name__ == "__main__":
    main()
