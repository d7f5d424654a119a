"""`UpdateFeed`: one reader of the update log per process, fanning out to bounded queues.

The feed keeps `position`, the newest log position up to which every update has been read and
delivered in order. The bus rings it when an update is stored; it also polls, so a lost doorbell
only delays an event. Each watcher gets its own bounded queue: a watcher that falls behind is not
fed further from memory, it is marked lagging and catches up from the store by itself.

A watcher with nothing queued may also wait parked, without a task: the feed hands it each
entry at once, in its own pass, and resumes it only for what it declines. Ten thousand idle
watchers of one job then take an update without ten thousand task wake-ups, and hold no task
while they wait. Parked watchers whose messages come from one `Channel` wait in a
`ParkedGroup`: the pass asks who wants an entry and what its message is once for the
watchers of one view, then writes it to each member's `Sender`, the one step it takes per
watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol, TypeVar

from jobgate.errors import StoreUnavailable
from jobgate.events.bus import JobEventBus
from jobgate.metrics import Metrics
from jobgate.storage.base import JobStore, LogEntry, LogQuery

log = logging.getLogger(__name__)

Predicate = Callable[[LogEntry], bool]
# How long a watcher waits for a feed that cannot read the store yet (at start, store down).
READY_TIMEOUT = 5.0

Message = TypeVar("Message")
Message_co = TypeVar("Message_co", covariant=True)
Message_contra = TypeVar("Message_contra", contravariant=True)


class ParkedWatcher(Protocol):
    """A watcher waiting without a task (see `FeedSubscription.park`)."""

    def take(self, entry: LogEntry) -> bool:
        """Deliver `entry` now and say so, or decline it (`False`): it is then queued, and
        the watcher resumed."""
        ...

    def resume(self) -> None:
        """Called once, from the feed's pass, when an entry is queued or the subscription
        lags: the watcher is no longer parked and must run to take them."""
        ...


class Channel(Protocol[Message_co]):
    """Where the messages of parked watchers come from when they differ by no more than a
    variant of each watcher's (an operation id): one message per entry and variant, the same
    for every watcher with that variant."""

    def message(self, entry: LogEntry, variant: Hashable) -> Message_co | None:
        """The message for `entry` in `variant`, or `None` if it cannot be had now (every
        watcher then declines the entry)."""
        ...


class Sender(Protocol[Message_contra]):
    """A parked watcher's way out (its connection)."""

    def send_now(self, message: Message_contra) -> bool:
        """Write `message` now, or decline (`False`, nothing written)."""
        ...


class Audience:
    """Which entries the watchers of one view want: the same caller's view of the same jobs.

    The feed asks each watcher about each entry; watchers of one view share this object and
    with it one answer per entry. With ten thousand watchers of one account, that is one
    visibility check per entry instead of ten thousand, and one object in the CPU's caches
    instead of ten thousand closures.
    """

    __slots__ = ("__weakref__", "_answer", "_asked", "_entry")

    def __init__(self, wants: Predicate) -> None:
        self._asked = wants
        self._entry: LogEntry | None = None
        self._answer = False

    def wants(self, entry: LogEntry) -> bool:
        if entry is not self._entry:
            self._answer = self._asked(entry)
            self._entry = entry
        return self._answer


class FeedSubscription:
    """A watcher's view of the feed: entries after `start`, or a lagging flag.

    Thousands of these live at once, one per idle subscriber, so it holds no `asyncio.Queue`
    or `Event` (each allocates several deques): the deque is made on the first entry, and
    the future exists only while the watcher waits.

    A watcher waits in one of two ways: on `wait()`'s future (its task asleep), or `parked`
    without a task (`park`). A parked watcher is handed each entry at once, in the feed's own
    pass, and is resumed only for the entries it declines. `seen` is the newest position the
    watcher has had (either way).
    """

    __slots__ = (
        "_entries",
        "_max_queued",
        "_waiter",
        "audience",
        "group",
        "lagging",
        "parked",
        "seen",
        "start",
    )

    def __init__(self, audience: Audience, start: int, max_queued: int) -> None:
        self.audience = audience
        self.start = start
        self.seen = start
        self.lagging = False
        self.parked: ParkedWatcher | None = None
        # The group it is parked in (`UpdateFeed.park`): the group, not this, is offered
        # entries then, and `seen` is the group's as it leaves.
        self.group: ParkedGroup | None = None
        self._max_queued = max_queued
        self._entries: deque[LogEntry] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, entry: LogEntry) -> None:
        # Read for every watcher of every entry: it touches as few objects as it can.
        if self.lagging or not self.audience.wants(entry):
            return
        # Only to a watcher parked now: one resumed that has yet to run takes what is queued
        # first, so an entry handed to it at once would overtake them.
        parked = self.parked
        if parked is not None:
            position = entry.update.seq
            if position <= self.seen:
                return  # had it already (the queued path skips it too)
            try:
                if parked.take(entry):
                    self.seen = position
                    return
            except Exception:
                # Queued instead: the watcher's own path meets the same failure and ends its
                # stream with a coded error, as it would have if it had not been parked.
                log.exception("express delivery failed; the entry is queued")
        self.queue(entry)

    def queue(self, entry: LogEntry) -> None:
        """Keep `entry` for the watcher to take (or mark it lagging), and wake it."""
        if self._entries is None:
            self._entries = deque()
        if len(self._entries) >= self._max_queued:
            self.lagging = True
        else:
            self._entries.append(entry)
        self._wake()

    def park(self, watcher: ParkedWatcher) -> bool:
        """Wait without a task: `watcher` takes entries as they come and is resumed for the
        first it declines (or when the subscription lags). `False`, and not parked, if an
        entry is queued already or it lags: the caller takes those first."""
        if self._entries or self.lagging:
            return False
        self.parked = watcher
        return True

    def take(self) -> LogEntry | None:
        """The oldest queued entry, if any."""
        return self._entries.popleft() if self._entries else None

    def wait(self) -> Awaitable[None]:
        """Until an entry is queued or the subscription lags (done at once if so already).

        A plain future, not a coroutine: one object fewer per wait, per watcher.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._entries or self.lagging:
            waiter.set_result(None)
        else:
            self._waiter = waiter
        return waiter

    def drain(self) -> None:
        self._entries = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._waiter = None
        parked = self.parked
        if parked is not None:
            self.parked = None
            parked.resume()


class ParkedGroup:
    """Parked watchers whose messages come from one channel.

    The feed's pass asks each audience once per entry and the channel once per variant (each
    only again where a member's differs from the last member's: watchers of one view with one
    operation id, the common case, cost one question each per entry), then writes the message
    to each member's sender: per watcher, one `send_now`, with nothing of the watcher itself
    to read. The members are the feed's subscriptions, each with its sender, variant and
    audience; one whose sender declines an entry leaves the group, with that entry queued.
    """

    __slots__ = ("channel", "members", "seen")

    def __init__(self, channel: Channel[Any], seen: int) -> None:
        self.channel = channel
        self.members: dict[FeedSubscription, tuple[Sender[Any], Hashable, Audience]] = {}
        # The newest position every member has had, or did not want, while in the group.
        self.seen = seen

    def offer(self, entry: LogEntry) -> list[FeedSubscription] | None:
        """Write `entry`'s message to every member that wants it and takes it now: the
        members that wanted it and did not take it (for the feed to queue it for), or `None`."""
        channel = self.channel
        declined: list[FeedSubscription] | None = None
        audience: Audience | None = None
        wanted = False
        variant: Hashable = _NO_VARIANT
        message: Any = None
        for subscription, (sender, own_variant, own_audience) in self.members.items():
            if own_audience is not audience:
                audience = own_audience
                wanted = own_audience.wants(entry)
            if not wanted:
                continue
            try:
                if own_variant is not variant:
                    # Forgotten first: a variant whose message failed gets none.
                    message = None
                    variant = own_variant
                    message = channel.message(entry, own_variant)
                if message is not None and sender.send_now(message):
                    continue
            except Exception:
                # Queued instead, as `FeedSubscription.offer` does: the watcher's own path
                # meets the failure and ends its stream with a coded error.
                log.exception("express delivery failed; the entry is queued")
            if declined is None:
                declined = []
            declined.append(subscription)
        return declined


# No member's variant: the first member's message is always asked for.
_NO_VARIANT = object()


class UpdateFeed:
    """Reads the update log in order and hands each entry to every interested subscription."""

    def __init__(
        self,
        store: JobStore,
        bus: JobEventBus,
        *,
        poll_interval: float = 1.0,
        batch_size: int = 500,
        max_queued: int = 1000,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.bus = bus
        self.position = 0
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.max_queued = max_queued
        # Subscriptions offered entries one by one; those in a group are the group's.
        self._subscriptions: set[FeedSubscription] = set()
        self._groups: dict[Channel[Any], ParkedGroup] = {}
        # Gone with the last watcher of the view.
        self._audiences: weakref.WeakValueDictionary[Hashable, Audience] = (
            weakref.WeakValueDictionary()
        )
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = asyncio.Event()
        self._store_failing = False
        # Set (and replaced) whenever the position moves: `catch_up_to` waits on it.
        self._moved = asyncio.Event()
        # Called on every doorbell: other readers of the store (agents' command streams) use it.
        self.ring_listeners: list[Callable[[], None]] = []
        # Called with a job's id as its final update is read, whichever replica stored it.
        self.final_listeners: list[Callable[[str], None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="update-feed"),
            asyncio.create_task(self._listen_loop(), name="update-feed-doorbell"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def ready(self) -> None:
        """Wait until the feed knows its starting position; `StoreUnavailable` if it cannot."""
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self._started.wait()
        except TimeoutError as error:
            raise StoreUnavailable("the update feed cannot read the store yet") from error

    async def catch_up_to(self, position: int) -> None:
        """Wait until the feed has read the log up to `position`: it reads when rung and
        polls, so it can trail the store by a moment. Callers bound the wait."""
        while self.position < position:
            moved = self._moved
            self.poke()
            await moved.wait()

    def audience(self, view: Hashable, wants: Predicate) -> Audience:
        """The audience of `view` (equal views want the same entries: `wants` says which),
        shared by every watcher attached with it."""
        audience = self._audiences.get(view)
        if audience is None:
            audience = self._audiences[view] = Audience(wants)
        return audience

    def attach(self, audience: Audience) -> FeedSubscription:
        """Subscribe to every entry after the current position that `audience` wants."""
        subscription = FeedSubscription(audience, self.position, self.max_queued)
        self._subscriptions.add(subscription)
        return subscription

    def park(
        self,
        subscription: FeedSubscription,
        watcher: ParkedWatcher,
        channel: Channel[Message] | None = None,
        sender: Sender[Message] | None = None,
        variant: Hashable = None,
    ) -> bool:
        """Park `subscription`'s watcher (`FeedSubscription.park`); with a `channel` and a
        `sender`, in the group of its channel, whose messages it takes as they are in its
        `variant`. Not while the feed hands out entries (it never awaits then)."""
        if not subscription.park(watcher):
            return False
        # A watcher that has had entries the feed has yet to hand out (read from the store
        # ahead of it) waits alone: its own `offer` skips them, a group does not.
        # (And one detached already stays out of the feed.)
        if (
            channel is None
            or sender is None
            or subscription.seen > self.position
            or subscription not in self._subscriptions
        ):
            return True
        group = self._groups.get(channel)
        if group is None:
            group = self._groups[channel] = ParkedGroup(channel, self.position)
        self._subscriptions.discard(subscription)
        group.members[subscription] = (sender, variant, subscription.audience)
        subscription.group = group
        return True

    def detach(self, subscription: FeedSubscription) -> None:
        """Hand `subscription` nothing more (not while the feed hands out entries)."""
        group = subscription.group
        if group is None:
            self._subscriptions.discard(subscription)
        else:
            del group.members[subscription]
            subscription.group = None
            if not group.members:
                del self._groups[group.channel]
        subscription.parked = None

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions) + self.grouped_count

    @property
    def grouped_count(self) -> int:
        """How many of the subscriptions wait in groups."""
        return sum(len(group.members) for group in self._groups.values())

    def deliver(self, entry: LogEntry) -> None:
        """Hand `entry` to every subscription that wants it: the pass, once per entry in the
        log's order. It never awaits, so no subscription comes or goes meanwhile, and it
        moves none but the members a group's senders decline."""
        for subscription in self._subscriptions:
            subscription.offer(entry)
        if not self._groups:
            return
        emptied = False
        for group in self._groups.values():
            before = group.seen
            declined = group.offer(entry)
            group.seen = entry.update.seq
            if declined is None:
                continue
            for subscription in declined:
                # Alone again, with what it had from the group, and this entry to take.
                del group.members[subscription]
                subscription.group = None
                subscription.seen = max(subscription.seen, before)
                self._subscriptions.add(subscription)
                subscription.queue(entry)
            emptied = emptied or not group.members
        if emptied:
            self._groups = {key: group for key, group in self._groups.items() if group.members}

    def poke(self) -> None:
        """Read the log now (called after a local write, and by the doorbell)."""
        self._wake.set()

    async def _listen_loop(self) -> None:
        while True:
            try:
                async with self.bus.doorbells() as doorbells:
                    async for _ring in doorbells:
                        self._wake.set()
                        for listener in self.ring_listeners:
                            listener()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the event bus failed; polling the store until it is back")
            await asyncio.sleep(self.poll_interval)

    async def _read_loop(self) -> None:
        while not self._started.is_set():
            try:
                self.position = await self.store.latest_seq()
                self._started.set()
            except StoreUnavailable:
                await asyncio.sleep(self.poll_interval)
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that arrives as the wake-up does, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._catch_up()
            except StoreUnavailable:
                if not self._store_failing:
                    log.warning("the update feed cannot read the store; retrying until it can")
                self._store_failing = True
                continue
            except Exception:
                log.exception("the update feed failed to read the log; retrying")
                continue
            if self._store_failing:
                log.warning("the update feed reads the store again")
            self._store_failing = False

    async def _catch_up(self) -> None:
        # Stores assign log positions in order and make them visible in order (the JobStore
        # contract), so reading "after the position" never skips a write still in flight.
        while True:
            entries = await self.store.read_log(
                LogQuery(after=self.position, limit=self.batch_size)
            )
            now_ms = time.time() * 1000
            for entry in entries:
                self.metrics.feed_lag.observe(max(0.0, now_ms - entry.update.timestamp) / 1000)
                self.deliver(entry)
                if entry.job.status.state.is_final:
                    for final_listener in self.final_listeners:
                        final_listener(entry.job.id)
                self.position = entry.update.seq
            if entries:
                self._moved.set()
                self._moved = asyncio.Event()
            if len(entries) < self.batch_size:
                return
