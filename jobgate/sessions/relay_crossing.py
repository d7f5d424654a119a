"""Relays across gateway replicas: a remote job's session used through one replica while its
agent's command stream is held by another.

The replica a connection reaches (the *asking* one) says its relay request on the bus
(`CHANNEL`) with its own address (`[sessions] replica_url`). Every replica hears it: one that
holds the provider's agent stream puts it on that stream, and whichever replica the agent's
dial-back then reaches hands the agent's WebSocket on to the asking replica's `/relay/<id>`,
where it is answered as if the agent had dialled there; the bytes pass through the handing
replica both ways. Nothing is stored: a word the bus loses fails one connection, which its
browser makes again.

The handing replica sends the agent's own Authorization header to the asking one, which
checks it as any dial-back's. The addresses come from the bus, which is the replicas' own
(a Redis only they reach): a replica forwards only the dial-back of a relay it heard of, only
to the address said with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import Receive, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI

from jobgate.domain.sessions import SessionType
from jobgate.events.bus import JobEventBus
from jobgate.sessions.streams import until_either_ends
from jobgate.sessions.websocket_bytes import message_bytes

log = logging.getLogger(__name__)

CHANNEL = "jobgate.relays"
# How long a dial-back waits to hear of its request: the word and the agent's command leave the
# bus at the same moment, but the word may reach this replica after the agent does.
HEARING_SECONDS = 2.0
# How long a heard request is kept for its dial-back (the asking replica gives up sooner).
KEEP_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RelayRequest:
    """What the agent is asked: dial back as `relay_id`, to the job's side of this kind."""

    relay_id: str
    job_id: str
    rank: int
    kind: SessionType


@dataclass(frozen=True, slots=True)
class Asker:
    """The replica a heard request came from, and whose agent may answer it."""

    provider_id: str
    replica_url: str
    until: float  # the event loop's time


class ReplicaCrossing:
    """Says this replica's relay requests to the others, hears theirs, and hands their agents'
    dial-backs on (see the module)."""

    def __init__(self, bus: JobEventBus, replica_url: str) -> None:
        self.bus = bus
        self.replica_url = replica_url.rstrip("/")
        # Per provider, what puts a heard request on its agent's streams here (if any is open).
        self.agents_here: dict[str, Callable[[RelayRequest], None]] = {}
        self._heard: dict[str, Asker] = {}
        self._awaited: dict[str, asyncio.Future[None]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def ask(self, provider_id: str, request: RelayRequest) -> bool:
        """Say `request` to the other replicas; False if the bus did not take it."""
        word = {
            "relay": request.relay_id,
            "provider": provider_id,
            "job": request.job_id,
            "rank": request.rank,
            "kind": request.kind.value,
            "replica": self.replica_url,
        }
        try:
            await self.bus.say(CHANNEL, json.dumps(word))
        except Exception as error:  # a bus down fails this connection, not the gateway
            log.warning("cannot ask the other replicas to relay a session: %s", error)
            return False
        return True

    async def asker_of(self, relay_id: str) -> Asker | None:
        """The replica that asked for `relay_id`, once heard (waiting `HEARING_SECONDS`)."""
        if relay_id not in self._heard:
            awaited = self._awaited.setdefault(relay_id, asyncio.get_running_loop().create_future())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEARING_SECONDS):
                    await asyncio.shield(awaited)
            self._awaited.pop(relay_id, None)
        asker = self._heard.pop(relay_id, None)
        if asker is None or asker.until < asyncio.get_running_loop().time():
            return None
        return asker

    async def hand_on(
        self, asker: Asker, relay_id: str, authorization: str, receive: Receive, send: Send
    ) -> None:
        """Carry an agent's dial-back (this ASGI WebSocket, not yet accepted) to the asking
        replica's relay endpoint, both ways, until either side ends."""
        if (await receive())["type"] != "websocket.connect":
            return
        url = "ws" + asker.replica_url.removeprefix("http") + f"/relay/{relay_id}"
        try:
            async with connect(
                url,
                additional_headers={"Authorization": authorization},
                open_timeout=10,
                max_size=None,  # chunks of a connection, as the agent sends them
                compression=None,
            ) as there:
                await send({"type": "websocket.accept"})
                await until_either_ends(_agent_to(there, receive), _to_agent(there, send))
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
            log.warning("cannot hand a relay on to replica %s: %s", asker.replica_url, error)
        with contextlib.suppress(RuntimeError, OSError):
            await send({"type": "websocket.close", "code": 1000})

    async def _listen(self) -> None:
        while True:
            try:
                async with self.bus.hearing(CHANNEL) as words:
                    async for word in words:
                        self._hear(word)
            except Exception as error:  # the bus's own backend reconnects; this only logs
                log.warning("stopped hearing the other replicas' relay requests: %s", error)
            await asyncio.sleep(1.0)

    def _hear(self, text: str) -> None:
        try:
            word = json.loads(text)
            request = RelayRequest(
                str(word["relay"]), str(word["job"]), int(word["rank"]), SessionType(word["kind"])
            )
            provider_id, replica_url = str(word["provider"]), str(word["replica"])
        except (ValueError, KeyError, TypeError):
            return  # not a request (the bus's own "reconnected" note)
        if replica_url == self.replica_url:
            return  # said here: its dial-back is expected here
        now = asyncio.get_running_loop().time()
        while self._heard:  # oldest first: each is kept as long as the one after it
            oldest = next(iter(self._heard))
            if self._heard[oldest].until >= now:
                break
            del self._heard[oldest]
        self._heard[request.relay_id] = Asker(provider_id, replica_url, now + KEEP_SECONDS)
        awaited = self._awaited.get(request.relay_id)
        if awaited is not None and not awaited.done():
            awaited.set_result(None)
        deliver = self.agents_here.get(provider_id)
        if deliver is not None:
            deliver(request)


async def _agent_to(there: ClientConnection, receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if data := message_bytes(message):
            await there.send(data)


async def _to_agent(there: ClientConnection, send: Send) -> None:
    async for message in there:
        data = message if isinstance(message, bytes) else message.encode()
        await send({"type": "websocket.send", "bytes": data})
