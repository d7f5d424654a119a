"""`KeepaliveWheel`: WebSocket keepalive pings for every connection of a server from one timer.

uvicorn pings each WebSocket every `ws_ping_interval` seconds and closes it (1011) when the
pong is not back within `ws_ping_timeout`, with a timer of the event loop per connection:
576 bytes per idle subscriber, held for nothing between pings, and at ten thousand subscribers
500 timers a second. Here one timer turns a wheel of one-`tick` slots; each connection waits
in the slot of its next deadline (its next ping, or the end of the wait for its pong). The
rules are uvicorn's: the next ping `interval` seconds after the last one was sent, once its
pong is back (or at once `interval` apart without a timeout); no pong by the timeout, and the
connection fails. A deadline comes up to one tick late: a tick is at most a tenth of the
interval and of the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
from typing import Protocol
from weakref import WeakKeyDictionary

MAX_TICK_SECONDS = 1.0

log = logging.getLogger(__name__)


class KeptAlive(Protocol):
    """A connection the wheel pings: it is asked for its next deadline when its slot comes."""

    def keepalive_due(self, now: float, payload: bytes) -> float | None:
        """Its deadline came at `now`: ping (with `payload`) or fail, and say when next to be
        asked (`None`: not again)."""


class KeepaliveWheel:
    """The deadlines of one server's connections, each in the slot of its tick."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        self._loop = loop
        self._tick = tick
        self._slots: dict[int, set[KeptAlive]] = {}
        self._slot_of: dict[KeptAlive, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._turning = False
        self._turned = math.floor(loop.time() / tick)  # every slot up to this one was done

    @staticmethod
    def tick_for(interval: float, timeout: float | None) -> float:
        """A tick at most a tenth of what it times."""
        shortest = interval if timeout is None else min(interval, timeout)
        return min(MAX_TICK_SECONDS, shortest / 10)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def __len__(self) -> int:
        return len(self._slot_of)

    def put(self, connection: KeptAlive, due: float) -> None:
        """Ask `connection` at `due` (in the loop's time), and not at any earlier deadline."""
        self.remove(connection)
        slot = max(math.ceil(due / self._tick), self._turned + 1)
        self._slots.setdefault(slot, set()).add(connection)
        self._slot_of[connection] = slot
        if self._timer is None and not self._turning:
            self._arm()

    def remove(self, connection: KeptAlive) -> None:
        slot = self._slot_of.pop(connection, None)
        if slot is not None:
            waiting = self._slots[slot]
            waiting.discard(connection)
            if not waiting:
                del self._slots[slot]

    def _arm(self) -> None:
        self._timer = self._loop.call_at((self._turned + 1) * self._tick, self._turn)

    def _turn(self) -> None:
        self._timer = None
        now = self._loop.time()
        last = math.floor(now / self._tick)
        # One payload per turn: each connection matches its pong against its own last ping.
        payload = struct.pack("!I", random.getrandbits(32))
        self._turning = True
        try:
            for slot in range(self._turned + 1, last + 1):
                self._turned = slot
                for connection in self._slots.pop(slot, ()):
                    del self._slot_of[connection]
                    try:
                        due = connection.keepalive_due(now, payload)
                    except Exception:
                        # One connection's fault must not cost the others of its slot theirs.
                        log.exception("WebSocket keepalive failed; no more pings on that socket")
                        continue
                    if due is not None:
                        self.put(connection, due)
        finally:
            self._turning = False
            self._turned = max(self._turned, last)
        if self._slot_of:
            self._arm()


_wheels: WeakKeyDictionary[object, KeepaliveWheel] = WeakKeyDictionary()


def wheel_of(server: object, interval: float, timeout: float | None) -> KeepaliveWheel:
    """The wheel of `server` (any object that lives as long as it: uvicorn's config), made on
    first use in the running loop."""
    loop = asyncio.get_running_loop()
    wheel = _wheels.get(server)
    if wheel is None or wheel.loop is not loop:
        wheel = _wheels[server] = KeepaliveWheel(loop, KeepaliveWheel.tick_for(interval, timeout))
    return wheel
