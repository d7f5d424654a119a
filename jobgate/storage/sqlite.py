"""`SqliteJobStore`: the embedded default store (aiosqlite, WAL).

One writer connection, guarded by a lock, does every write in an explicit transaction, so the
update log's positions are assigned in commit order and the log has no gaps. A second connection
serves reads; with WAL it never waits for the writer and sees only committed data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from itertools import takewhile
from pathlib import Path
from typing import Any

import aiosqlite

from jobgate.access import Visibility
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
    JobPage,
    JobQuery,
    LogEntry,
    LogQuery,
    NewSubmission,
    OrderField,
    RoundTrips,
    job_number,
    owner_key,
    sort_key,
)
from jobgate.storage.carried import (
    NOTHING,
    Carried,
    JobBase,
    StoredEntry,
    carrying,
    completed,
    entry_status_doc,
    is_carrier,
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
from jobgate.storage.sql_query import (
    ORDER_COLUMNS,
    Branch,
    filter_sql,
    ids_to_numbers,
    jobs_source,
    page_sql,
    placeholders,
    user_arms,
    visibility_sql,
)
from jobgate.storage.tokens import AccessTokenRecord

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    num INTEGER PRIMARY KEY AUTOINCREMENT,
    created_by TEXT NOT NULL,
    project TEXT,
    provider TEXT NOT NULL,
    product_id TEXT NOT NULL,
    product_category TEXT NOT NULL,
    application TEXT NOT NULL,
    name TEXT,
    name_key TEXT NOT NULL,
    state TEXT NOT NULL,
    state_rank INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    provider_generated_id TEXT,
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    acl TEXT NOT NULL DEFAULT '[]',
    unix_user TEXT,
    -- For a final job, when it last changed (retention removes it N days later); else NULL.
    settled_at INTEGER
);
-- A user's personal jobs and each project's, in each order a page can ask (see find_jobs;
-- an index's rows of one key are in job number order, which serves CREATED_BY in the
-- personal arm, where every job has the same creator).
CREATE INDEX IF NOT EXISTS jobs_personal_created ON jobs (created_by, project, created_at, num);
CREATE INDEX IF NOT EXISTS jobs_project_created ON jobs (project, created_at, num);
CREATE INDEX IF NOT EXISTS jobs_personal_name ON jobs (created_by, project, name_key, num);
CREATE INDEX IF NOT EXISTS jobs_project_name ON jobs (project, name_key, num);
CREATE INDEX IF NOT EXISTS jobs_personal_state ON jobs (created_by, project, state_rank, num);
CREATE INDEX IF NOT EXISTS jobs_project_state ON jobs (project, state_rank, num);
CREATE INDEX IF NOT EXISTS jobs_personal ON jobs (created_by, project);
CREATE INDEX IF NOT EXISTS jobs_project_creator ON jobs (project, created_by, num);
-- The same with one state: a `states` filter reads an arm per state (jobs_personal_state
-- serves CREATED_BY and STATE for personal jobs, jobs_project_state STATE for a project's).
CREATE INDEX IF NOT EXISTS jobs_personal_state_created
    ON jobs (created_by, project, state_rank, created_at, num);
CREATE INDEX IF NOT EXISTS jobs_project_state_created ON jobs (project, state_rank, created_at, num);
CREATE INDEX IF NOT EXISTS jobs_personal_state_name
    ON jobs (created_by, project, state_rank, name_key, num);
CREATE INDEX IF NOT EXISTS jobs_project_state_name ON jobs (project, state_rank, name_key, num);
CREATE INDEX IF NOT EXISTS jobs_project_state_creator ON jobs (project, state_rank, created_by, num);
DROP INDEX IF EXISTS jobs_owner;
DROP INDEX IF EXISTS jobs_project;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
-- The metrics' count of jobs by provider and state, from the index alone.
CREATE INDEX IF NOT EXISTS jobs_provider_state ON jobs (provider, state);
DROP INDEX IF EXISTS jobs_provider;  -- the same columns as jobs_provider_state
CREATE INDEX IF NOT EXISTS jobs_created_at ON jobs (created_at);
CREATE TABLE IF NOT EXISTS job_updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_num INTEGER NOT NULL REFERENCES jobs (num),
    timestamp INTEGER NOT NULL,
    request TEXT NOT NULL,
    status_after TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_updates_job ON job_updates (job_num, seq);
CREATE TABLE IF NOT EXISTS submissions (
    owner TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_nums TEXT NOT NULL,
    PRIMARY KEY (owner, idempotency_key)
);
CREATE TABLE IF NOT EXISTS provider_commands (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    job_num INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    requested_seconds INTEGER
);
CREATE INDEX IF NOT EXISTS provider_commands_provider ON provider_commands (provider, seq);
-- Who a job's ACL lets read it (`jobgate.domain.acl.readers`), for visibility in queries,
-- with the job's project (NULL: personal), so that a user's entries are read only where they
-- matter (`sql_query.visibility_branches`).
CREATE TABLE IF NOT EXISTS job_readers (
    entity TEXT NOT NULL,
    job_num INTEGER NOT NULL REFERENCES jobs (num),
    project TEXT,
    PRIMARY KEY (entity, job_num)
) WITHOUT ROWID;
-- Personal access tokens: the digest of each secret, never the secret (`storage.tokens`).
CREATE TABLE IF NOT EXISTS access_tokens (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_digest TEXT NOT NULL,
    projects TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    unix_user TEXT
);
CREATE INDEX IF NOT EXISTS access_tokens_user ON access_tokens (username, created_at);
-- The outbox: jobs stored but not yet confirmed handed to their provider (see JobStore).
CREATE TABLE IF NOT EXISTS handovers (
    job_num INTEGER PRIMARY KEY REFERENCES jobs (num),
    provider TEXT NOT NULL
);
-- Interactive sessions: the digest of each capability, never the capability (`storage.sessions`).
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    secret_digest TEXT NOT NULL,
    job_num INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    type TEXT NOT NULL,
    username TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    open_by INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_job ON sessions (job_num);
-- Named numbers of the store itself: `log_horizon` (see `JobStore.log_horizon`).
CREATE TABLE IF NOT EXISTS store_meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# Indexes on columns that `_migrate` may have to add first.
MIGRATED_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_settled ON jobs (settled_at) WHERE settled_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS job_readers_scope ON job_readers (entity, project, job_num);
-- The providerGeneratedId filter (a provider's own id: Slurm's job id), not a scan.
CREATE INDEX IF NOT EXISTS jobs_provider_generated_id ON jobs (provider_generated_id)
    WHERE provider_generated_id IS NOT NULL;
"""

JOB_COLUMNS = (
    "jobs.num, jobs.created_by, jobs.project, jobs.created_at, jobs.version, jobs.spec,"
    " jobs.status, jobs.acl, jobs.unix_user"
)
JOB_COLUMN_COUNT = JOB_COLUMNS.count(",") + 1

# The numbers the next job and the next update get, as AUTOINCREMENT would give them: above
# every number ever given (kept in sqlite_sequence, which an explicit number also raises) and
# every row there is. Read inside the write transaction, so nobody else takes them first.
_NEXT_NUMBERS = (
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0),"
    " coalesce((SELECT max(num) FROM jobs), 0)) + 1,"
    " max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'job_updates'), 0),"
    " coalesce((SELECT max(seq) FROM job_updates), 0)) + 1"
)
_INSERT_READER = "INSERT INTO job_readers (entity, job_num, project) VALUES (?, ?, ?)"


class SqliteJobStore:
    """Jobs and the update log in one SQLite file."""

    # A user's page with a creation range and another order sorts the range's jobs of each
    # arm when there are fewer than this, else walks the order's index (`find_jobs`).
    range_sort_limit = 2000

    def __init__(self, path: Path) -> None:
        self.path = path
        self.round_trips = RoundTrips()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        if self._writer is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._writer.execute("PRAGMA synchronous=NORMAL")
            await self._writer.execute("PRAGMA busy_timeout=5000")
            await self._writer.executescript(SCHEMA)
            await self._migrate(self._writer)
            await self._writer.executescript(MIGRATED_INDEXES)
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
            await self._reader.execute("PRAGMA busy_timeout=5000")
        except (sqlite3.OperationalError, OSError) as error:
            await self.close()
            raise StoreUnavailable(
                f"cannot open the SQLite store at {self.path}: {error}"
            ) from error

    @staticmethod
    async def _migrate(db: aiosqlite.Connection) -> None:
        """Bring a store made by an earlier version up to this schema."""
        async with db.execute("PRAGMA table_info(jobs)") as cursor:
            columns = {row[1] for row in await cursor.fetchall()}
        if "carried_since" not in columns:
            # 0: every entry written before carried strings existed carries them itself.
            await db.execute("ALTER TABLE jobs ADD COLUMN carried_since INTEGER NOT NULL DEFAULT 0")
        if "acl" not in columns:
            # Before ACLs, every member saw every job of a project: its creator keeps theirs.
            await db.execute("ALTER TABLE jobs ADD COLUMN acl TEXT NOT NULL DEFAULT '[]'")
            await db.execute(
                "UPDATE jobs SET acl = json_array(json_object('entity', 'user:' || created_by,"
                " 'permissions', json_array('EDIT', 'READ'))) WHERE project IS NOT NULL"
            )
            await db.execute(
                "INSERT OR IGNORE INTO job_readers (entity, job_num, project)"
                " SELECT 'user:' || created_by, num, project FROM jobs WHERE project IS NOT NULL"
            )
        if "unix_user" not in columns:
            # Jobs from before Unix accounts ran as their provider's own account.
            await db.execute("ALTER TABLE jobs ADD COLUMN unix_user TEXT")
        if "settled_at" not in columns:
            # Final jobs from before retention: settled at their newest update.
            await db.execute("ALTER TABLE jobs ADD COLUMN settled_at INTEGER")
            await db.execute(
                "UPDATE jobs SET settled_at = coalesce((SELECT max(timestamp) FROM job_updates"
                f" WHERE job_num = jobs.num), created_at)"
                f" WHERE state IN ({placeholders(len(FINAL_STATE_VALUES))})",
                FINAL_STATE_VALUES,
            )
        async with db.execute("PRAGMA table_info(access_tokens)") as cursor:
            if "unix_user" not in {row[1] for row in await cursor.fetchall()}:
                await db.execute("ALTER TABLE access_tokens ADD COLUMN unix_user TEXT")
        async with db.execute("PRAGMA table_info(job_readers)") as cursor:
            if "project" not in {row[1] for row in await cursor.fetchall()}:
                # Each entry learns its job's project (a job's project never changes).
                await db.execute("ALTER TABLE job_readers ADD COLUMN project TEXT")
                await db.execute(
                    "UPDATE job_readers SET project = (SELECT project FROM jobs"
                    " WHERE jobs.num = job_readers.job_num)"
                )

    def deadline(self) -> AbstractContextManager[None]:
        # A local file: a write waits at most busy_timeout for another process's lock.
        return nullcontext()

    def time_left(self) -> float | None:
        return None

    async def ping(self) -> None:
        await self._fetch("SELECT 1", (), "ping")

    async def close(self) -> None:
        for connection in (self._reader, self._writer):
            if connection is not None:
                await connection.close()
        self._reader = self._writer = None

    # --- writing ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._writer is None:
            raise StoreUnavailable("the SQLite store is not open")
        async with self._write_lock:
            db = self._writer
            with self.round_trips.measure("write"):
                try:
                    await db.execute("BEGIN IMMEDIATE")
                    try:
                        yield db
                    except BaseException:
                        await db.execute("ROLLBACK")
                        raise
                    await db.execute("COMMIT")
                except sqlite3.OperationalError as error:
                    log.warning("SQLite write failed: %s", error)
                    raise StoreUnavailable(f"the SQLite store failed to write: {error}") from error

    async def create_jobs(self, submission: NewSubmission) -> CreatedJobs:
        claimant = owner_key(submission.owner)
        async with self._transaction() as db:
            earlier = await self._earlier_submission(db, submission)
            if earlier is not None:
                return earlier
            # Numbered here, inside the write transaction, so that every table is written with
            # one `executemany` (a call is a hop to aiosqlite's thread: four per job cost 0.65 s
            # for 1,000 jobs).
            async with db.execute(_NEXT_NUMBERS) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            first_number, first_seq = row
            created: list[Job] = []
            first: dict[str, JobUpdate] = {}
            job_rows: list[tuple[object, ...]] = []
            reader_rows: list[tuple[str, int, str | None]] = []
            update_rows: list[tuple[object, ...]] = []
            for offset, spec in enumerate(submission.specifications):
                number, seq = first_number + offset, first_seq + offset
                job_id = str(number)
                status = JobStatus(time_allocation=spec.time_allocation)
                job = Job(
                    id=job_id,
                    owner=submission.owner,
                    specification=spec,
                    status=status,
                    created_at=submission.created_at,
                    version=1,
                    acl=submission.acl,
                    unix_user=submission.unix_users.get(spec.product.provider),
                )
                status_text = json.dumps(status_to_doc(status))
                job_rows.append(
                    (
                        number,
                        job.owner.created_by,
                        job.owner.project,
                        spec.product.provider,
                        spec.product.id,
                        spec.product.category,
                        spec.application.name,
                        spec.name,
                        sort_key(job, OrderField.NAME),
                        status.state.value,
                        status.state.lifecycle_rank,
                        job.created_at,
                        None,
                        job.version,
                        json.dumps(spec_to_doc(spec)),
                        status_text,
                        _acl_text(job.acl),
                        job.unix_user,
                    )
                )
                reader_rows.extend(_reader_rows(number, job.owner.project, job.acl))
                request = UpdateRequest(
                    job_id, state=JobState.IN_QUEUE, status=submission.initial_status
                )
                update_rows.append(
                    (seq, number, job.created_at, json.dumps(request_to_doc(request)), status_text)
                )
                first[job_id] = JobUpdate(seq, job_id, job.created_at, request, status)
                created.append(job)
            await db.executemany(
                "INSERT INTO jobs (num, created_by, project, provider, product_id,"
                " product_category, application, name, name_key, state, state_rank, created_at,"
                " provider_generated_id, version, spec, status, acl, unix_user)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                job_rows,
            )
            await db.executemany(_INSERT_READER, reader_rows)
            await db.executemany(
                "INSERT INTO job_updates (seq, job_num, timestamp, request, status_after)"
                " VALUES (?, ?, ?, ?, ?)",
                update_rows,
            )
            await db.executemany(
                "INSERT INTO handovers (job_num, provider) VALUES (?, ?)",
                [(int(job.id), job.specification.product.provider) for job in created],
            )
            if submission.idempotency_key is not None:
                await db.execute(
                    "INSERT INTO submissions (owner, idempotency_key, request_hash, job_nums)"
                    " VALUES (?, ?, ?, ?)",
                    (
                        claimant,
                        submission.idempotency_key,
                        submission.request_hash,
                        json.dumps([int(job.id) for job in created]),
                    ),
                )
            return CreatedJobs(created, first_updates=first)

    async def commit_update(
        self, job: Job, request: UpdateRequest, status_after: JobStatus, timestamp: int
    ) -> JobUpdate | None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE jobs SET state = ?, state_rank = ?, provider_generated_id = ?, status = ?,"
                " settled_at = ?, version = version + 1 WHERE num = ? AND version = ?",
                (
                    status_after.state.value,
                    status_after.state.lifecycle_rank,
                    status_after.provider_generated_id,
                    json.dumps(status_to_doc(status_after)),
                    timestamp if status_after.state.is_final else None,
                    int(job.id),
                    job.version,
                ),
            )
            if cursor.rowcount != 1:
                return None
            stored_status = entry_status_doc(status_to_doc(status_after), request, first=False)
            cursor = await db.execute(
                "INSERT INTO job_updates (job_num, timestamp, request, status_after)"
                " VALUES (?, ?, ?, ?)",
                (
                    int(job.id),
                    timestamp,
                    json.dumps(request_to_doc(request)),
                    json.dumps(stored_status),
                ),
            )
            seq = cursor.lastrowid
            assert seq is not None
            if is_carrier(stored_status):
                await db.execute(
                    "UPDATE jobs SET carried_since = ? WHERE num = ?", (seq, int(job.id))
                )
            return JobUpdate(seq, job.id, timestamp, request, status_after)

    # --- reading ------------------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[object], kind: str) -> list[Any]:
        if self._reader is None:
            raise StoreUnavailable("the SQLite store is not open")
        with self.round_trips.measure(kind):
            try:
                # One call on the reader's thread, so no other read's statement runs in between:
                # overlapping statements on one connection share one read snapshot, which then
                # never ends under steady reads, and a read would miss writes that had returned.
                return list(await self._reader.execute_fetchall(sql, tuple(params)))
            except sqlite3.OperationalError as error:
                log.warning("SQLite read failed: %s", error)
                raise StoreUnavailable(f"the SQLite store failed to read: {error}") from error

    async def earlier_submission(self, submission: NewSubmission) -> CreatedJobs | None:
        if submission.idempotency_key is None:
            return None  # no transaction for a request without a key
        # In a write transaction: it sees every submission that has returned (read-your-writes).
        async with self._transaction() as db:
            return await self._earlier_submission(db, submission)

    async def _earlier_submission(
        self, db: aiosqlite.Connection, submission: NewSubmission
    ) -> CreatedJobs | None:
        if submission.idempotency_key is None:
            return None
        cursor = await db.execute(
            "SELECT request_hash, job_nums FROM submissions WHERE owner = ? AND idempotency_key = ?",
            (owner_key(submission.owner), submission.idempotency_key),
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        if row[0] != submission.request_hash:
            raise IdempotencyKeyReused("this idempotency key was used for a different request")
        numbers: list[int] = json.loads(row[1])
        return CreatedJobs(await self._jobs_by_numbers(db, numbers), replayed=True)

    async def _jobs_by_numbers(self, db: aiosqlite.Connection, numbers: list[int]) -> list[Job]:
        if not numbers:
            return []
        cursor = await db.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE num IN ({placeholders(len(numbers))})",
            numbers,
        )
        by_number = {row[0]: _job_from_row(row) for row in await cursor.fetchall()}
        return [by_number[n] for n in numbers if n in by_number]

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        numbers = ids_to_numbers(job_ids)
        if not numbers:
            return []
        rows = await self._fetch(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE num IN ({placeholders(len(numbers))})",
            numbers,
            "get_jobs",
        )
        return [_job_from_row(row) for row in rows]

    async def find_jobs(self, query: JobQuery) -> JobPage:
        arms = user_arms(query.visibility, query.filter)
        if arms is not None:
            return await self._find_in_arms(query, arms)
        # Everything, a provider's jobs, or few named jobs: one query.
        page, order_by, page_params = page_sql(query.order, query.after)
        filtered, filter_params = filter_sql(query.filter)
        visible, visible_params = visibility_sql(query.visibility)
        rows = await self._fetch(
            f"SELECT {JOB_COLUMNS} FROM {jobs_source(query.filter)}"
            f" WHERE {visible} AND {filtered} AND {page}"
            f" ORDER BY {order_by} LIMIT ?",
            [*visible_params, *filter_params, *page_params, query.limit + 1],
            "find_jobs",
        )
        jobs = [_job_from_row(row) for row in rows[: query.limit]]
        return JobPage(jobs, has_next=len(rows) > query.limit)

    async def _find_in_arms(self, query: JobQuery, arms: list[Branch]) -> JobPage:
        """A user's page: one arm per personal workspace and project (and per state, for a
        `states` filter), each read in order from its index for this order (`jobs_personal_*`,
        `jobs_project_*`, `jobs_*_state_*`) and cut at the page size, then merged: the cost is
        the page's, not the store's (an OR over visibility would sort every visible job first).
        """
        page, order_by, page_params = page_sql(query.order, query.after)
        direction = "DESC" if query.order.descending else "ASC"
        column = ORDER_COLUMNS[query.order.field]
        job_filter = dataclasses.replace(query.filter, states=None)  # an arm has one state
        if not arms:  # `states: []`
            return JobPage([], has_next=False)
        walks = await self._walks_past_the_range(query, arms)
        sql: list[str] = []
        params: list[object] = []
        for (clause, arm_params, source), walk in zip(arms, walks, strict=True):
            filtered, filter_params = filter_sql(job_filter, in_arms=True, walk=walk)
            sql.append(
                f"SELECT * FROM (SELECT {JOB_COLUMNS}, jobs.{column} AS sort_key FROM {source}"
                f" WHERE {clause} AND {filtered} AND {page} ORDER BY {order_by} LIMIT ?)"
            )
            params += [*arm_params, *filter_params, *page_params, query.limit + 1]
        rows = await self._fetch(
            f"{' UNION ALL '.join(sql)} ORDER BY sort_key {direction}, num {direction} LIMIT ?",
            [*params, query.limit + 1],
            "find_jobs",
        )
        jobs = [_job_from_row(row[:-1]) for row in rows[: query.limit]]
        return JobPage(jobs, has_next=len(rows) > query.limit)

    async def _walks_past_the_range(self, query: JobQuery, arms: list[Branch]) -> list[bool]:
        """For each arm, whether it walks the order's index past a `createdAfter`/
        `createdBefore` range rather than reading the range from the creation index and
        sorting it. No index serves a range in one column and an order in another: a range
        of few jobs is sorted (at most `range_sort_limit` of them), a wide one is walked (about
        a page's worth of its jobs in every page's worth of the walk). One count, cut at the
        limit, for all arms."""
        job_filter = query.filter
        ranged = job_filter.created_after is not None or job_filter.created_before is not None
        if not ranged or query.order.field is OrderField.CREATED_AT:
            return [False] * len(arms)
        in_range, range_params = filter_sql(
            JobFilter(
                created_after=job_filter.created_after, created_before=job_filter.created_before
            )
        )
        counts = [
            f"(SELECT count(*) FROM (SELECT 1 FROM {arm.source} WHERE {arm.clause}"
            f" AND {in_range} LIMIT ?))"
            for arm in arms
        ]
        params = [
            param for arm in arms for param in (*arm.params, *range_params, self.range_sort_limit)
        ]
        (row,) = await self._fetch(f"SELECT {', '.join(counts)}", params, "find_jobs_range")
        return [count >= self.range_sort_limit for count in row]

    async def count_jobs(self, visibility: Visibility, job_filter: JobFilter) -> int:
        arms = user_arms(visibility, job_filter)
        if arms is not None:
            # A user's count, arm by arm as their pages are read: each arm counts from its
            # own index, without reading a job where the filter asks only what the index holds.
            if not arms:  # `states: []`
                return 0
            filtered, filter_params = filter_sql(
                dataclasses.replace(job_filter, states=None), in_arms=True
            )
            counts = [
                f"SELECT count(*) FROM {arm.source} WHERE {arm.clause} AND {filtered}"
                for arm in arms
            ]
            params = [param for arm in arms for param in (*arm.params, *filter_params)]
            rows = await self._fetch(
                f"SELECT sum(n) FROM ({' UNION ALL '.join(f'SELECT ({c}) AS n' for c in counts)})",
                params,
                "count_jobs",
            )
            return int(rows[0][0])
        visible, visible_params = visibility_sql(visibility)
        filtered, filter_params = filter_sql(job_filter)
        rows = await self._fetch(
            f"SELECT count(*) FROM {jobs_source(job_filter)} WHERE {visible} AND {filtered}",
            [*visible_params, *filter_params],
            "count_jobs",
        )
        return int(rows[0][0])

    async def count_by_provider_and_state(self) -> dict[tuple[str, str], int]:
        rows = await self._fetch(
            "SELECT provider, state, count(*) FROM jobs GROUP BY provider, state",
            (),
            "count_by_state",
        )
        return {(provider, state): count for provider, state, count in rows}

    async def active_usage(self, username: str) -> ActiveUsage:
        states = sorted(state.value for state in ACTIVE_STATES)
        rows = await self._fetch(
            "SELECT count(*), coalesce(sum(json_extract(spec, '$.replicas')), 0) FROM jobs"
            f" WHERE created_by = ? AND state IN ({placeholders(len(states))})",
            [username, *states],
            "active_usage",
        )
        return ActiveUsage(jobs=int(rows[0][0]), replicas=int(rows[0][1]))

    async def updates_of(
        self, job_ids: Sequence[str], last: int | None = None
    ) -> dict[str, list[JobUpdate]]:
        numbers = ids_to_numbers(job_ids)
        result: dict[str, list[JobUpdate]] = {str(n): [] for n in numbers}
        if not numbers:
            return result
        where = f"job_num IN ({placeholders(len(numbers))})"
        params: list[object] = list(numbers)
        # Each entry comes with its job's carried strings (`storage.carried`), in one read.
        columns = "u.seq, u.job_num, u.timestamp, u.request, u.status_after, j.carried_since"
        if last is None:
            sql = (
                f"SELECT {columns}, j.status FROM job_updates AS u"
                f" JOIN jobs AS j ON j.num = u.job_num WHERE u.{where} ORDER BY u.seq"
            )
        else:
            sql = (
                f"SELECT {columns}, j.status FROM ("
                " SELECT *, row_number() OVER (PARTITION BY job_num ORDER BY seq DESC) AS age"
                f" FROM job_updates WHERE {where}) AS u JOIN jobs AS j ON j.num = u.job_num"
                " WHERE u.age <= ? ORDER BY u.seq"
            )
            params.append(last)
        rows = await self._fetch(sql, params, "updates_of")
        entries = [_entry_from_row(row[:5]) for row in rows]
        bases: dict[str, JobBase | None] = {str(row[1]): _base(row[5], row[6]) for row in rows}
        for update in await self._completed(entries, bases):
            result[update.job_id].append(update)
        return result

    async def _completed(
        self, entries: list[StoredEntry], bases: dict[str, JobBase | None]
    ) -> list[JobUpdate]:
        """The entries with their whole statuses (`jobgate.storage.carried`)."""
        looked_up: dict[str, Carried] = {}
        for job_id, first in lookups_needed(entries, bases).items():
            rows = await self._fetch(
                "SELECT status_after FROM job_updates WHERE job_num = ? AND seq < ?"
                " AND json_type(status_after, '$.outputFolder') IS NOT NULL"
                " ORDER BY seq DESC LIMIT 1",
                [int(job_id), first.seq],
                "carried",
            )
            looked_up[job_id] = Carried.of(json.loads(rows[0][0])) if rows else NOTHING
        return completed(entries, bases, looked_up)

    async def latest_seq(self) -> int:
        # Never below the horizon: a log that retention emptied still ends where it ended.
        rows = await self._fetch(
            "SELECT max(coalesce((SELECT max(seq) FROM job_updates), 0),"
            " coalesce((SELECT value FROM store_meta WHERE name = 'log_horizon'), 0))",
            [],
            "latest",
        )
        return int(rows[0][0])

    async def log_horizon(self) -> int:
        rows = await self._fetch(
            "SELECT value FROM store_meta WHERE name = 'log_horizon'", [], "log_horizon"
        )
        return int(rows[0][0]) if rows else 0

    async def read_log(self, query: LogQuery) -> list[LogEntry]:
        clauses = ["u.seq > ?"]
        params: list[object] = [query.after]
        if query.up_to is not None:
            clauses.append("u.seq <= ?")
            params.append(query.up_to)
        if query.job_ids is not None:
            numbers = ids_to_numbers(query.job_ids)
            clauses.append(f"u.job_num IN ({placeholders(len(numbers))})" if numbers else "0=1")
            params.extend(numbers)
        if query.visibility is not None:
            visible, visible_params = visibility_sql(query.visibility)
            clauses.append(visible)
            params.extend(visible_params)
        rows = await self._fetch(
            f"SELECT u.seq, u.job_num, u.timestamp, u.request, u.status_after, {JOB_COLUMNS},"
            " jobs.carried_since FROM job_updates AS u JOIN jobs ON jobs.num = u.job_num"
            f" WHERE {' AND '.join(clauses)} ORDER BY u.seq LIMIT ?",
            [*params, query.limit],
            "read_log",
        )
        stored = [_entry_from_row(row[:5]) for row in rows]
        end = 5 + JOB_COLUMN_COUNT  # the entry's columns, then the job's, then carried_since
        jobs = {str(row[5]): _job_from_row(row[5:end]) for row in rows}
        bases: dict[str, JobBase | None] = {
            job_id: JobBase(row[end], whole(jobs[job_id].status))
            for job_id, row in ((str(row[5]), row) for row in rows)
        }
        return [
            LogEntry(update, jobs[update.job_id].as_of(update))
            for update in await self._completed(stored, bases)
        ]

    async def update_acl(self, job: Job, acl: Acl) -> bool:
        number = job_number(job.id)
        if number is None:
            return False
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE jobs SET acl = ? WHERE num = ? AND acl = ?",
                (_acl_text(acl), number, _acl_text(job.acl)),
            )
            if cursor.rowcount != 1:
                return False
            await db.execute("DELETE FROM job_readers WHERE job_num = ?", (number,))
            await _add_readers(db, number, job.owner.project, acl)
        return True

    # --- retention ----------------------------------------------------------------------------
    # Each batch is one write transaction, so a writer waits for one batch at most.

    async def forget_updates(self, before: int, limit: int) -> int:
        async with self._transaction() as db:
            cursor = await db.execute(
                "SELECT seq, job_num, timestamp, status_after FROM job_updates"
                " ORDER BY seq LIMIT ?",
                (limit,),
            )
            doomed = list(takewhile(lambda row: row[2] < before, await cursor.fetchall()))
            if not doomed:
                return 0
            horizon = doomed[-1][0]
            await _raise_horizon(db, horizon)
            # The newest carrying entry of each job among those going (`storage.carried`).
            carriers: dict[int, Doc] = {}
            for _seq, number, _timestamp, status_after in doomed:
                doc = json.loads(status_after)
                if is_carrier(doc):
                    carriers[number] = doc
            await db.execute("DELETE FROM job_updates WHERE seq <= ?", (horizon,))
            if carriers:
                numbers = list(carriers)
                cursor = await db.execute(
                    "SELECT seq, job_num, status_after FROM job_updates WHERE seq IN"
                    " (SELECT min(seq) FROM job_updates"
                    f" WHERE job_num IN ({placeholders(len(numbers))}) GROUP BY job_num)",
                    numbers,
                )
                promoted = [
                    (json.dumps(carrying(json.loads(status), carriers[number])), seq)
                    for seq, number, status in await cursor.fetchall()
                ]
                await db.executemany(
                    "UPDATE job_updates SET status_after = ? WHERE seq = ?", promoted
                )
            return len(doomed)

    async def forget_final_jobs(self, finished_before: int, limit: int) -> int:
        async with self._transaction() as db:
            cursor = await db.execute(
                "SELECT num FROM jobs WHERE settled_at < ? ORDER BY settled_at LIMIT ?",
                (finished_before, limit),
            )
            numbers = [row[0] for row in await cursor.fetchall()]
            if not numbers:
                return 0
            among = f"({placeholders(len(numbers))})"
            cursor = await db.execute(
                f"SELECT max(seq) FROM job_updates WHERE job_num IN {among}", numbers
            )
            row = await cursor.fetchone()
            if row is not None and row[0] is not None:
                await _raise_horizon(db, row[0])
            for table in (
                "job_updates",
                "job_readers",
                "handovers",
                "provider_commands",
                "sessions",
            ):
                await db.execute(f"DELETE FROM {table} WHERE job_num IN {among}", numbers)
            # A key whose jobs are gone is forgotten with them: a retry makes new jobs.
            await db.execute(
                "DELETE FROM submissions WHERE EXISTS (SELECT 1 FROM json_each(job_nums)"
                f" WHERE json_each.value IN {among})",
                numbers,
            )
            await db.execute(f"DELETE FROM jobs WHERE num IN {among}", numbers)
            return len(numbers)

    # --- interactive sessions ------------------------------------------------------------------

    async def add_sessions(self, records: Sequence[SessionRecord]) -> None:
        async with self._transaction() as db:
            await db.executemany(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.id,
                        r.secret_digest,
                        int(r.job_id),
                        r.rank,
                        r.type.value,
                        r.username,
                        r.created_at,
                        r.open_by,
                    )
                    for r in records
                ],
            )

    async def session(self, session_id: str) -> SessionRecord | None:
        rows = await self._fetch(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?", [session_id], "session"
        )
        if not rows:
            return None
        sid, digest, job_num, rank, kind, username, created_at, open_by = rows[0]
        return SessionRecord(
            sid, digest, str(job_num), rank, SessionType(kind), username, created_at, open_by
        )

    async def forget_sessions(self, job_ids: Sequence[str]) -> int:
        numbers = ids_to_numbers(job_ids)
        if not numbers:
            return 0
        async with self._transaction() as db:
            cursor = await db.execute(
                f"DELETE FROM sessions WHERE job_num IN ({placeholders(len(numbers))})", numbers
            )
            return cursor.rowcount

    # --- personal access tokens --------------------------------------------------------------

    async def add_access_token(self, record: AccessTokenRecord, most: int) -> bool:
        async with self._transaction() as db:
            async with db.execute(
                "SELECT count(*) FROM access_tokens WHERE username = ?", (record.username,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None and row[0] >= most:
                return False
            await db.execute(
                f"INSERT INTO access_tokens ({PAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.username,
                    record.name,
                    record.secret_digest,
                    json.dumps(list(record.projects)),
                    record.created_at,
                    record.expires_at,
                    record.last_used_at,
                    record.unix_user,
                ),
            )
        return True

    async def access_token(self, token_id: str) -> AccessTokenRecord | None:
        rows = await self._fetch(
            f"SELECT {PAT_COLUMNS} FROM access_tokens WHERE id = ?",
            [token_id],
            "access_token",
        )
        return _token_from_row(rows[0]) if rows else None

    async def access_tokens_of(self, username: str) -> list[AccessTokenRecord]:
        rows = await self._fetch(
            f"SELECT {PAT_COLUMNS} FROM access_tokens WHERE username = ? ORDER BY created_at, id",
            [username],
            "access_tokens",
        )
        return [_token_from_row(row) for row in rows]

    async def revoke_access_token(self, username: str, token_id: str) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute(
                "DELETE FROM access_tokens WHERE username = ? AND id = ?", (username, token_id)
            )
            return cursor.rowcount == 1

    async def touch_access_token(self, token_id: str, at: int) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE access_tokens SET last_used_at = ? WHERE id = ?", (at, token_id)
            )

    # --- the hand-over outbox -----------------------------------------------------------------

    async def pending_handovers(self, provider: str | None = None, limit: int = 1000) -> list[Job]:
        where, params = ("1=1", []) if provider is None else ("h.provider = ?", [provider])
        rows = await self._fetch(
            f"SELECT {JOB_COLUMNS} FROM handovers AS h JOIN jobs ON jobs.num = h.job_num"
            f" WHERE {where} ORDER BY h.job_num LIMIT ?",
            [*params, limit],
            "pending_handovers",
        )
        return [_job_from_row(row) for row in rows]

    async def complete_handovers(self, job_ids: Sequence[str]) -> None:
        numbers = ids_to_numbers(job_ids)
        if not numbers:
            return
        async with self._transaction() as db:
            await db.execute(
                f"DELETE FROM handovers WHERE job_num IN ({placeholders(len(numbers))})", numbers
            )

    # --- provider commands --------------------------------------------------------------------

    async def add_commands(self, commands: Sequence[NewCommand]) -> list[ProviderCommand]:
        stored: list[ProviderCommand] = []
        async with self._transaction() as db:
            for command in commands:
                requested = command.requested_time
                cursor = await db.execute(
                    "INSERT INTO provider_commands"
                    " (provider, kind, job_num, created_at, requested_seconds) VALUES (?, ?, ?, ?, ?)",
                    (
                        command.provider,
                        command.kind.value,
                        int(command.job_id),
                        command.created_at,
                        None if requested is None else requested.total_seconds,
                    ),
                )
                assert cursor.lastrowid is not None
                stored.append(
                    ProviderCommand(
                        cursor.lastrowid,
                        command.provider,
                        command.kind,
                        command.job_id,
                        command.created_at,
                        requested,
                    )
                )
        return stored

    async def pending_commands(
        self, provider: str, after: int = 0, limit: int = 1000
    ) -> list[ProviderCommand]:
        rows = await self._fetch(
            "SELECT seq, provider, kind, job_num, created_at, requested_seconds FROM provider_commands"
            " WHERE provider = ? AND seq > ? ORDER BY seq LIMIT ?",
            [provider, after, limit],
            "pending_commands",
        )
        return [
            ProviderCommand(
                seq,
                provider_id,
                CommandKind(kind),
                str(job_num),
                created_at,
                None
                if requested_seconds is None
                else SimpleDuration.from_seconds(requested_seconds),
            )
            for seq, provider_id, kind, job_num, created_at, requested_seconds in rows
        ]

    async def acknowledge_commands(self, provider: str, seqs: Sequence[int]) -> int:
        if not seqs:
            return 0
        async with self._transaction() as db:
            cursor = await db.execute(
                f"DELETE FROM provider_commands WHERE provider = ? AND seq IN ({placeholders(len(seqs))})",
                (provider, *seqs),
            )
            return cursor.rowcount


SESSION_COLUMNS = "id, secret_digest, job_num, rank, type, username, created_at, open_by"

PAT_COLUMNS = (
    "id, username, name, secret_digest, projects, created_at, expires_at, last_used_at, unix_user"
)


def _token_from_row(row: Sequence[Any]) -> AccessTokenRecord:
    token_id, username, name, digest, projects, created_at, expires_at, last_used_at, unix = row
    return AccessTokenRecord(
        token_id,
        username,
        name,
        digest,
        tuple(json.loads(projects)),
        created_at,
        expires_at,
        last_used_at,
        unix,
    )


async def _raise_horizon(db: aiosqlite.Connection, position: int) -> None:
    """Before removing entries up to `position` (see `JobStore.log_horizon`)."""
    await db.execute(
        "INSERT INTO store_meta (name, value) VALUES ('log_horizon', ?)"
        " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
        (position,),
    )


async def _add_readers(
    db: aiosqlite.Connection, number: int, project: str | None, acl: Acl
) -> None:
    """The rows of `job_readers` that stand for the ACL of job `number` (of `project`)."""
    await db.executemany(_INSERT_READER, _reader_rows(number, project, acl))


def _reader_rows(number: int, project: str | None, acl: Acl) -> list[tuple[str, int, str | None]]:
    return [(entity, number, project) for entity in readers(acl)]


def _acl_text(acl: Acl) -> str:
    # Compact, as SQLite's json functions write it (the migration): `update_acl` compares text.
    return json.dumps(acl_to_docs(acl), separators=(",", ":"))


def _job_from_row(row: Sequence[Any]) -> Job:
    number, created_by, project, created_at, version, spec, status, acl, unix_user = row
    return Job(
        id=str(number),
        owner=ResourceOwner(created_by, project),
        specification=spec_from_doc(json.loads(spec)),
        status=status_from_doc(json.loads(status)),
        created_at=created_at,
        version=version,
        acl=acl_from_docs(json.loads(acl)),
        unix_user=unix_user,
    )


def _entry_from_row(row: Sequence[Any]) -> StoredEntry:
    seq, job_num, timestamp, request, status_after = row
    job_id = str(job_num)
    return StoredEntry(
        seq=seq,
        job_id=job_id,
        timestamp=timestamp,
        request=request_from_doc(job_id, json.loads(request)),
        status_doc=json.loads(status_after),
    )


def _base(carried_since: int, status: str) -> JobBase:
    return JobBase(carried_since, Carried.of(json.loads(status)))
