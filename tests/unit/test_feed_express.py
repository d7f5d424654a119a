"""A watcher's express deliverer: the feed hands it an entry at once only while the watcher
waits with nothing queued, and whatever it declines (or fails on) is queued in order."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from jobgate.events.feed import FeedSubscription
from jobgate.storage.base import LogEntry


def entries(count: int) -> list[LogEntry]:
    return [cast(LogEntry, object()) for _ in range(count)]


def subscription(taken: list[LogEntry], *, accept: bool = True) -> FeedSubscription:
    watched = FeedSubscription(lambda _entry: True, start=0, max_queued=10)

    def express(entry: LogEntry) -> bool:
        if accept:
            taken.append(entry)
        return accept

    watched.express = express
    return watched


def wait(watched: FeedSubscription) -> asyncio.Future[None]:
    """The watcher waits for its next entry."""
    waiting = watched.wait()
    assert isinstance(waiting, asyncio.Future)
    return waiting


def queued(watched: FeedSubscription) -> list[LogEntry]:
    found = []
    while (entry := watched.take()) is not None:
        found.append(entry)
    return found


async def test_a_waiting_watcher_takes_entries_at_once_and_stays_asleep() -> None:
    taken: list[LogEntry] = []
    watched = subscription(taken)
    waiting = wait(watched)
    first, second = entries(2)
    watched.offer(first)
    watched.offer(second)
    assert taken == [first, second]
    assert not waiting.done()
    assert queued(watched) == []


async def test_a_watcher_that_is_not_waiting_gets_its_entries_queued() -> None:
    taken: list[LogEntry] = []
    watched = subscription(taken)
    (entry,) = entries(1)
    watched.offer(entry)  # busy: it has not asked for the next one yet
    assert taken == []
    assert queued(watched) == [entry]


async def test_a_declined_entry_is_queued_and_what_follows_it_waits_behind() -> None:
    taken: list[LogEntry] = []
    watched = subscription(taken, accept=False)
    waiting = wait(watched)
    first, second = entries(2)
    watched.offer(first)
    assert waiting.done()  # woken for the declined entry
    watched.express = subscription(taken).express  # one that would take it
    watched.offer(second)  # woken, not run yet: the second must not overtake the first
    assert taken == []
    assert queued(watched) == [first, second]


async def test_a_failing_deliverer_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    watched = FeedSubscription(lambda _entry: True, start=0, max_queued=10)

    def broken(_entry: LogEntry) -> bool:
        raise RuntimeError("broken")

    watched.express = broken
    waiting = wait(watched)
    (entry,) = entries(1)
    watched.offer(entry)
    assert waiting.done()
    assert queued(watched) == [entry]
    assert "express delivery failed" in caplog.text


async def test_a_cancelled_watcher_is_handed_nothing() -> None:
    taken: list[LogEntry] = []
    watched = subscription(taken)
    waiting = wait(watched)
    waiting.cancel()  # its task was cancelled (the client completed the operation)
    watched.offer(*entries(1))
    assert taken == []


async def test_entries_the_watcher_does_not_want_are_not_delivered() -> None:
    taken: list[LogEntry] = []
    watched = subscription(taken)
    watched.predicate = lambda _entry: False
    watched.wait()
    watched.offer(*entries(1))
    assert taken == []
    assert queued(watched) == []
