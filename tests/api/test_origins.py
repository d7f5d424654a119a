"""Pages on other origins (a frontend's dev server) may call the API only when configured."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.gateway import ALICE, Gateway, gateway_settings, http_client, running_gateway

FRONTEND = "http://localhost:5173"


async def preflight(gateway: Gateway) -> httpx.Response:
    async with http_client() as http:
        return await http.options(
            gateway.url,
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )


async def open_socket(gateway: Gateway) -> str:
    """The first answer to connection_init, from a page on the frontend's origin."""
    async with connect(
        gateway.ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        origin=FRONTEND,  # type: ignore[arg-type]
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {ALICE}"}}
        await ws.send(json.dumps(init))
        kind: str = json.loads(await ws.recv())["type"]
        return kind


async def test_other_origins_are_refused_by_default(sqlite_gateway: Gateway) -> None:
    response = await preflight(sqlite_gateway)
    assert "access-control-allow-origin" not in response.headers
    with pytest.raises(InvalidStatus):
        await open_socket(sqlite_gateway)


async def test_an_allowed_origin_may_call_over_http_and_websocket(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/jobgate.db",
        server={"data_dir": str(tmp_path / "data"), "allowed_origins": [FRONTEND]},
    )
    async with running_gateway(settings) as gateway:
        response = await preflight(gateway)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == FRONTEND
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        assert await open_socket(gateway) == "connection_ack"
