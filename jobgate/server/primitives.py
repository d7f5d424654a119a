"""asyncio's `Queue` and `Event`, for objects held by the thousand: nothing allocated at rest.

`asyncio.Queue()` allocates four deques and `asyncio.Event()` one as they are made, about
760 bytes each. These allocate only while an item or a waiter exists, and keep asyncio's
semantics for the operations they offer (FIFO, waiters woken in order, a cancelled getter
passes its wakeup on).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class OnDemandQueue(Generic[T]):
    """An unbounded FIFO for one event loop, allocating only while items or getters wait."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        # A list: nearly always one getter (the connection's reader), and a deque costs 760 B.
        self._getters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_next()

    async def get(self) -> T:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                if self._getters is not None and waiter in self._getters:
                    self._getters.remove(waiter)
                if self._items:
                    self._wake_next()  # an item this getter was woken for goes to the next
                raise
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def _wake_next(self) -> None:
        while self._getters:
            waiter = self._getters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break
        if not self._getters:
            self._getters = None


class OnDemandFlag:
    """`asyncio.Event`'s set/clear/is_set/wait, allocating only while a task waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True
