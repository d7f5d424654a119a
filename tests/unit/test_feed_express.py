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


# Groups: parked watchers of one view whose messages come from one channel.


class Messages:
    """A channel: the message for an entry in a variant, counting how often it is asked;
    `None` (not ready) for the entries in `unready`, and a failure for those in `broken`."""

    def __init__(self) -> None:
        self.asked: list[tuple[LogEntry, object]] = []
        self.unready: set[int] = set()
        self.broken: set[int] = set()
        self.broken_variants: set[object] = set()

    def message(self, entry: LogEntry, variant: object) -> str | None:
        self.asked.append((entry, variant))
        if entry.update.seq in self.broken or variant in self.broken_variants:
            raise RuntimeError("broken")
        if entry.update.seq in self.unready:
            return None
        return f"{variant}:{entry.update.seq}"


class Connection:
    """A sender: what it was written, declining while `full`."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.full = False

    def send_now(self, message: str) -> bool:
        if self.full:
            return False
        self.written.append(message)
        return True


class Member:
    """One parked watcher of a group: its sink (which the group never asks), its connection
    and its subscription."""

    def __init__(self, feed: UpdateFeed, audience: Audience, channel: Messages, variant: str):
        self.feed, self.channel, self.variant = feed, channel, variant
        self.sink = Sink()
        self.connection = Connection()
        self.subscription = feed.attach(audience)

    def park(self) -> bool:
        return self.feed.park(
            self.subscription, self.sink, self.channel, self.connection, self.variant
        )


def a_feed() -> UpdateFeed:
    return UpdateFeed(cast(JobStore, None), cast(JobEventBus, None))


def group_of(count: int, variant: str = "1") -> tuple[UpdateFeed, Messages, list[Member]]:
    feed, channel, audience = a_feed(), Messages(), everything()
    members = [Member(feed, audience, channel, variant) for _ in range(count)]
    for member in members:
        assert member.park()
    return feed, channel, members


async def test_a_group_writes_one_message_per_entry_without_asking_its_watchers() -> None:
    feed, channel, members = group_of(100)
    first, second = entries(2)
    feed.deliver(first)
    feed.deliver(second)
    expected = [f"1:{first.update.seq}", f"1:{second.update.seq}"]
    assert all(member.connection.written == expected for member in members)
    assert channel.asked == [(first, "1"), (second, "1")]  # once per entry, not per watcher
    assert all(member.sink.taken == [] and member.sink.resumed == 0 for member in members)
    assert all(queued(member.subscription) == [] for member in members)
    assert feed.subscriber_count == 100


async def test_members_with_other_variants_get_their_own_message() -> None:
    feed, channel, audience = a_feed(), Messages(), everything()
    members = [Member(feed, audience, channel, variant) for variant in ("1", "1", "a", "1")]
    for member in members:
        assert member.park()
    (entry,) = entries(1)
    feed.deliver(entry)
    seq = entry.update.seq
    assert [member.connection.written for member in members] == [
        [f"1:{seq}"],
        [f"1:{seq}"],
        [f"a:{seq}"],
        [f"1:{seq}"],
    ]


async def test_a_member_whose_connection_declines_leaves_with_the_entry_queued() -> None:
    feed, _channel, members = group_of(3)
    busy = members[1]
    busy.connection.full = True
    first, second, third = entries(3)
    feed.deliver(first)
    assert busy.sink.resumed == 1
    assert busy.subscription.parked is None
    assert busy.subscription.group is None
    feed.deliver(second)  # resumed, not run yet: queued behind the first
    assert queued(busy.subscription) == [first, second]
    assert busy.connection.written == []
    # It took them its own way and parks again: back in the group, for what follows only.
    busy.connection.full = False
    assert busy.park()
    feed.deliver(third)
    assert busy.connection.written == [f"1:{third.update.seq}"]
    assert busy.sink.resumed == 1
    for member in (members[0], members[2]):
        expected = [f"1:{entry.update.seq}" for entry in (first, second, third)]
        assert member.connection.written == expected
        assert member.sink.resumed == 0


async def test_a_member_that_left_has_what_the_group_had_as_seen() -> None:
    feed, _channel, members = group_of(2)
    first, second = entries(2)
    feed.deliver(first)
    members[0].connection.full = True
    feed.deliver(second)
    # Had the first, not the second: a catch-up from the store starts between them.
    assert members[0].subscription.seen == first.update.seq
    assert queued(members[0].subscription) == [second]


async def test_an_entry_without_a_message_now_is_queued_for_every_member() -> None:
    feed, channel, members = group_of(3)
    (entry,) = entries(1)
    channel.unready.add(entry.update.seq)
    feed.deliver(entry)
    for member in members:
        assert member.sink.resumed == 1
        assert queued(member.subscription) == [entry]
        assert member.connection.written == []
    assert feed.subscriber_count == 3  # all alone again, none lost


async def test_a_failing_channel_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    feed, channel, members = group_of(2)
    (entry,) = entries(1)
    channel.broken.add(entry.update.seq)
    feed.deliver(entry)
    assert all(queued(member.subscription) == [entry] for member in members)
    assert all(member.sink.resumed == 1 for member in members)
    assert "express delivery failed" in caplog.text


async def test_a_group_hands_nothing_to_a_member_that_left_the_feed() -> None:
    feed, _channel, members = group_of(2)
    feed.detach(members[0].subscription)
    first, second = entries(2)
    feed.deliver(first)
    assert members[0].connection.written == []
    assert members[1].connection.written == [f"1:{first.update.seq}"]
    assert feed.subscriber_count == 1
    feed.detach(members[1].subscription)
    feed.deliver(second)
    assert members[1].connection.written == [f"1:{first.update.seq}"]
    assert feed.subscriber_count == 0


async def test_a_detached_subscription_that_parks_is_handed_nothing() -> None:
    feed, channel, audience = a_feed(), Messages(), everything()
    member = Member(feed, audience, channel, "1")
    feed.detach(member.subscription)
    member.park()
    feed.deliver(*entries(1))
    assert member.connection.written == []
    assert member.sink.taken == []
    assert feed.subscriber_count == 0


async def test_a_watcher_ahead_of_the_feed_waits_alone_and_skips_what_it_had() -> None:
    feed, channel, audience = a_feed(), Messages(), everything()
    ahead = Member(feed, audience, channel, "1")
    first, second = entries(2)
    ahead.subscription.seen = first.update.seq  # read from the store before the feed got to it
    assert ahead.park()
    assert ahead.subscription.group is None
    feed.deliver(first)
    feed.deliver(second)
    assert ahead.connection.written == []  # parked alone, its sink takes them
    assert ahead.sink.taken == [second]


async def test_a_group_delivers_only_what_its_audience_wants() -> None:
    feed, channel = a_feed(), Messages()
    offered = entries(3)
    wanted = offered[1]
    audience = Audience(lambda entry: entry is wanted)
    member = Member(feed, audience, channel, "1")
    assert member.park()
    for entry in offered:
        feed.deliver(entry)
    assert member.connection.written == [f"1:{wanted.update.seq}"]
    assert channel.asked == [(wanted, "1")]


async def test_a_variant_whose_message_fails_gets_no_other_variants_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed, channel, audience = a_feed(), Messages(), everything()
    members = [Member(feed, audience, channel, variant) for variant in ("1", "a", "a", "1")]
    for member in members:
        assert member.park()
    channel.broken_variants.add("a")
    (entry,) = entries(1)
    feed.deliver(entry)
    seq = entry.update.seq
    assert [member.connection.written for member in members] == [[f"1:{seq}"], [], [], [f"1:{seq}"]]
    assert [queued(member.subscription) for member in members] == [[], [entry], [entry], []]
    assert "express delivery failed" in caplog.text


async def test_members_of_other_views_get_what_their_own_view_wants() -> None:
    feed, channel = a_feed(), Messages()
    asked: list[str] = []

    def asking(name: str, wants: bool) -> Audience:
        def wanted(_entry: LogEntry) -> bool:
            asked.append(name)
            return wants

        return Audience(wanted)

    everything_, nothing = asking("everything", True), asking("nothing", False)
    members = [Member(feed, audience, channel, "1") for audience in (everything_, nothing) * 3]
    for member in members:
        assert member.park()
    (entry,) = entries(1)
    feed.deliver(entry)
    seq = entry.update.seq
    assert [member.connection.written for member in members] == [[f"1:{seq}"], []] * 3
    assert sorted(asked) == ["everything", "nothing"]  # each view once per entry
    assert all(member.sink.resumed == 0 for member in members)
