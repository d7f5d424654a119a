"""`JobWatcher`: the `jobUpdates` stream: stored updates after a cursor, then live ones.

The seam between replay and live has no gap and no duplicate: the watcher attaches to the feed
first, at the feed's position P, replays the store's updates up to P, and then takes the feed's
entries, all of which come after P. A watcher that lags catches up from the store on its own.

What retention has removed is never skipped in silence: a read from a position before the
store's horizon ends the stream with `CursorExpired` (see `JobStore.log_horizon`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Hashable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import cast

from jobgate.access import Identity
from jobgate.cursors import encode_position
from jobgate.domain.job import Job, JobUpdate
from jobgate.errors import CursorExpired, NotFound
from jobgate.events.feed import (
    Channel,
    FeedSubscription,
    Message,
    ParkedWatcher,
    Sender,
    UpdateFeed,
)
from jobgate.services.bounds import DEFAULT_MAX_IDS, require_few_ids
from jobgate.storage.base import JobStore, LogEntry, LogQuery

REPLAY_BATCH = 500


@dataclass(frozen=True, slots=True)
class UpdateEvent:
    """One update for a watcher, with the job as of that update (live) or as of now (replay).

    Live events are the same for every watcher of the update: renderers may share them.
    """

    update: JobUpdate
    job: Job
    live: bool = False

    @property
    def cursor(self) -> str:
        return encode_position(self.update.seq)


class JobWatcher:
    def __init__(self, store: JobStore, feed: UpdateFeed, max_ids: int = DEFAULT_MAX_IDS) -> None:
        self.store = store
        self.feed = feed
        self.max_ids = max_ids

    async def watch(
        self, identity: Identity, job_ids: Sequence[str] | None, after: int | None
    ) -> AsyncGenerator[UpdateEvent, None]:
        """Every update the caller may read (of `job_ids`, if given) after `after`, then live.

        Without `after`: with `job_ids`, each job's whole history; without, live only. With
        `job_ids`, the stream ends once all of them are final.
        """
        stream = await self.open(identity, job_ids, after)
        try:
            async with aclosing(stream.replay()) as replayed:
                async for event in replayed:
                    yield event
            while not stream.finished:
                async with aclosing(stream.available()) as available:
                    async for event in available:
                        yield event
                if not stream.finished:
                    await stream.wait()
        finally:
            stream.close()

    async def open(
        self, identity: Identity, job_ids: Sequence[str] | None, after: int | None
    ) -> UpdateStream:
        """The stream `watch` iterates, for a caller that drives it itself (and parks it
        between events: see `UpdateStream.park`). The caller `close`s it."""
        require_few_ids(job_ids, self.max_ids, "jobIds")
        visibility = identity.visibility
        wanted = None if job_ids is None else frozenset(job_ids)
        unfinished = None if wanted is None else await self._unfinished(wanted, identity)

        def interesting(entry: LogEntry) -> bool:
            # Asked of each entry as the job is when the feed reads it: a watcher whose access
            # is taken away (its ACL entry, its membership) gets nothing of the job after that.
            if wanted is not None and entry.update.job_id not in wanted:
                return False
            return visibility.allows(entry.job)

        await self.feed.ready()
        # Watchers of one view (an account's dashboards, say) share one answer per entry.
        subscription = self.feed.attach(self.feed.audience((visibility, wanted), interesting))
        ids = None if wanted is None else tuple(wanted)
        return UpdateStream(self, subscription, identity, ids, unfinished, after)

    async def _unfinished(self, wanted: frozenset[str], identity: Identity) -> set[str]:
        """Which of `wanted` are not final yet; `NotFound` if any is not there for the caller."""
        jobs = {job.id: job for job in await self.store.get_jobs(list(wanted))}
        missing = [i for i in wanted if i not in jobs or not identity.visibility.allows(jobs[i])]
        if missing:
            raise NotFound(f"no such job: {', '.join(sorted(missing))}")
        return {i for i, job in jobs.items() if not job.status.state.is_final}

    async def _stored(
        self,
        after: int,
        up_to: int,
        job_ids: tuple[str, ...] | None,
        identity: Identity,
        *,
        whole: bool = False,
    ) -> AsyncIterator[LogEntry]:
        """Stored entries in (after, up_to] that the caller may read, in order. The store reads
        what the caller may read; each entry is asked again as its job is now (a store that lost
        its answer half-way through an ACL change may hold an older copy of the ACL).

        `CursorExpired` when retention removed entries of the range (after a whole history's
        first read: it may begin with whatever is kept)."""
        visibility = identity.visibility
        position = after
        while position < up_to:
            start = position
            entries = await self.store.read_log(
                LogQuery(
                    after=position,
                    up_to=up_to,
                    limit=REPLAY_BATCH,
                    job_ids=job_ids,
                    visibility=visibility,
                )
            )
            if not (whole and start == 0):
                await self._require_kept(start)
            for entry in entries:
                if visibility.allows(entry.job):
                    yield entry
                position = entry.update.seq
            if len(entries) < REPLAY_BATCH:
                return

    async def _require_kept(self, position: int) -> None:
        """Asked after reading from `position`: retention raises the horizon before it removes
        anything, so a horizon at or below `position` now means the read missed nothing."""
        if await self.store.log_horizon() > position:
            raise CursorExpired(
                "updates after this cursor are no longer kept (retention): resume from "
                "`latestUpdateCursor` and read the jobs afresh"
            )

    async def _with_current_jobs(
        self, entries: AsyncIterator[LogEntry]
    ) -> AsyncIterator[UpdateEvent]:
        """Replayed events carry the job as it is now (one batched read per page)."""
        page: list[LogEntry] = []

        async def flush() -> list[UpdateEvent]:
            ids = list({entry.update.job_id for entry in page})
            current = {job.id: job for job in await self.store.get_jobs(ids)}
            events = [UpdateEvent(e.update, current.get(e.update.job_id, e.job)) for e in page]
            page.clear()
            return events

        async for entry in entries:
            page.append(entry)
            if len(page) == REPLAY_BATCH:
                for event in await flush():
                    yield event
        if page:
            for event in await flush():
                yield event


class UpdateStream:
    """One watcher's `jobUpdates` stream, from `JobWatcher.open` until `close`: the stored
    updates after its cursor (`replay`), then the feed's (`available`, with `wait` or `park`
    between). Its state is this object's, not a generator frame's, so that an idle stream can
    wait parked in the feed without a task: thousands do, one per idle subscriber."""

    __slots__ = ("_after", "_identity", "_ids", "_sink", "_subscription", "_unfinished", "_watcher")

    def __init__(
        self,
        watcher: JobWatcher,
        subscription: FeedSubscription,
        identity: Identity,
        ids: tuple[str, ...] | None,
        unfinished: set[str] | None,
        after: int | None,
    ) -> None:
        self._watcher = watcher
        self._subscription = subscription
        self._identity = identity
        self._ids = ids
        # The watched jobs not final yet (with `jobIds`): the stream ends with the last.
        self._unfinished = unfinished
        self._after = after
        self._sink: ParkedWatcher | None = None

    @property
    def finished(self) -> bool:
        """Whether every watched job is final (never, without `jobIds`)."""
        return self._unfinished is not None and not self._unfinished

    async def replay(self) -> AsyncGenerator[UpdateEvent, None]:
        """The stored updates after the cursor, up to where the feed's begin; once."""
        subscription, after, unfinished = self._subscription, self._after, self._unfinished
        start = subscription.start
        seen = start if after is None and unfinished is None else (after or 0)
        # A whole history (no cursor) is what is kept of it; a cursor promises no gap.
        stored = self._watcher._stored(seen, start, self._ids, self._identity, whole=after is None)
        async for event in self._watcher._with_current_jobs(stored):
            seen = event.update.seq
            if unfinished is not None and event.job.status.state.is_final:
                unfinished.discard(event.job.id)
            yield event
        subscription.seen = max(seen, start)

    async def available(self) -> AsyncGenerator[UpdateEvent, None]:
        """The live updates the feed has for this stream now, in order, after those it had
        (`subscription.seen`, which a parked delivery moves too); from the store when it fell
        behind. Ends when none is left, or with the stream."""
        subscription, unfinished = self._subscription, self._unfinished
        while not self.finished:
            if subscription.lagging:
                # Fell behind: forget the queue and read what was missed from the store.
                # Entries the feed offers from now on come after `target`: no gap.
                feed = self._watcher.feed
                feed.metrics.feed_catch_ups.inc()
                target = feed.position
                subscription.drain()
                subscription.lagging = False
                stored = self._watcher._stored(subscription.seen, target, self._ids, self._identity)
                async for entry in stored:
                    subscription.seen = entry.update.seq
                    yield UpdateEvent(entry.update, entry.job, live=True)
                    if unfinished is not None and _ends(entry, unfinished):
                        return
                subscription.seen = max(subscription.seen, target)
                continue
            queued = subscription.take()
            if queued is None:
                return
            if queued.update.seq > subscription.seen:
                subscription.seen = queued.update.seq
                yield UpdateEvent(queued.update, queued.job, live=True)
                if unfinished is not None and _ends(queued, unfinished):
                    return

    def wait(self) -> Awaitable[None]:
        """Until `available` has something (or the stream lags)."""
        return self._subscription.wait()

    def park(
        self,
        sink: ParkedWatcher,
        channel: Channel[Message] | None = None,
        sender: Sender[Message] | None = None,
        variant: Hashable = None,
    ) -> bool:
        """Wait without a task: `sink` takes live entries at once (the events of them, which
        its renderer makes only where needed) and is resumed for the first it declines, to
        take `available`. `False`, and not parked, while `available` has something.

        With a `channel` and a `sender`, the entries' messages are the channel's (in
        `variant`), written by the feed to `sender` without asking `sink` (`UpdateFeed.park`),
        unless the stream has `jobIds`: its last job's final update must end it."""
        if self._unfinished is None:
            return self._watcher.feed.park(self._subscription, sink, channel, sender, variant)
        # With `jobIds`, an update that makes the last watched job final ends the stream:
        # `available`'s to take, so this stream stands between the feed and the sink.
        self._sink = sink
        return self._subscription.park(self)

    # Parked with `jobIds` only (see `park`): `_sink` and `_unfinished` are set.

    def take(self, entry: LogEntry) -> bool:
        update = entry.update
        if update.job_id in cast(set[str], self._unfinished) and update.status_after.state.is_final:
            return False
        return cast(ParkedWatcher, self._sink).take(entry)

    def resume(self) -> None:
        cast(ParkedWatcher, self._sink).resume()

    def close(self) -> None:
        self._watcher.feed.detach(self._subscription)


def _ends(entry: LogEntry, unfinished: set[str]) -> bool:
    """Whether `entry` finishes the last of the watched jobs (and takes it off `unfinished`)."""
    if entry.update.status_after.state.is_final:
        unfinished.discard(entry.update.job_id)
    return not unfinished
