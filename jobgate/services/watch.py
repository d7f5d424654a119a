"""`JobWatcher`: the `jobUpdates` stream: stored updates after a cursor, then live ones.

The seam between replay and live has no gap and no duplicate: the watcher attaches to the feed
first, at the feed's position P, replays the store's updates up to P, and then takes the feed's
entries, all of which come after P. A watcher that lags catches up from the store on its own.

What retention has removed is never skipped in silence: a read from a position before the
store's horizon ends the stream with `CursorExpired` (see `JobStore.log_horizon`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from jobgate.access import Identity
from jobgate.cursors import encode_position
from jobgate.domain.job import Job, JobUpdate
from jobgate.errors import CursorExpired, NotFound
from jobgate.events.feed import ExpressSink, UpdateFeed
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
        self,
        identity: Identity,
        job_ids: Sequence[str] | None,
        after: int | None,
        express: ExpressSink | None = None,
    ) -> AsyncGenerator[UpdateEvent, None]:
        """Every update the caller may read (of `job_ids`, if given) after `after`, then live.

        Without `after`: with `job_ids`, each job's whole history; without, live only. With
        `job_ids`, the stream ends once all of them are final.

        `express`, if given, takes live events (the feed's entries: the event is made from one
        only where needed) at once while the caller waits for the next one, or declines one to
        have it yielded instead. The events it takes are not yielded. Either way each event
        comes once, in order.
        """
        require_few_ids(job_ids, self.max_ids, "jobIds")
        # This frame lives as long as the subscription, often idle among thousands: it keeps
        # no more than it needs (no job objects, no spent replay generators).
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
        try:
            start = subscription.start
            seen = start if after is None and wanted is None else (after or 0)
            ids = None if wanted is None else tuple(wanted)
            # A whole history (no cursor) is what is kept of it; a cursor promises no gap.
            stored = self._stored(seen, start, ids, identity, whole=after is None)
            async for event in self._with_current_jobs(stored):
                seen = event.update.seq
                if unfinished is not None and event.job.status.state.is_final:
                    unfinished.discard(event.job.id)
                yield event
            if unfinished is not None and not unfinished:
                return
            # Live: the feed's entries after `subscription.seen` (which the express path moves
            # too). Inline rather than a generator of its own: every layer of async generator
            # is objects made again for every event, for every one of thousands of watchers.
            subscription.seen = max(seen, start)
            sink = express
            if express is not None and unfinished is not None:
                sink = _UntilTheLast(express, unfinished)
            while True:
                if subscription.lagging:
                    # Fell behind: forget the queue and read what was missed from the store.
                    # Entries the feed offers from now on come after `target`: no gap.
                    self.feed.metrics.feed_catch_ups.inc()
                    target = self.feed.position
                    subscription.drain()
                    subscription.lagging = False
                    stored = self._stored(subscription.seen, target, ids, identity)
                    async for entry in stored:
                        subscription.seen = entry.update.seq
                        yield UpdateEvent(entry.update, entry.job, live=True)
                        if unfinished is not None and _ends(entry, unfinished):
                            return
                    subscription.seen = max(subscription.seen, target)
                    continue
                queued = subscription.take()
                if queued is None:
                    # The sink is the feed's only while this generator waits here.
                    subscription.express = sink
                    try:
                        await subscription.wait()
                    finally:
                        subscription.express = None
                elif queued.update.seq > subscription.seen:
                    subscription.seen = queued.update.seq
                    yield UpdateEvent(queued.update, queued.job, live=True)
                    if unfinished is not None and _ends(queued, unfinished):
                        return
        finally:
            self.feed.detach(subscription)

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


class _UntilTheLast:
    """A sink for a watcher of some jobs: it declines an update that makes one of the
    unfinished jobs final (it may end the stream, which the watcher's own loop does)."""

    __slots__ = ("_sink", "_unfinished")

    def __init__(self, sink: ExpressSink, unfinished: set[str]) -> None:
        self._sink = sink
        self._unfinished = unfinished

    def take(self, entry: LogEntry) -> bool:
        update = entry.update
        if update.job_id in self._unfinished and update.status_after.state.is_final:
            return False
        return self._sink.take(entry)


def _ends(entry: LogEntry, unfinished: set[str]) -> bool:
    """Whether `entry` finishes the last of the watched jobs (and takes it off `unfinished`)."""
    if entry.update.status_after.state.is_final:
        unfinished.discard(entry.update.job_id)
    return not unfinished
