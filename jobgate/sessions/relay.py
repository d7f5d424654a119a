"""Sessions of a remote provider's jobs, relayed through its agent: the gateway cannot reach the
cluster, the agent can reach the gateway.

For each connection a session makes to the job's side (a browser's request or WebSocket that
the proxy or a relay carries on), the gateway asks the provider's agent, on its command stream
(`RelayRequest`, as an `OPEN_SESSION` command that is never stored), to dial back: the agent
connects to the job's side where it runs (as the gateway does for its own providers) and opens
a WebSocket to `/relay/<relay id>` with its provider token; the bytes of the connection then
travel in its binary messages, both ways. Nothing listens on the cluster; every connection is
one the agent opens.

Behind several replicas, the replica a connection reaches may not hold the agent's stream:
it asks the others (`jobgate.sessions.relay_crossing`).

On the gateway, the connections to relay are made to Unix sockets (`RelayPoints`, one per job,
replica and kind, in a folder only the gateway can enter), so the WEB proxy and the relays of
terminals and desktops treat a remote job's side as any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.types import Receive, Scope, Send

from jobgate.domain.sessions import SessionType
from jobgate.sessions.private_sockets import PrivateSockets
from jobgate.sessions.relay_crossing import RelayRequest, ReplicaCrossing
from jobgate.sessions.streams import until_either_ends
from jobgate.sessions.websocket_bytes import stream_to_websocket, websocket_to_stream

log = logging.getLogger(__name__)

RELAY_PATH = "/relay/"
# How long a connection waits for its agent to dial back before it is given up.
ANSWER_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class RelayDelivery:
    """A relay request on an agent's command stream, after the stored command at `position`
    (its cursor: a stream resumed from it misses nothing)."""

    request: RelayRequest
    position: int


@dataclass(eq=False)
class _AgentSide:
    """An agent's WebSocket that answered a relay request, held open while it is used."""

    receive: Receive
    send: Send
    done: asyncio.Event = field(default_factory=asyncio.Event)


class RelayHub:
    """The relay requests waiting for their agents, and the endpoint agents dial back to."""

    def __init__(
        self,
        provider_of: Callable[[str | None], Awaitable[str | None]],
        crossing: ReplicaCrossing | None = None,
    ) -> None:
        # The provider a request's Authorization header proves the caller is, if any.
        self.provider_of = provider_of
        # How requests reach agents connected to other replicas (None: one replica, or none
        # said where the others reach it).
        self.crossing = crossing
        self._waiting: dict[str, tuple[str, asyncio.Future[_AgentSide]]] = {}

    async def start(self) -> None:
        if self.crossing is not None:
            await self.crossing.start()

    async def stop(self) -> None:
        if self.crossing is not None:
            await self.crossing.stop()

    def expect(self, relay_id: str, provider_id: str) -> asyncio.Future[_AgentSide]:
        future: asyncio.Future[_AgentSide] = asyncio.get_running_loop().create_future()
        self._waiting[relay_id] = (provider_id, future)
        return future

    def forget(self, relay_id: str) -> None:
        self._waiting.pop(relay_id, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/relay/<relay id>`: an agent's WebSocket, answering one relay request."""
        if scope["type"] != "websocket":
            return
        relay_id = scope["path"].removeprefix(RELAY_PATH)
        header = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), None)
        authorization = None if header is None else header.decode("latin-1")
        caller = await self.provider_of(authorization)
        waiting = self._waiting.get(relay_id)
        if waiting is None and caller is not None and self.crossing is not None:
            # Asked by another replica, perhaps: hand it on there.
            asker = await self.crossing.asker_of(relay_id)
            if asker is not None and asker.provider_id == caller:
                assert authorization is not None  # it proved the caller
                await self.crossing.hand_on(asker, relay_id, authorization, receive, send)
                return
        if waiting is None or caller is None or caller != waiting[0] or waiting[1].done():
            await send({"type": "websocket.close", "code": 1008})
            return
        self._waiting.pop(relay_id, None)
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        side = _AgentSide(receive, send)
        waiting[1].set_result(side)
        await side.done.wait()  # the connection's relay is over


class RelayPoints:
    """A remote provider's Unix sockets, one per (job, replica, kind): each connection made to
    one is relayed through the provider's agent (`ask` puts the request on its stream)."""

    def __init__(
        self,
        provider_id: str,
        hub: RelayHub,
        ask: Callable[[RelayRequest], Awaitable[bool]],
    ):
        self.provider_id = provider_id
        self.hub = hub
        self.ask = ask
        self._sockets = PrivateSockets("jobgate-relays-")

    async def socket_for(self, job_id: str, rank: int, kind: SessionType) -> Path:
        key = (job_id, rank, kind.value.lower())
        path = self._sockets.path(key)
        if path is not None:
            return path

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = RelayRequest(secrets.token_urlsafe(16), job_id, rank, kind)
            await self._relay(request, reader, writer)

        return await self._sockets.open(key, relay)

    async def _relay(
        self, request: RelayRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        answered = self.hub.expect(request.relay_id, self.provider_id)
        try:
            if not await self.ask(request):
                raise TimeoutError  # nobody can be asked: as if nobody answered
            async with asyncio.timeout(ANSWER_SECONDS):
                agent = await answered
        except TimeoutError:
            log.info(
                "the agent of %s did not relay a session of job %s",
                self.provider_id,
                request.job_id,
            )
            self.hub.forget(request.relay_id)
            writer.close()
            return
        try:
            await until_either_ends(
                stream_to_websocket(reader, agent.send), websocket_to_stream(agent.receive, writer)
            )
        finally:
            writer.close()
            with contextlib.suppress(RuntimeError, OSError):
                await agent.send({"type": "websocket.close", "code": 1000})
            agent.done.set()

    async def close(self, job_id: str) -> None:
        """The job ended: its sockets go (its relayed connections end with its side)."""
        await self._sockets.close(job_id)

    async def close_all(self) -> None:
        await self._sockets.close_all()
