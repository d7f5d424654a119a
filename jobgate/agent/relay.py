"""The agent's side of a relayed session (`jobgate.sessions.relay`): for each OPEN_SESSION
command, connect to the job's side where it runs (the adapter says where, as it does for a
gateway of its own) and dial back to the gateway's `/relay/<relay id>`, carrying the bytes
both ways until either side closes. Every connection is one the agent opens: nothing listens
on the cluster for the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI

from jobgate.domain.job import Job
from jobgate.domain.sessions import SessionType
from jobgate.sessions.address import Locator
from jobgate.sessions.streams import open_stream, until_either_ends

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
# The fields of a providerCommands event an agent needs to relay (on gateways that serve them).
SESSION_FIELDS = "session { relayId rank type }"


def relay_url(graphql_url: str, relay_id: str) -> str:
    """The gateway's relay endpoint, beside its GraphQL one (`http…/graphql` → `ws…/relay/…`)."""
    base = graphql_url.removesuffix("/").removesuffix("/graphql")
    return "ws" + base.removeprefix("http") + f"/relay/{relay_id}"


async def relay(
    adapter: object, job: Job, session: dict[str, Any], graphql_url: str, token: str
) -> None:
    """Relay one connection of a session of `job` (see the module)."""
    kind = SessionType(session["type"])
    upstream = None
    if isinstance(adapter, Locator):
        upstream = await adapter.upstream(job, int(session["rank"]), kind)
    stream = None
    if upstream is not None:
        with contextlib.suppress(OSError):
            stream = await open_stream(upstream)
    url = relay_url(graphql_url, str(session["relayId"]))
    try:
        async with connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=10,
            max_size=None,  # the gateway's own messages: chunks of the browser's connection
            compression=None,
        ) as ws:
            if stream is None:
                # Nothing to reach (the job's server does not listen yet): answered at once,
                # so the browser is told so now rather than when the gateway gives up.
                log.info("session of job %s: its %s does not answer here", job.id, kind.value)
                return
            reader, writer = stream
            await _carry(ws, reader, writer)
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
        log.warning("cannot relay a session of job %s: %s", job.id, error)
    finally:
        if stream is not None:
            stream[1].close()


async def _carry(
    ws: ClientConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    async def to_gateway() -> None:
        while chunk := await reader.read(CHUNK):
            await ws.send(chunk)

    async def to_job() -> None:
        async for message in ws:
            writer.write(message if isinstance(message, bytes) else message.encode())
            await writer.drain()

    await until_either_ends(to_gateway(), to_job())
