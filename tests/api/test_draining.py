"""`jobgate serve` on SIGTERM, behind a load balancer: not ready first, still serving for
`server.drain_seconds`, then the port closes and every subscription is closed with 1012
(service restart), which tells its client to reconnect and resume."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.api.documents import job_spec, submit
from tests.gateway import Subscription, http_client, subscribe
from tests.processes import ServeProcess, write_config

FEED = "subscription { jobUpdates { cursor jobId } }"


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def read_until_closed(feed: Subscription) -> None:
    while True:
        await feed.next(timeout=15)


async def readyz(serve: ServeProcess) -> httpx.Response:
    async with http_client() as client:
        return await client.get(f"http://127.0.0.1:{serve.port}/readyz")


async def test_sigterm_drains_then_closes_the_port_and_every_subscription_with_1012(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path / "jobgate.toml",
        data_dir=tmp_path / "data",
        storage="",
        server="drain_seconds = 3",
    )
    serve = ServeProcess(config)
    alice = serve.start()
    try:
        assert (await readyz(serve)).status_code == 200
        async with subscribe(serve, FEED) as feed:
            (job_id,) = await submit(alice, job_spec(message="before"))
            assert (await feed.next())["jobUpdates"]["jobId"] == job_id

            assert serve.process is not None
            serve.process.send_signal(signal.SIGTERM)
            drained = await readyz(serve)
            assert drained.status_code == 503
            assert drained.json() == {
                "status": "not ready",
                "failures": {"draining": "shutting down"},
            }
            # While draining it still serves: requests a load balancer already sent succeed.
            await submit(alice, job_spec(message="while draining"))

            with pytest.raises(ConnectionClosed) as closed:
                await read_until_closed(feed)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1012
        assert not port_open(serve.port)
        assert await asyncio.to_thread(serve.process.wait, 20) is not None
    finally:
        serve.stop(signal.SIGKILL)
