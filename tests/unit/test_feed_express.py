"""A watcher's express sink: the feed hands it an entry at once only while the watcher waits
with nothing queued, and whatever it declines (or fails on) is queued in order. Watchers of
one view share one answer per entry."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace
from typing import cast

import pytest

from jobgate.events.feed import Audience, FeedSubscription
from jobgate.storage.base import LogEntry

_positions = itertools.count(1)


def entries(count: int) -> list[LogEntry]:
    """Entries at the next `count` log positions."""
    return [
        cast(LogEntry, SimpleNamespace(update=SimpleNamespace(seq=next(_positions))))
        for _ in range(count)
    ]


class Sink:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.taken: list[LogEntry] = []

    def take(self, entry: LogEntry) -> bool:
        if self.accept:
            self.taken.append(entry)
        return self.accept


class Broken:
    def take(self, entry: LogEntry) -> bool:
        raise RuntimeError("broken")


def everything() -> Audience:
    return Audience(lambda _entry: True)


def subscription(sink: object, audience: Audience | None = None) -> FeedSubscription:
    watched = FeedSubscription(audience or everything(), start=0, max_queued=10)
    watched.express = sink  # type: ignore[assignment]
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
    sink = Sink()
    watched = subscription(sink)
    waiting = wait(watched)
    first, second = entries(2)
    watched.offer(first)
    watched.offer(second)
    assert sink.taken == [first, second]
    assert watched.seen == second.update.seq
    assert not waiting.done()
    assert queued(watched) == []


async def test_an_entry_the_watcher_has_had_is_not_handed_again() -> None:
    sink = Sink()
    watched = subscription(sink)
    wait(watched)
    (entry,) = entries(1)
    watched.seen = entry.update.seq  # had it from the store, say
    watched.offer(entry)
    assert sink.taken == []
    assert queued(watched) == []


async def test_a_watcher_that_is_not_waiting_gets_its_entries_queued() -> None:
    sink = Sink()
    watched = subscription(sink)
    (entry,) = entries(1)
    watched.offer(entry)  # busy: it has not asked for the next one yet
    assert sink.taken == []
    assert queued(watched) == [entry]


async def test_a_declined_entry_is_queued_and_what_follows_it_waits_behind() -> None:
    declining = Sink(accept=False)
    watched = subscription(declining)
    waiting = wait(watched)
    first, second = entries(2)
    watched.offer(first)
    assert waiting.done()  # woken for the declined entry
    taking = Sink()
    watched.express = taking
    watched.offer(second)  # woken, not run yet: the second must not overtake the first
    assert taking.taken == []
    assert queued(watched) == [first, second]


async def test_a_failing_sink_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    watched = subscription(Broken())
    waiting = wait(watched)
    (entry,) = entries(1)
    watched.offer(entry)
    assert waiting.done()
    assert queued(watched) == [entry]
    assert "express delivery failed" in caplog.text


async def test_a_cancelled_watcher_is_handed_nothing() -> None:
    sink = Sink()
    watched = subscription(sink)
    wait(watched).cancel()  # its task was cancelled (the client completed the operation)
    watched.offer(*entries(1))
    assert sink.taken == []


async def test_entries_the_watcher_does_not_want_are_not_delivered() -> None:
    sink = Sink()
    watched = subscription(sink, Audience(lambda _entry: False))
    wait(watched)
    watched.offer(*entries(1))
    assert sink.taken == []
    assert queued(watched) == []


async def test_watchers_of_one_view_share_one_answer_per_entry() -> None:
    asked: list[LogEntry] = []

    def wants(entry: LogEntry) -> bool:
        asked.append(entry)
        return True

    audience = Audience(wants)
    sinks = [Sink() for _ in range(100)]
    watchers = [subscription(sink, audience) for sink in sinks]
    for watched in watchers:
        wait(watched)
    first, second = entries(2)
    for entry in (first, second):
        for watched in watchers:
            watched.offer(entry)
    assert asked == [first, second]
    assert all(sink.taken == [first, second] for sink in sinks)
