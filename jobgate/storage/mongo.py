"""`MongoJobStore`: jobs in MongoDB through PyMongo's `AsyncMongoClient`.

The update log is a collection of its own, and appending to it is the commit point of every
change: one guarded single-document insert that holds the update and the job's status after it.
Two guards make it safe on any MongoDB-compatible server, FerretDB v1 included (whose updates
are a read followed by a write, not an atomic compare-and-set):

- a unique index on (job, version): of two racing updates to one job, one insert wins;
- the log position is the entry's `_id`, taken as the newest position plus one: a writer only
  takes position n + 1 after it has seen n, so the log becomes visible in order. (The position
  of an append this store undid stays empty: it never writes at a position it tried before.)

The job document is then brought up to date (status, state, version) for queries. A writer that
dies in between leaves its entry in the log; the next writer to that job finds it and rolls the
job document forward. Job numbers come from blocks claimed with unique inserts (hi/lo), so two
gateways never hand out the same number.

Only operators that FerretDB v1 also honours are used: no `$slice`, no transactions.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from itertools import takewhile

import pymongo
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from jobgate.access import Visibility, initial_acl
from jobgate.domain.acl import Acl, acl_from_docs, acl_to_docs, readers
from jobgate.domain.commands import CommandKind, NewCommand, ProviderCommand
from jobgate.domain.job import Job, JobStatus, JobUpdate, UpdateRequest
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import ACTIVE_STATES, FINAL_STATE_VALUES, JobState
from jobgate.domain.values import ResourceOwner, SimpleDuration
from jobgate.errors import IdempotencyKeyReused, StoreUnavailable
from jobgate.storage.base import (
    ActiveUsage,
    CreatedJobs,
    JobFilter,
    JobOrder,
    JobPage,
    JobQuery,
    LogEntry,
    LogQuery,
    NewSubmission,
    OrderField,
    PageKey,
    RoundTrips,
    job_number,
    owner_key,
    sort_key,
)
from jobgate.storage.carried import (
    CARRIED_KEYS,
    NOTHING,
    Carried,
    JobBase,
    StoredEntry,
    carrying,
    completed,
    entry_status_doc,
    is_carrier,
    jobs_needing_bases,
    lookups_needed,
    whole,
)
from jobgate.storage.codec import (
    Doc,
    request_from_doc,
    request_to_doc,
    spec_from_doc,
    spec_to_doc,
    status_from_doc,
    status_to_doc,
)
from jobgate.storage.sessions import SessionRecord
from jobgate.storage.sql_query import ids_to_numbers
from jobgate.storage.tokens import AccessTokenRecord

log = logging.getLogger(__name__)

# When the current request's store calls must be done by (`MongoJobStore.deadline`).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "jobgate_store_deadline", default=None
)

DUPLICATE_KEY = 11000
INTERRUPTED = 11601
INTERNAL_ERROR = 1
# Job numbers are handed out from blocks of this size, each claimed by one process.
NUMBER_BLOCK = 1000
# A log entry whose job document is still behind after this long was left by a writer that died.
ORPHAN_AGE_MS = 10_000
MAX_APPEND_ATTEMPTS = 100
# Undone positions remembered for the reads that were on their way when they were undone.
MAX_UNDONE_REMEMBERED = 1000
# Locks that writes to job documents take (a job's is its number modulo this).
DOCUMENT_STRIPES = 64
# Jobs given ACLs per round when a store made before ACLs is first opened.
MIGRATION_BATCH = 500
# How often retention looks again for final jobs stored before it (without `settledAt`).
SETTLE_RECHECK_SECONDS = 600.0

ORDER_FIELDS = {
    OrderField.CREATED_AT: "createdAt",
    OrderField.NAME: "nameKey",
    OrderField.CREATED_BY: "createdBy",
    OrderField.STATE: "stateRank",
}


class MongoJobStore:
    """Jobs, the update log and idempotency claims in one MongoDB database."""

    def __init__(self, url: str, *, server_selection_timeout_ms: int = 5000) -> None:
        self.url = url
        self.round_trips = RoundTrips()
        self._timeout_seconds = server_selection_timeout_ms / 1000
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=server_selection_timeout_ms,
            connectTimeoutMS=server_selection_timeout_ms,
            tz_aware=False,
        )
        self._db: AsyncDatabase[Doc] = self._client.get_default_database("jobgate")
        self._jobs: AsyncCollection[Doc] = self._db["jobs"]
        self._log: AsyncCollection[Doc] = self._db["update_log"]
        self._submissions: AsyncCollection[Doc] = self._db["submissions"]
        self._blocks: AsyncCollection[Doc] = self._db["number_blocks"]
        self._commands: AsyncCollection[Doc] = self._db["provider_commands"]
        self._command_blocks: AsyncCollection[Doc] = self._db["command_number_blocks"]
        self._tokens: AsyncCollection[Doc] = self._db["access_tokens"]
        self._sessions: AsyncCollection[Doc] = self._db["sessions"]
        # Named numbers of the store itself: `log_horizon` (see `JobStore.log_horizon`).
        self._meta: AsyncCollection[Doc] = self._db["store_meta"]
        self._command_numbers: list[int] = []
        # When retention last found no final job without `settledAt` (`_settle_old_final_jobs`).
        self._old_final_jobs_checked: float | None = None
        self._indexes_ready = False
        self._index_lock = asyncio.Lock()
        self._numbers: list[int] = []
        self._number_lock = asyncio.Lock()
        self._append_lock = asyncio.Lock()
        self._token_lock = asyncio.Lock()
        # Writes to one job's document take turns (`_writing`), by stripes of job numbers.
        self._document_stripes = [asyncio.Lock() for _ in range(DOCUMENT_STRIPES)]
        # The position this process expects to append at next; None means "read it first".
        self._next_position: int | None = None
        # The highest position this process has tried to write: it never writes at or below it
        # again. FerretDB deletes by position once it has found what to delete, so an undo
        # whose answer was lost may still remove whatever stands at its position later.
        self._high_water = 0
        # Writes after a commit point that MongoDB went away before (see `_catch_up`).
        self._unwritten: dict[int, Doc] = {}
        # Job documents to bring to an entry: (version, status, carried_since or None, its time).
        self._behind: dict[int, tuple[int, JobStatus, int | None, int]] = {}
        # The first log position of the append this process is waiting on, if any.
        self._appending: int | None = None
        # The positions of the last entries this process undid, each with the count of undos
        # done when it was (see `_settled`): a read issued after an undo cannot hold the entry
        # undone, and the position may rightly hold a new one by then.
        self._undos = 0
        self._undone: dict[int, int] = {}
        # Positions of appends whose answer was lost: stored, not stored, or still landing (a
        # slow server may commit one after the client gave up). Readers stop before the first
        # until `_settle_lost` fences it with a tombstone; `_settled_at` remembers, by the count
        # of settlements then, the positions settled while a read may have been on its way.
        self._unsettled: set[int] = set()
        self._settles = 0
        self._settled_at: dict[int, int] = {}
        # Appends in doubt, by (job, version, mark): see `_append`.
        self._doubtful: set[tuple[int, int, str]] = set()
        # Every append marks its entries with this store's id and its own number: undoing a
        # doubtful append removes that append's entry only, never another gateway's for the
        # same job and version (a gateway that died after its commit point leaves the job
        # document behind its entry), nor an earlier committed one of this store's (two
        # updates of one job racing here, the loser's duplicate unanswered).
        self._writer = secrets.token_hex(8)
        self._appends = 0

    async def open(self) -> None:
        """Create the indexes; if the server is down, they are created on first use instead."""
        try:
            await self._ensure_indexes()
        except StoreUnavailable as error:
            log.warning("MongoDB is not reachable yet (%s); will retry on first use", error)

    @contextmanager
    def deadline(self) -> Iterator[None]:
        # PyMongo's client-side operation timeout: one budget for every call made inside; and
        # the same deadline for waiting on this store's own locks (`_turn`).
        token = _DEADLINE.set(time.monotonic() + self._timeout_seconds)
        try:
            with pymongo.timeout(self._timeout_seconds):
                yield
        finally:
            _DEADLINE.reset(token)

    def time_left(self) -> float | None:
        ends = _DEADLINE.get()
        return None if ends is None else max(0.0, ends - time.monotonic())

    @asynccontextmanager
    async def _turn(self, lock: asyncio.Lock) -> AsyncIterator[None]:
        """Hold `lock`, waiting for it no longer than the request's deadline: a writer ahead
        that waits for MongoDB does not make this request wait past its own."""
        await self._acquire(lock)
        try:
            yield
        finally:
            lock.release()

    async def _acquire(self, lock: asyncio.Lock) -> None:
        """Acquire `lock` within the request's deadline (`StoreUnavailable` past it)."""
        try:
            async with asyncio.timeout(self.time_left()):
                await lock.acquire()
        except TimeoutError:
            raise StoreUnavailable("the job store (MongoDB) did not answer in time") from None

    async def ping(self) -> None:
        async with self._call("ping"):
            await self._db.command("ping")

    async def close(self) -> None:
        await self._client.close()

    async def _ensure_indexes(self) -> None:
        if self._indexes_ready:
            return
        async with self._turn(self._index_lock), self._call("create_indexes"):
            if self._indexes_ready:
                return
            jobs = self._jobs
            await jobs.create_index(
                [("createdBy", ASCENDING), ("project", ASCENDING)], name="owner"
            )
            await jobs.create_index([("project", ASCENDING)], name="project")
            await jobs.create_index([("state", ASCENDING)], name="state")
            await jobs.create_index(
                [("provider", ASCENDING), ("state", ASCENDING)], name="provider"
            )
            await jobs.create_index([("createdAt", DESCENDING)], name="created_at")
            await jobs.create_index([("handover", ASCENDING), ("_id", ASCENDING)], name="handover")
            await jobs.create_index([("readers", ASCENDING)], name="readers")
            await jobs.create_index([("settledAt", ASCENDING)], name="settled")
            await self._tokens.create_index(
                [("username", ASCENDING), ("createdAt", ASCENDING)], name="user"
            )
            await self._log.create_index(
                [("job", ASCENDING), ("version", ASCENDING)], name="job_version", unique=True
            )
            await self._commands.create_index(
                [("provider", ASCENDING), ("_id", ASCENDING)], name="provider"
            )
            await self._sessions.create_index([("job", ASCENDING)], name="job")
            await self._give_old_jobs_acls()
            await self._submissions.create_index(
                [("owner", ASCENDING), ("key", ASCENDING)], name="idempotency_key", unique=True
            )
            self._indexes_ready = True

    async def _give_old_jobs_acls(self) -> None:
        """Jobs stored before ACLs existed (every member then saw every job of a project): a
        project job's creator is put on its ACL, as at submit today. Once per store, cheap after."""
        while True:
            old = await self._jobs.find(
                {"acl": {"$exists": False}}, projection={"createdBy": True, "project": True}
            ).to_list(MIGRATION_BATCH)
            if not old:
                return
            for doc in old:
                acl = initial_acl(ResourceOwner(doc["createdBy"], doc["project"]))
                await self._log.update_many(
                    {"job": doc["_id"]}, {"$set": {"readers": readers(acl)}}
                )
                async with self._writing([doc["_id"]]):
                    await self._jobs.update_one(
                        {"_id": doc["_id"]},
                        {"$set": _acl_fields(acl)},
                    )

    @asynccontextmanager
    async def _writing(self, numbers: Iterable[int]) -> AsyncIterator[None]:
        """Hold the write turn of these jobs' documents (in stripe order: no deadlock), waiting
        no longer than the request's deadline. FerretDB updates a document by reading it and
        writing it back whole, outside one transaction: two updates of one document at once can
        lose one (a hand-over's completion wrote a job back to its older version, and the job
        never ended). MongoDB updates a document atomically; the turns cost it nothing much."""
        stripes = sorted({number % DOCUMENT_STRIPES for number in numbers})
        held: list[asyncio.Lock] = []
        try:
            for stripe in stripes:
                lock = self._document_stripes[stripe]
                await self._acquire(lock)
                held.append(lock)
            yield
        finally:
            for lock in reversed(held):
                lock.release()

    @asynccontextmanager
    async def _call(self, kind: str) -> AsyncIterator[None]:
        """Count and time one round trip and translate connection failures into
        `StoreUnavailable`."""
        with self.round_trips.measure(kind):
            try:
                yield
            except PyMongoError as error:
                # A request's deadline (`deadline`) that ran out is `timeout`, whatever its class.
                if not (
                    isinstance(error, ConnectionFailure) or error.timeout or _did_not_answer(error)
                ):
                    raise
                log.warning("MongoDB is unavailable: %s", error)
                raise StoreUnavailable("the job store (MongoDB) is unavailable") from error

    # --- numbers and positions ------------------------------------------------------------------

    async def _job_numbers(self, count: int) -> list[int]:
        """`count` job numbers no other process hands out (from blocks claimed by insert)."""
        async with self._turn(self._number_lock):
            while len(self._numbers) < count:
                self._numbers.extend(await self._claim_block(self._blocks))
            taken, self._numbers = self._numbers[:count], self._numbers[count:]
            return taken

    async def _claim_block(self, blocks: AsyncCollection[Doc]) -> range:
        async with self._call("claim_block"):
            newest = await blocks.find_one(sort=[("_id", DESCENDING)])
        block = 0 if newest is None else int(newest["_id"]) + 1
        while True:
            try:
                async with self._call("claim_block"):
                    await blocks.insert_one({"_id": block})
            except DuplicateKeyError:
                block += 1
                continue
            start = block * NUMBER_BLOCK + 1
            return range(start, start + NUMBER_BLOCK)

    async def _newest_position(self) -> int:
        async with self._call("latest"):
            newest = await self._log.find_one(projection={"_id": True}, sort=[("_id", DESCENDING)])
        # Never below the horizon: a log that retention emptied still ends where it ended, and
        # no append takes a position that a cursor already named.
        return max(0 if newest is None else int(newest["_id"]), await self.log_horizon())

    async def _append(self, entries: list[Doc], *, undo_if_unanswered: bool = False) -> list[int]:
        """Append entries to the log at the next free positions, in order.

        Raises `DuplicateKeyError` when an entry's (job, version) is taken: another write to that
        job won. Entries before it are appended. Appends from this process take turns, so they
        never race each other for a position; only another gateway's append can take one first.

        `StoreUnavailable` when MongoDB went away with the insert on its way: it may have stored
        it or not. With `undo_if_unanswered` the caller answers that as a failure, so the
        entries are in doubt (`_undo_doubtful` removes them once MongoDB is back, if stored).
        """
        async with self._turn(self._append_lock):
            positions: list[int] = []
            pending = entries
            for _attempt in range(MAX_APPEND_ATTEMPTS):
                if self._next_position is None:
                    newest = await self._newest_position()
                    self._next_position = max(newest, self._high_water) + 1
                first = self._next_position
                self._appends += 1
                mark = f"{self._writer}.{self._appends}"
                docs = [
                    {"_id": first + offset, **entry, "writer": mark}
                    for offset, entry in enumerate(pending)
                ]
                self._appending = first
                self._high_water = max(self._high_water, first + len(docs) - 1)
                try:
                    async with self._call("append"):
                        await self._log.insert_many(docs, ordered=True)
                except StoreUnavailable:
                    self._next_position = None
                    self._unsettled.update(doc["_id"] for doc in docs)
                    if undo_if_unanswered:
                        self._doubtful.update((d["job"], d["version"], mark) for d in docs)
                    raise
                except BulkWriteError as error:
                    failure = error.details["writeErrors"][0]
                    done = failure["index"]
                    positions += [doc["_id"] for doc in docs[:done]]
                    pending = pending[done:]
                    self._next_position = None
                    if failure.get("code") != DUPLICATE_KEY:
                        raise
                    if await self._version_taken(pending[0]):
                        raise DuplicateKeyError(
                            "the job's version is taken", DUPLICATE_KEY
                        ) from error
                    continue  # only the position was taken, by another gateway: take the next
                except BaseException:
                    # Cancelled (or failed otherwise) with the insert on its way: it may land.
                    self._next_position = None
                    self._unsettled.update(doc["_id"] for doc in docs)
                    raise
                finally:
                    self._appending = None
                self._next_position = first + len(docs)
                return positions + [doc["_id"] for doc in docs]
        raise StoreUnavailable("the update log is too busy to append to; try again")

    async def _version_taken(self, entry: Doc) -> bool:
        async with self._call("append"):
            found = await self._log.find_one(
                {"job": entry["job"], "version": entry["version"]}, projection={"_id": True}
            )
        return found is not None

    # --- writing ------------------------------------------------------------------------------

    async def create_jobs(self, submission: NewSubmission) -> CreatedJobs:
        await self._ensure_indexes()
        claimant = owner_key(submission.owner)
        # A key used before is found by its claim's unique index below, in the same round trip
        # as a new claim (callers ask `earlier_submission` first anyway).
        numbers = await self._job_numbers(len(submission.specifications))
        docs: list[Doc] = []
        for number, spec in zip(numbers, submission.specifications, strict=True):
            status = JobStatus(time_allocation=spec.time_allocation)
            job = Job(
                str(number),
                submission.owner,
                spec,
                status,
                submission.created_at,
                1,
                submission.acl,
                submission.unix_users.get(spec.product.provider),
            )
            # The outbox entry travels in the job's own document: stored with it, or not at all.
            docs.append({**_job_to_doc(job), "handover": True})

        if submission.idempotency_key is not None:
            claim = {
                "_id": _claim_id(claimant, submission.idempotency_key),
                "owner": claimant,
                "key": submission.idempotency_key,
                "requestHash": submission.request_hash,
                "jobs": docs,
                "initialStatus": submission.initial_status,
            }
            try:
                async with self._call("claim"):
                    await self._submissions.insert_one(claim)
            except DuplicateKeyError:
                # Another request with this key won the race (or an older claim holds it):
                # answer with its jobs.
                earlier = await self._earlier_submission(claimant, submission, legacy=True)
                assert earlier is not None
                return earlier
        # A keyed submission's claim is its commit point: its retry completes what failed.
        first = await self._insert_jobs(
            docs, submission.initial_status, undo_if_unanswered=submission.idempotency_key is None
        )
        return CreatedJobs([_job_from_doc(doc) for doc in docs], first_updates=first)

    async def earlier_submission(self, submission: NewSubmission) -> CreatedJobs | None:
        if submission.idempotency_key is None:
            return None
        await self._ensure_indexes()
        return await self._earlier_submission(owner_key(submission.owner), submission)

    async def _earlier_submission(
        self, owner_key: str, submission: NewSubmission, *, legacy: bool = False
    ) -> CreatedJobs | None:
        key = submission.idempotency_key
        assert key is not None
        async with self._call("claim"):
            # By its id: one row to read, where FerretDB scans every claim for other fields.
            claim = await self._submissions.find_one({"_id": _claim_id(owner_key, key)})
            if claim is None and legacy:
                # Claims made before their ids were derived from owner and key.
                claim = await self._submissions.find_one({"owner": owner_key, "key": key})
        if claim is None:
            return None
        if claim["requestHash"] != submission.request_hash:
            raise IdempotencyKeyReused("this idempotency key was used for a different request")
        ids = [str(doc["_id"]) for doc in claim["jobs"]]
        jobs = {job.id: job for job in await self.get_jobs(ids)}
        if len(jobs) < len(ids):
            # A claim is written before its jobs: finish what an earlier crash cut short. (A
            # job's document is written after its entry: with every document there, all is.)
            await self._insert_jobs(claim["jobs"], claim["initialStatus"])
            jobs = {job.id: job for job in await self.get_jobs(ids)}
        return CreatedJobs([jobs[job_id] for job_id in ids], replayed=True)

    async def _insert_jobs(
        self, docs: list[Doc], initial_status: str, *, undo_if_unanswered: bool = False
    ) -> dict[str, JobUpdate]:
        """Append the jobs' IN_QUEUE entries (each holding its job's document), then insert
        the job documents; either may exist already (a retried claim). The appended entries are
        the commit point: a failure before them leaves nothing, one after them is repaired (the
        documents are written from the entries later) and does not fail the call. The first
        updates of the entries appended here, by job id."""
        entries = []
        for doc in docs:
            job = _job_from_doc(doc)
            request = UpdateRequest(job.id, state=JobState.IN_QUEUE, status=initial_status)
            entry = _log_entry(job, request, job.status, job.created_at, version=1)
            entries.append({**entry, "jobDoc": doc})
        first: dict[str, JobUpdate] = {}
        while entries:
            try:
                positions = await self._append(entries, undo_if_unanswered=undo_if_unanswered)
            except DuplicateKeyError:
                # Some entries were appended before (a retried claim): skip those and go on.
                async with self._call("append"):
                    present = await self._log.find(
                        {"job": {"$in": [e["job"] for e in entries]}, "version": 1},
                        projection={"job": True},
                    ).to_list(None)
                done = {doc["job"] for doc in present}
                entries = [e for e in entries if e["job"] not in done]
                continue
            for position, entry in zip(positions, entries, strict=True):
                first[str(entry["job"])] = _update_from_entry({"_id": position, **entry})
            break
        try:
            await self._write_job_docs(docs)
        except StoreUnavailable:
            log.warning("jobs are stored; their documents are written when MongoDB is back")
            self._unwritten.update({doc["_id"]: doc for doc in docs})
        return first

    async def _write_job_docs(self, docs: list[Doc]) -> None:
        try:
            async with self._call("insert_jobs"):
                await self._jobs.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise

    async def _undo_doubtful(self) -> None:
        """Remove the entries of failed appends that MongoDB stored after all: an answer of
        failure means nothing was done. Runs before anything else this store reads, so none of
        them has been read here; a job document that moved past an entry keeps it.

        It takes the appends' turn: FerretDB's find-and-delete finds and then deletes by
        position, so a position freed by another undo and taken by a new append in between
        would lose the new entry. One undo at a time, and no append meanwhile."""
        async with self._turn(self._append_lock):
            for number, version, mark in sorted(self._doubtful):
                await self._undo(number, version, mark)

    async def _settle_lost(self) -> None:
        """Decide the fate of appends whose answer was lost: a tombstone inserted at each of
        their positions either takes it (the lost write never lands: its insert would find the
        position taken) or finds the entry there (it landed). Either way the position is
        settled and readers may pass it. Takes the appends' turn, as undos do."""
        async with self._turn(self._append_lock):
            positions = sorted(self._unsettled)
            if not positions:
                return
            tombstones = [
                # A job number of its own (negative: no job's) keeps (job, version) unique.
                {"_id": position, "job": -position, "version": 0, "tombstone": True}
                for position in positions
            ]
            try:
                async with self._call("settle"):
                    await self._log.insert_many(tombstones, ordered=False)
            except BulkWriteError as error:
                if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                    raise
            self._settles += 1
            for position in positions:
                self._unsettled.discard(position)
                self._settled_at[position] = self._settles
            while len(self._settled_at) > MAX_UNDONE_REMEMBERED:
                del self._settled_at[next(iter(self._settled_at))]

    async def _undo(self, number: int, version: int, mark: str) -> None:
        """Remove the entry `mark`'s append wrote for this job and version, if it is there and
        the job's document has not moved past it."""
        async with self._call("undo"):
            job = await self._jobs.find_one({"_id": number}, projection={"version": True})
            removed = None
            if job is None or job["version"] < version:
                # No projection: FerretDB v1's findAndModify takes none.
                removed = await self._log.find_one_and_delete(
                    {"job": number, "version": version, "writer": mark}
                )
        self._doubtful.discard((number, version, mark))
        if removed is None:
            return
        log.warning("undid job %s's entry %s: its write was answered as failed", number, version)
        # A read already on its way may bring it back: `_settled` drops it.
        self._undos += 1
        self._undone[removed["_id"]] = self._undos
        while len(self._undone) > MAX_UNDONE_REMEMBERED:
            del self._undone[next(iter(self._undone))]
        self._next_position = None

    async def _catch_up(self) -> None:
        """Finish what the store could not after a commit point (MongoDB went away between two
        writes): job documents to insert, job documents to bring to their newest entry; and undo
        what was answered as failed but stored. Before every read, so a read issued after a
        write returned sees it once MongoDB answers."""
        if self._unsettled:
            await self._settle_lost()
        if self._doubtful:
            await self._undo_doubtful()
        if self._unwritten:
            docs = list(self._unwritten.values())
            await self._write_job_docs(docs)
            for doc in docs:
                self._unwritten.pop(doc["_id"], None)
        for number, (version, status, carried_since, at) in list(self._behind.items()):
            await self._apply_to_job(number, version, status, at, carried_since)
            self._behind.pop(number, None)

    async def commit_update(
        self, job: Job, request: UpdateRequest, status_after: JobStatus, timestamp: int
    ) -> JobUpdate | None:
        await self._ensure_indexes()
        entry = _log_entry(job, request, status_after, timestamp, version=job.version + 1)
        try:
            (seq,) = await self._append([entry], undo_if_unanswered=True)
        except DuplicateKeyError:
            await self._roll_forward(job)
            return None
        # Appended: the update is stored, whatever happens to the job document now.
        carried_since = seq if is_carrier(entry["statusAfter"]) else None
        try:
            await self._apply_to_job(
                int(job.id), job.version, status_after, timestamp, carried_since
            )
        except StoreUnavailable:
            log.warning("job %s: its document catches up when MongoDB is back", job.id)
            self._behind[int(job.id)] = (job.version, status_after, carried_since, timestamp)
        return JobUpdate(seq, job.id, timestamp, request, status_after)

    async def _apply_to_job(
        self,
        number: int,
        version: int,
        status: JobStatus,
        at: int,
        carried_since: int | None = None,
    ) -> None:
        """Bring the job document from `version` to the next: `status` (as of `at`), and the
        position of its newest entry carrying the strings when this one does
        (`storage.carried`)."""
        async with self._writing([number]), self._call("commit_update"):
            await self._jobs.update_one(
                {"_id": number, "version": version},
                {
                    "$set": {
                        "state": status.state.value,
                        "stateRank": status.state.lifecycle_rank,
                        "providerGeneratedId": status.provider_generated_id,
                        "status": status_to_doc(status),
                        "version": version + 1,
                        "settledAt": at if status.state.is_final else None,
                        **({} if carried_since is None else {"carriedSince": carried_since}),
                    }
                },
            )

    async def _roll_forward(self, job: Job) -> None:
        """Bring a job document up to a log entry whose writer died before updating it."""
        async with self._call("roll_forward"):
            entry = await self._log.find_one({"job": int(job.id), "version": job.version + 1})
        if entry is None or time.time() * 1000 - entry["timestamp"] < ORPHAN_AGE_MS:
            return
        log.warning("rolling job %s forward to version %s", job.id, job.version + 1)
        # An entry that does not carry the strings left them as the job has them.
        (update,) = completed(
            [_stored_entry(entry)], {job.id: JobBase(entry["_id"], whole(job.status))}, {}
        )
        carried_since = entry["_id"] if is_carrier(entry["statusAfter"]) else None
        await self._apply_to_job(
            int(job.id), job.version, update.status_after, entry["timestamp"], carried_since
        )

    async def update_acl(self, job: Job, acl: Acl) -> bool:
        number = job_number(job.id)
        if number is None:
            return False
        await self._ensure_indexes()
        async with self._writing([number]), self._call("update_acl"):
            result = await self._jobs.update_one(
                {"_id": number, "acl": acl_to_docs(job.acl)},
                {"$set": _acl_fields(acl)},
            )
            if result.matched_count != 1:
                return False
            # The log's copy, for replays filtered in the database. Were MongoDB to go away
            # here, a replay could still offer an entry the job's ACL no longer allows: the
            # watcher checks each against the job as it is (`JobWatcher`).
            await self._log.update_many({"job": number}, {"$set": {"readers": readers(acl)}})
        return True

    # --- personal access tokens --------------------------------------------------------------

    async def add_access_token(self, record: AccessTokenRecord, most: int) -> bool:
        await self._ensure_indexes()
        async with self._turn(self._token_lock), self._call("access_tokens"):
            # One gateway's creations take turns; across gateways the count is near enough.
            if await self._tokens.count_documents({"username": record.username}) >= most:
                return False
            await self._tokens.insert_one(_token_to_doc(record))
        return True

    async def access_token(self, token_id: str) -> AccessTokenRecord | None:
        async with self._call("access_token"):
            doc = await self._tokens.find_one({"_id": token_id})
        return None if doc is None else _token_from_doc(doc)

    async def access_tokens_of(self, username: str) -> list[AccessTokenRecord]:
        async with self._call("access_tokens"):
            docs = (
                await self._tokens.find({"username": username})
                .sort([("createdAt", ASCENDING), ("_id", ASCENDING)])
                .to_list(None)
            )
        return [_token_from_doc(doc) for doc in docs]

    async def revoke_access_token(self, username: str, token_id: str) -> bool:
        async with self._call("access_tokens"):
            result = await self._tokens.delete_one({"_id": token_id, "username": username})
        return result.deleted_count == 1

    async def touch_access_token(self, token_id: str, at: int) -> None:
        async with self._call("access_tokens"):
            await self._tokens.update_one({"_id": token_id}, {"$set": {"lastUsedAt": at}})

    # --- interactive sessions ------------------------------------------------------------------

    async def add_sessions(self, records: Sequence[SessionRecord]) -> None:
        if not records:
            return
        await self._ensure_indexes()
        async with self._call("sessions"):
            await self._sessions.insert_many([_session_to_doc(r) for r in records])

    async def session(self, session_id: str) -> SessionRecord | None:
        async with self._call("session"):
            doc = await self._sessions.find_one({"_id": session_id})
        return None if doc is None else _session_from_doc(doc)

    async def forget_sessions(self, job_ids: Sequence[str]) -> int:
        numbers = ids_to_numbers(job_ids)
        if not numbers:
            return 0
        async with self._call("sessions"):
            result = await self._sessions.delete_many({"job": {"$in": numbers}})
        return result.deleted_count

    # --- reading ------------------------------------------------------------------------------

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        return [_job_from_doc(doc) for doc in await self._job_docs(ids_to_numbers(job_ids))]

    async def _job_docs(self, numbers: Collection[int]) -> list[Doc]:
        """The documents of the jobs that exist among `numbers` (repaired where needed)."""
        if not numbers:
            return []
        await self._catch_up()
        async with self._call("get_jobs"):
            docs = await self._jobs.find({"_id": {"$in": sorted(numbers)}}).to_list(None)
        missing = set(numbers) - {doc["_id"] for doc in docs}
        if missing:
            docs += await self._repair(missing)
        return docs

    async def _repair(self, numbers: set[int]) -> list[Doc]:
        """Job documents of committed jobs a writer that died (or lost MongoDB) did not write:
        inserted from their first entries. Harmless beside a writer still at it: both insert
        the same document, and the second insert is refused."""
        async with self._call("repair"):
            entries = await self._log.find(
                {"job": {"$in": sorted(numbers)}, "version": 1, "jobDoc": {"$exists": True}}
            ).to_list(None)
        docs = [entry["jobDoc"] for entry in entries]
        if docs:
            old = time.time() * 1000 - ORPHAN_AGE_MS
            left = sorted(e["job"] for e in entries if e["timestamp"] < old)
            if left:  # not a writer still at it, but one that died or lost MongoDB
                log.warning("writing the documents of committed jobs %s from the log", left)
            await self._write_job_docs(docs)
        return docs

    async def find_jobs(self, query: JobQuery) -> JobPage:
        await self._ensure_indexes()
        await self._catch_up()
        conditions = [
            _visibility_query(query.visibility),
            _filter_query(query.filter),
            _page_query(query.order, query.after),
        ]
        direction = DESCENDING if query.order.descending else ASCENDING
        async with self._call("find_jobs"):
            docs = (
                await self._jobs.find({"$and": conditions})
                .sort([(ORDER_FIELDS[query.order.field], direction), ("_id", direction)])
                .limit(query.limit + 1)
                .to_list(None)
            )
        jobs = [_job_from_doc(doc) for doc in docs[: query.limit]]
        return JobPage(jobs, has_next=len(docs) > query.limit)

    async def count_jobs(self, visibility: Visibility, job_filter: JobFilter) -> int:
        await self._catch_up()
        async with self._call("count_jobs"):
            return await self._jobs.count_documents(
                {"$and": [_visibility_query(visibility), _filter_query(job_filter)]}
            )

    async def count_by_provider_and_state(self) -> dict[tuple[str, str], int]:
        await self._catch_up()
        pipeline: list[Doc] = [
            {"$group": {"_id": {"provider": "$provider", "state": "$state"}, "n": {"$sum": 1}}}
        ]
        async with self._call("count_by_state"):
            groups = await (await self._jobs.aggregate(pipeline)).to_list(None)
        return {(g["_id"]["provider"], g["_id"]["state"]): g["n"] for g in groups}

    async def active_usage(self, username: str) -> ActiveUsage:
        await self._catch_up()
        states = sorted(state.value for state in ACTIVE_STATES)
        async with self._call("active_usage"):
            # Only the replica counts come back, of at most the quota's number of jobs.
            docs = await self._jobs.find(
                {"createdBy": username, "state": {"$in": states}},
                projection={"spec.replicas": True, "_id": False},
            ).to_list(None)
        return ActiveUsage(jobs=len(docs), replicas=sum(doc["spec"]["replicas"] for doc in docs))

    async def updates_of(
        self, job_ids: Sequence[str], last: int | None = None
    ) -> dict[str, list[JobUpdate]]:
        numbers = ids_to_numbers(job_ids)
        result: dict[str, list[JobUpdate]] = defaultdict(list)
        if numbers:
            async with self._call("updates_of"):
                docs = (
                    await self._log.find({"job": {"$in": numbers}})
                    .sort("_id", ASCENDING)
                    .to_list(None)
                )
            for update in await self._completed([_stored_entry(doc) for doc in docs]):
                result[update.job_id].append(update)
        if last is not None:
            for job_id, updates in result.items():
                result[job_id] = updates[-last:] if last > 0 else []
        return {str(n): result.get(str(n), []) for n in numbers}

    async def latest_seq(self) -> int:
        await self._catch_up()
        return await self._newest_position()

    async def read_log(self, query: LogQuery) -> list[LogEntry]:
        await self._ensure_indexes()
        await self._catch_up()
        conditions: list[Doc] = [{"_id": {"$gt": query.after}}]
        if query.up_to is not None:
            conditions.append({"_id": {"$lte": query.up_to}})
        if query.job_ids is not None:
            conditions.append({"job": {"$in": ids_to_numbers(query.job_ids)}})
        if query.visibility is not None:
            conditions.append(_visibility_query(query.visibility))
        conditions.append({"job": {"$gt": 0}})  # not the tombstones of lost appends
        undos_before, settles_before = self._undos, self._settles
        async with self._call("read_log"):
            docs = (
                await self._log.find({"$and": conditions})
                .sort("_id", ASCENDING)
                .limit(query.limit)
                .to_list(None)
            )
        docs = self._settled(docs, query.after, undos_before, settles_before)
        job_docs = await self._job_docs({doc["job"] for doc in docs})
        jobs = {str(doc["_id"]): _job_from_doc(doc) for doc in job_docs}
        stored = [_stored_entry(doc) for doc in docs]
        updates = await self._completed(stored, job_docs)
        # An entry whose job retention removed while this read was on its way is not read.
        return [
            LogEntry(update, jobs[update.job_id].as_of(update))
            for update in updates
            if update.job_id in jobs
        ]

    async def _completed(
        self, entries: list[StoredEntry], job_docs: list[Doc] | None = None
    ) -> list[JobUpdate]:
        """The entries with their whole statuses (`jobgate.storage.carried`); `job_docs` are
        the documents of their jobs if at hand (else read when needed)."""
        if job_docs is None:
            needing = {int(job_id) for job_id in jobs_needing_bases(entries)}
            job_docs = await self._job_docs(needing) if needing else []
        newest: dict[str, int] = {}
        for entry in entries:
            assert entry.version is not None
            newest[entry.job_id] = max(newest.get(entry.job_id, 0), entry.version)
        # A document that has not caught up with the entries read cannot vouch for them.
        bases: dict[str, JobBase | None] = {
            str(doc["_id"]): JobBase(doc.get("carriedSince", 0), Carried.of(doc["status"]))
            if doc["version"] >= newest.get(str(doc["_id"]), 0)
            else None
            for doc in job_docs
        }
        looked_up: dict[str, Carried] = {}
        for job_id, first in lookups_needed(entries, bases).items():
            async with self._call("carried"):
                found = await self._log.find_one(
                    {
                        "job": int(job_id),
                        "version": {"$lt": first.version},
                        "statusAfter.outputFolder": {"$exists": True},
                    },
                    sort=[("version", DESCENDING)],
                )
            looked_up[job_id] = NOTHING if found is None else Carried.of(found["statusAfter"])
        return completed(entries, bases, looked_up)

    def _settled(
        self, docs: list[Doc], after: int, undos_before: int, settles_before: int
    ) -> list[Doc]:
        """The entries up to the first one whose append is not answered yet (in flight here, or
        answered as failed and about to be undone, or undone while this read was on its way),
        and before any position whose write may still land; in order. `undos_before` and
        `settles_before` are `_undos` and `_settles` when the read was issued.

        A reader (the update feed) must never pass on an entry that is then undone: it would
        reach watchers as an update that never happened. Nor pass a position whose write lands
        after it read past it: that update would never reach them. The rest come with the next
        read. An undone position is suspect only to reads issued before its undo: the next
        append takes the freed position, and a later read must pass its new entry on.
        """
        in_flight = self._appending
        # Positions lost, or settled since this read was issued (it may not have seen them),
        # ahead of the reader (every append takes a position beyond what anyone has read).
        lost = [*self._unsettled]
        for position, settle in reversed(self._settled_at.items()):  # newest settled first
            if settle <= settles_before:
                break
            lost.append(position)
        fence = min((p for p in lost if p > after), default=None)
        for index, doc in enumerate(docs):
            if (
                (in_flight is not None and doc["_id"] >= in_flight)
                or (fence is not None and doc["_id"] >= fence)
                or (doc["job"], doc["version"], doc.get("writer")) in self._doubtful
                or self._undone.get(doc["_id"], 0) > undos_before
            ):
                return docs[:index]
        return docs

    # --- retention ----------------------------------------------------------------------------
    # Order matters without transactions: the horizon rises before anything goes (readers rely
    # on it); a job's strings move to its first kept entry before the entries before it go; and
    # a job's idempotency claim and entries go before its document, which they could rewrite.

    async def log_horizon(self) -> int:
        async with self._call("log_horizon"):
            doc = await self._meta.find_one({"_id": "log_horizon"})
        return 0 if doc is None else int(doc["value"])

    async def _raise_horizon(self, position: int) -> None:
        for _attempt in range(2):
            try:
                async with self._call("log_horizon"):
                    await self._meta.update_one(
                        {"_id": "log_horizon"}, {"$max": {"value": position}}, upsert=True
                    )
                return
            except DuplicateKeyError:
                continue  # another gateway's upsert made it first: now it is there

    async def forget_updates(self, before: int, limit: int) -> int:
        await self._ensure_indexes()
        async with self._call("retention"):
            oldest = await self._log.find().sort("_id", ASCENDING).limit(limit).to_list(None)
        # Tombstones (of lost appends) have no time: they go with what is around them.
        doomed = list(takewhile(lambda doc: doc.get("timestamp", before - 1) < before, oldest))
        if not doomed:
            return 0
        horizon = int(doomed[-1]["_id"])
        await self._raise_horizon(horizon)
        carriers: dict[int, Doc] = {}
        newest: dict[int, int] = {}
        for doc in doomed:
            if doc["job"] > 0:  # not a tombstone
                newest[doc["job"]] = max(newest.get(doc["job"], 0), doc["version"])
                if is_carrier(doc["statusAfter"]):
                    carriers[doc["job"]] = doc["statusAfter"]
        if carriers:
            # A job's versions follow each other in the log: its first kept entry is the one
            # after its newest going one. One query for all (FerretDB scans for each).
            async with self._call("retention"):
                first_kept = await self._log.find(
                    {"$or": [{"job": job, "version": newest[job] + 1} for job in carriers]},
                    projection={"_id": True, "job": True, "statusAfter": True},
                ).to_list(None)
            for doc in first_kept:
                if is_carrier(doc["statusAfter"]):
                    continue
                strings = carrying(doc["statusAfter"], carriers[doc["job"]])
                # One at a time, each in its job's turn (as `update_acl` writes entries): one
                # write for all was slower on FerretDB and held every job's turn throughout.
                async with self._writing([doc["job"]]), self._call("retention"):
                    await self._log.update_one(
                        {"_id": doc["_id"]},
                        {"$set": {f"statusAfter.{key}": strings[key] for key in CARRIED_KEYS}},
                    )
        async with self._call("retention"):
            await self._log.delete_many({"_id": {"$lte": horizon}})
        return len(doomed)

    async def forget_final_jobs(self, finished_before: int, limit: int) -> int:
        await self._ensure_indexes()
        await self._settle_old_final_jobs(limit)
        async with self._call("retention"):
            docs = (
                await self._jobs.find(
                    {"settledAt": {"$lt": finished_before}}, projection={"_id": True}
                )
                .sort("settledAt", ASCENDING)
                .limit(limit)
                .to_list(None)
            )
        numbers = [doc["_id"] for doc in docs]
        if not numbers:
            return 0
        async with self._call("retention"):
            newest = await self._log.find_one(
                {"job": {"$in": numbers}}, projection={"_id": True}, sort=[("_id", DESCENDING)]
            )
        if newest is not None:
            await self._raise_horizon(int(newest["_id"]))
        async with self._call("retention"):
            # A key whose jobs are gone is forgotten with them: a retry makes new jobs.
            await self._submissions.delete_many({"jobs._id": {"$in": numbers}})
            await self._log.delete_many({"job": {"$in": numbers}})
            await self._commands.delete_many({"job": {"$in": [str(n) for n in numbers]}})
            await self._sessions.delete_many({"job": {"$in": numbers}})
        async with self._writing(numbers), self._call("retention"):
            await self._jobs.delete_many({"_id": {"$in": numbers}})
        return len(numbers)

    async def _settle_old_final_jobs(self, limit: int) -> None:
        """Final jobs stored before retention have no `settledAt`: their newest entry's time.
        Looked for once per `SETTLE_RECHECK_SECONDS`, not in every batch of a run: documents
        without it come only from gateways of an earlier version (during an upgrade)."""
        checked = self._old_final_jobs_checked
        if checked is not None and time.monotonic() - checked < SETTLE_RECHECK_SECONDS:
            return
        while True:
            async with self._call("retention"):
                docs = await self._jobs.find(
                    {"state": {"$in": list(FINAL_STATE_VALUES)}, "settledAt": {"$exists": False}},
                    projection={"_id": True, "createdAt": True},
                ).to_list(limit)
            if not docs:
                self._old_final_jobs_checked = time.monotonic()
                return
            for doc in docs:
                async with self._call("retention"):
                    newest = await self._log.find_one(
                        {"job": doc["_id"]}, sort=[("version", DESCENDING)]
                    )
                settled = doc["createdAt"] if newest is None else newest["timestamp"]
                async with self._writing([doc["_id"]]), self._call("retention"):
                    await self._jobs.update_one(
                        {"_id": doc["_id"], "settledAt": {"$exists": False}},
                        {"$set": {"settledAt": settled}},
                    )

    # --- the hand-over outbox -----------------------------------------------------------------

    async def pending_handovers(self, provider: str | None = None, limit: int = 1000) -> list[Job]:
        await self._ensure_indexes()
        await self._catch_up()
        query: Doc = {"handover": True}
        if provider is not None:
            query["provider"] = provider
        async with self._call("pending_handovers"):
            docs = await self._jobs.find(query, sort=[("_id", ASCENDING)]).to_list(limit)
        return [_job_from_doc(doc) for doc in docs]

    async def complete_handovers(self, job_ids: Sequence[str]) -> None:
        numbers = ids_to_numbers(job_ids)
        if numbers:
            async with self._writing(numbers), self._call("complete_handovers"):
                await self._jobs.update_many(
                    {"_id": {"$in": numbers}}, {"$unset": {"handover": ""}}
                )

    # --- provider commands --------------------------------------------------------------------
    # Commands are numbered from their own hi/lo blocks: unique across gateways, increasing within
    # one. Agents re-read every pending command, so an order that interleaves across gateways
    # never hides one.

    async def add_commands(self, commands: Sequence[NewCommand]) -> list[ProviderCommand]:
        await self._ensure_indexes()
        async with self._turn(self._number_lock):
            while len(self._command_numbers) < len(commands):
                self._command_numbers.extend(await self._claim_block(self._command_blocks))
            numbers = self._command_numbers[: len(commands)]
            self._command_numbers = self._command_numbers[len(commands) :]
        stored = [
            ProviderCommand(
                number,
                command.provider,
                command.kind,
                command.job_id,
                command.created_at,
                command.requested_time,
            )
            for number, command in zip(numbers, commands, strict=True)
        ]
        if stored:
            async with self._call("add_commands"):
                await self._commands.insert_many([_command_to_doc(c) for c in stored])
        return stored

    async def pending_commands(
        self, provider: str, after: int = 0, limit: int = 1000
    ) -> list[ProviderCommand]:
        async with self._call("pending_commands"):
            docs = await self._commands.find(
                {"provider": provider, "_id": {"$gt": after}}, sort=[("_id", ASCENDING)]
            ).to_list(limit)
        return [_command_from_doc(doc) for doc in docs]

    async def acknowledge_commands(self, provider: str, seqs: Sequence[int]) -> int:
        if not seqs:
            return 0
        async with self._call("acknowledge_commands"):
            result = await self._commands.delete_many(
                {"provider": provider, "_id": {"$in": list(seqs)}}
            )
        return result.deleted_count


def _did_not_answer(error: PyMongoError) -> bool:
    """The server failed the operation itself, not for anything in it: MongoDB's `Interrupted`,
    or an `InternalError`, which is how FerretDB says every way it could not do it now (a
    SQLite query interrupted under load or past its `maxTimeMS`, "context deadline exceeded",
    a SQLite file locked past its busy timeout: where MongoDB would time out or wait). The
    caller may try again; nothing in the request was wrong."""
    return isinstance(error, OperationFailure) and error.code in (INTERRUPTED, INTERNAL_ERROR)


def _acl_fields(acl: Acl) -> Doc:
    """A job document's ACL, and the readers it names (what `_visibility_query` matches)."""
    return {"acl": acl_to_docs(acl), "readers": readers(acl)}


def _claim_id(owner_key: str, key: str) -> str:
    """An idempotency claim's id: its owner and key (unique together, as the index says)."""
    return f"{owner_key}\x00{key}"


def _token_to_doc(record: AccessTokenRecord) -> Doc:
    return {
        "_id": record.id,
        "username": record.username,
        "name": record.name,
        "secretDigest": record.secret_digest,
        "projects": list(record.projects),
        "createdAt": record.created_at,
        "expiresAt": record.expires_at,
        "lastUsedAt": record.last_used_at,
        "unixUser": record.unix_user,
    }


def _token_from_doc(doc: Doc) -> AccessTokenRecord:
    return AccessTokenRecord(
        doc["_id"],
        doc["username"],
        doc["name"],
        doc["secretDigest"],
        tuple(doc["projects"]),
        doc["createdAt"],
        doc["expiresAt"],
        doc.get("lastUsedAt"),
        doc.get("unixUser"),
    )


def _job_to_doc(job: Job) -> Doc:
    spec = job.specification
    return {
        "_id": int(job.id),
        "idText": job.id,
        "createdBy": job.owner.created_by,
        "project": job.owner.project,
        "provider": spec.product.provider,
        "productId": spec.product.id,
        "productCategory": spec.product.category,
        "application": spec.application.name,
        "name": spec.name,
        "nameKey": sort_key(job, OrderField.NAME),
        "state": job.status.state.value,
        "stateRank": job.status.state.lifecycle_rank,
        "createdAt": job.created_at,
        "providerGeneratedId": job.status.provider_generated_id,
        "version": job.version,
        "spec": spec_to_doc(spec),
        "status": status_to_doc(job.status),
        **_acl_fields(job.acl),
        "unixUser": job.unix_user,
        # For a final job, when it last changed (retention removes it N days later).
        "settledAt": None,
    }


def _job_from_doc(doc: Doc) -> Job:
    return Job(
        id=str(doc["_id"]),
        owner=ResourceOwner(doc["createdBy"], doc["project"]),
        specification=spec_from_doc(doc["spec"]),
        status=status_from_doc(doc["status"]),
        created_at=doc["createdAt"],
        version=doc["version"],
        acl=acl_from_docs(doc.get("acl")),
        unix_user=doc.get("unixUser"),  # absent from jobs stored before Unix accounts
    )


def _log_entry(
    job: Job, request: UpdateRequest, status_after: JobStatus, timestamp: int, *, version: int
) -> Doc:
    # The owner fields and the ACL's readers are copied so that the log can be filtered by
    # visibility on its own (`update_acl` keeps the readers current).
    return {
        "job": int(job.id),
        "version": version,
        "createdBy": job.owner.created_by,
        "project": job.owner.project,
        "provider": job.provider,
        "readers": readers(job.acl),
        "timestamp": timestamp,
        "request": request_to_doc(request),
        "statusAfter": entry_status_doc(status_to_doc(status_after), request, first=version == 1),
    }


def _stored_entry(doc: Doc) -> StoredEntry:
    job_id = str(doc["job"])
    return StoredEntry(
        seq=doc["_id"],
        job_id=job_id,
        timestamp=doc["timestamp"],
        request=request_from_doc(job_id, doc["request"]),
        status_doc=doc["statusAfter"],
        version=doc["version"],
    )


def _update_from_entry(doc: Doc) -> JobUpdate:
    """The update of an entry that carries its strings (a job's first one)."""
    job_id = str(doc["job"])
    return JobUpdate(
        seq=doc["_id"],
        job_id=job_id,
        timestamp=doc["timestamp"],
        request=request_from_doc(job_id, doc["request"]),
        status_after=status_from_doc(doc["statusAfter"]),
    )


def _visibility_query(visibility: Visibility) -> Doc:
    """`Visibility.allows` as a query (`jobgate.access` owns the rule), on the jobs and on the
    log alike: both hold the owner fields and the readers of the job's ACL."""
    if visibility.everything:
        return {}
    if visibility.provider is not None:
        return {"provider": visibility.provider}
    branches: list[Doc] = [{"project": None, "createdBy": visibility.username}]
    if visibility.managed:
        branches.append({"project": {"$in": sorted(visibility.managed)}})
    if visibility.entities:
        branches.append(
            {
                "readers": {"$in": sorted(visibility.entities)},
                "project": {"$in": [None, *sorted(visibility.member)]},
            }
        )
    return branches[0] if len(branches) == 1 else {"$or": branches}


def _filter_query(job_filter: JobFilter) -> Doc:
    conditions: list[Doc] = []
    equals = {
        "application": job_filter.application,
        "createdBy": job_filter.created_by,
        "project": job_filter.project,
        "provider": job_filter.provider,
        "productId": job_filter.product_id,
        "productCategory": job_filter.product_category,
        "providerGeneratedId": job_filter.provider_generated_id,
    }
    conditions.extend({key: value} for key, value in equals.items() if value is not None)
    if job_filter.states is not None:
        conditions.append({"state": {"$in": sorted(job_filter.states)}})
    if job_filter.created_after is not None:
        conditions.append({"createdAt": {"$gte": job_filter.created_after}})
    if job_filter.created_before is not None:
        conditions.append({"createdAt": {"$lte": job_filter.created_before}})
    if job_filter.ids is not None:
        conditions.append({"_id": {"$in": ids_to_numbers(job_filter.ids)}})
    if job_filter.query:
        pattern = {"$regex": re.escape(job_filter.query), "$options": "i"}
        conditions.append(
            {"$or": [{"name": pattern}, {"application": pattern}, {"idText": pattern}]}
        )
    return {"$and": conditions} if conditions else {}


def _page_query(order: JobOrder, after: PageKey | None) -> Doc:
    if after is None:
        return {}
    field = ORDER_FIELDS[order.field]
    op = "$lt" if order.descending else "$gt"
    return {
        "$or": [
            {field: {op: after.value}},
            {field: after.value, "_id": {op: after.job_number}},
        ]
    }


def _session_to_doc(record: SessionRecord) -> Doc:
    return {
        "_id": record.id,
        "secretDigest": record.secret_digest,
        "job": int(record.job_id),
        "rank": record.rank,
        "type": record.type.value,
        "username": record.username,
        "createdAt": record.created_at,
        "openBy": record.open_by,
    }


def _session_from_doc(doc: Doc) -> SessionRecord:
    return SessionRecord(
        doc["_id"],
        doc["secretDigest"],
        str(doc["job"]),
        doc["rank"],
        SessionType(doc["type"]),
        doc["username"],
        doc["createdAt"],
        doc["openBy"],
    )


def _command_to_doc(command: ProviderCommand) -> Doc:
    requested = command.requested_time
    return {
        "_id": command.seq,
        "provider": command.provider,
        "kind": command.kind.value,
        "job": command.job_id,
        "createdAt": command.created_at,
        "requestedSeconds": None if requested is None else requested.total_seconds,
    }


def _command_from_doc(doc: Doc) -> ProviderCommand:
    requested = doc.get("requestedSeconds")
    return ProviderCommand(
        int(doc["_id"]),
        doc["provider"],
        CommandKind(doc["kind"]),
        doc["job"],
        doc["createdAt"],
        None if requested is None else SimpleDuration.from_seconds(requested),
    )
