"""A watcher parked in the feed: the feed hands it each entry at once while it is parked, and
queues whatever it declines (or fails on), in order, resuming it once. Watchers of one view
share one answer per entry."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace
from typing import cast

import pytest

from jobgate.events.bus import JobEventBus
from jobgate.events.feed import Audience, FeedSubscription, UpdateFeed
from jobgate.storage.base import JobStore, LogEntry

_positions = itertools.count(1)


def entries(count: int) -> list[LogEntry]:
    """Entries at the next `count` log positions."""
    return [
        cast(LogEntry, SimpleNamespace(update=SimpleNamespace(seq=next(_positions))))
        for _ in range(count)
    ]


class Sink:
    """A parked watcher: takes (or declines) entries and counts its resumptions."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.taken: list[LogEntry] = []
        self.resumed = 0

    def take(self, entry: LogEntry) -> bool:
        if self.accept:
            self.taken.append(entry)
        return self.accept

    def resume(self) -> None:
        self.resumed += 1


class Broken(Sink):
    def take(self, entry: LogEntry) -> bool:
        raise RuntimeError("broken")


def everything() -> Audience:
    return Audience(lambda _entry: True)


def subscription(audience: Audience | None = None) -> FeedSubscription:
    return FeedSubscription(audience or everything(), start=0, max_queued=10)


def parked(sink: Sink, audience: Audience | None = None) -> FeedSubscription:
    """A subscription whose watcher waits parked in `sink`."""
    watched = subscription(audience)
    assert watched.park(sink)
    return watched


def queued(watched: FeedSubscription) -> list[LogEntry]:
    found = []
    while (entry := watched.take()) is not None:
        found.append(entry)
    return found


async def test_a_parked_watcher_takes_entries_at_once_and_is_not_resumed() -> None:
    sink = Sink()
    watched = parked(sink)
    first, second = entries(2)
    watched.offer(first)
    watched.offer(second)
    assert sink.taken == [first, second]
    assert watched.seen == second.update.seq
    assert sink.resumed == 0
    assert queued(watched) == []


async def test_an_entry_the_watcher_has_had_is_not_handed_again() -> None:
    sink = Sink()
    watched = parked(sink)
    (entry,) = entries(1)
    watched.seen = entry.update.seq  # had it from the store, say
    watched.offer(entry)
    assert sink.taken == []
    assert queued(watched) == []


async def test_a_watcher_that_is_not_parked_gets_its_entries_queued() -> None:
    watched = subscription()
    (entry,) = entries(1)
    watched.offer(entry)  # busy: it has not asked for the next one yet
    assert queued(watched) == [entry]


async def test_a_watcher_waiting_on_its_future_is_woken_for_a_queued_entry() -> None:
    watched = subscription()
    waiting = watched.wait()
    (entry,) = entries(1)
    watched.offer(entry)
    assert isinstance(waiting, asyncio.Future)
    assert waiting.done()
    assert queued(watched) == [entry]


async def test_a_declined_entry_resumes_the_watcher_once_and_what_follows_waits_behind() -> None:
    declining = Sink(accept=False)
    watched = parked(declining)
    first, second = entries(2)
    watched.offer(first)
    assert declining.resumed == 1
    assert watched.parked is None
    watched.offer(second)  # resumed, not run yet: the second must not overtake the first
    assert declining.resumed == 1
    assert queued(watched) == [first, second]


async def test_a_watcher_cannot_park_while_entries_wait_for_it() -> None:
    watched = subscription()
    watched.offer(*entries(1))
    sink = Sink()
    assert not watched.park(sink)
    assert watched.parked is None
    queued(watched)
    assert watched.park(sink)
    watched.lagging = True
    watched.parked = None
    assert not watched.park(sink)


async def test_a_failing_sink_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    broken = Broken()
    watched = parked(broken)
    (entry,) = entries(1)
    watched.offer(entry)
    assert broken.resumed == 1
    assert queued(watched) == [entry]
    assert "express delivery failed" in caplog.text


async def test_a_watcher_that_left_the_feed_is_handed_nothing() -> None:
    feed = UpdateFeed(cast(JobStore, None), cast(JobEventBus, None))
    sink = Sink()
    watched = feed.attach(everything())
    assert watched.park(sink)
    feed.detach(watched)  # its client completed the operation, say
    watched.offer(*entries(1))
    assert sink.taken == []
    assert sink.resumed == 0


async def test_entries_the_watcher_does_not_want_are_not_delivered() -> None:
    sink = Sink()
    watched = parked(sink, Audience(lambda _entry: False))
    watched.offer(*entries(1))
    assert sink.taken == []
    assert sink.resumed == 0
    assert queued(watched) == []


async def test_watchers_of_one_view_share_one_answer_per_entry() -> None:
    asked: list[LogEntry] = []

    def wants(entry: LogEntry) -> bool:
        asked.append(entry)
        return True

    audience = Audience(wants)
    sinks = [Sink() for _ in range(100)]
    watchers = [parked(sink, audience) for sink in sinks]
    first, second = entries(2)
    for entry in (first, second):
        for watched in watchers:
            watched.offer(entry)
    assert asked == [first, second]
    assert all(sink.taken == [first, second] for sink in sinks)
