"""Retention in the JobStore contract: both stores remove the same things, and nothing newer.

Times are the tests' own (milliseconds since 0): entries and jobs are stamped by the caller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from jobgate.access import Visibility
from jobgate.domain.commands import CommandKind, NewCommand
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.storage.base import JobFilter, JobQuery, JobStore, LogQuery
from jobgate.storage.mongo import MongoJobStore
from jobgate.storage.sqlite import SqliteJobStore
from tests.factories import spec, submission
from tests.servers import fresh_database

EVERYTHING = Visibility(everything=True)


async def update(
    store: JobStore,
    job: Job,
    at: int,
    state: JobState | None = None,
    *,
    output_folder: str | None = None,
    provider_generated_id: str | None = None,
) -> Job:
    """Store one update of `job` at time `at`; the job after it."""
    request = UpdateRequest(
        job.id,
        state=state,
        status=f"at {at}",
        output_folder=output_folder,
        provider_generated_id=provider_generated_id,
    )
    status = dataclasses.replace(
        job.status,
        state=state or job.status.state,
        output_folder=output_folder or job.status.output_folder,
        provider_generated_id=provider_generated_id or job.status.provider_generated_id,
    )
    assert await store.commit_update(job, request, status, at) is not None
    (fresh,) = await store.get_jobs([job.id])
    return fresh


async def forget_updates(store: JobStore, before: int, batch: int = 2) -> int:
    total = 0
    while removed := await store.forget_updates(before, batch):
        total += removed
    return total


async def forget_final_jobs(store: JobStore, before: int, batch: int = 2) -> int:
    total = 0
    while removed := await store.forget_final_jobs(before, batch):
        total += removed
    return total


async def test_updates_older_than_the_window_leave_the_log_and_newer_ones_stay(
    store: JobStore,
) -> None:
    one, two = (await store.create_jobs(submission(spec(), spec(), at=1_000))).jobs
    one = await update(store, one, 2_000, JobState.RUNNING)
    two = await update(store, two, 3_000, JobState.RUNNING)
    one = await update(store, one, 8_000)
    two = await update(store, two, 9_000, JobState.SUCCESS)
    everything = await store.read_log(LogQuery(after=0))
    latest = await store.latest_seq()
    assert await store.log_horizon() == 0

    assert await forget_updates(store, before=5_000) == 4  # two IN_QUEUE, two RUNNING

    kept = await store.read_log(LogQuery(after=0))
    assert [e.update for e in kept] == [e.update for e in everything if e.update.timestamp >= 5_000]
    assert await store.log_horizon() == max(
        e.update.seq for e in everything if e.update.timestamp < 5_000
    )
    assert await store.latest_seq() == latest
    # The jobs themselves are untouched: only their histories are shorter.
    assert await store.get_jobs([one.id]) == [one]
    assert await store.get_jobs([two.id]) == [two]
    histories = await store.updates_of([one.id, two.id])
    assert [u.timestamp for u in histories[one.id]] == [8_000]
    assert [u.timestamp for u in histories[two.id]] == [9_000]
    # A second run finds nothing more to do.
    assert await forget_updates(store, before=5_000) == 0


async def test_a_kept_update_still_has_the_strings_a_removed_one_carried(store: JobStore) -> None:
    """An entry stores the output folder and the provider's id only when they change
    (`storage.carried`); removing the entry that set them must not lose them for the rest."""
    (job,) = (await store.create_jobs(submission(at=1_000))).jobs
    job = await update(
        store, job, 2_000, JobState.RUNNING, output_folder="/out/a", provider_generated_id="p-1"
    )
    job = await update(store, job, 3_000)  # carries nothing
    job = await update(store, job, 4_000)
    job = await update(store, job, 8_000, output_folder="/out/b")
    job = await update(store, job, 9_000)

    assert await forget_updates(store, before=2_500) == 2
    horizon = await store.log_horizon()

    kept = (await store.updates_of([job.id]))[job.id]
    assert [(u.timestamp, u.status_after.output_folder) for u in kept] == [
        (3_000, "/out/a"),
        (4_000, "/out/a"),
        (8_000, "/out/b"),
        (9_000, "/out/b"),
    ]
    assert {u.status_after.provider_generated_id for u in kept} == {"p-1"}
    # Read one entry at a time, as a resuming watcher pages: each is whole on its own.
    position = horizon
    seen: list[tuple[str | None, str | None]] = []
    while entries := await store.read_log(LogQuery(after=position, limit=1)):
        (entry,) = entries
        seen.append((entry.update.status_after.output_folder, entry.job.status.output_folder))
        position = entry.update.seq
    folders = ["/out/a", "/out/a", "/out/b", "/out/b"]
    assert seen == [(folder, folder) for folder in folders]


async def test_a_log_emptied_by_retention_still_ends_where_it_ended(store: JobStore) -> None:
    (job,) = (await store.create_jobs(submission(at=1_000))).jobs
    job = await update(store, job, 2_000, JobState.RUNNING)
    latest = await store.latest_seq()

    assert await forget_updates(store, before=10_000) == 2

    assert await store.read_log(LogQuery(after=0)) == []
    assert await store.latest_seq() == latest == await store.log_horizon()
    # The next update takes a position after every cursor given out before.
    job = await update(store, job, 11_000, JobState.SUCCESS)
    (entry,) = await store.read_log(LogQuery(after=0))
    assert entry.update.seq > latest
    assert entry.job.status.state is JobState.SUCCESS


async def test_final_jobs_go_with_everything_of_theirs_and_the_rest_stays(
    store: JobStore,
) -> None:
    (old,) = (await store.create_jobs(submission(at=1_000, key="old-key"))).jobs
    old = await update(store, old, 2_000, JobState.RUNNING)
    old = await update(store, old, 3_000, JobState.FAILURE)
    (recent,) = (await store.create_jobs(submission(at=1_000))).jobs
    recent = await update(store, recent, 9_000, JobState.SUCCESS)
    (spoken_to,) = (await store.create_jobs(submission(at=1_000))).jobs
    spoken_to = await update(store, spoken_to, 2_000, JobState.SUCCESS)
    spoken_to = await update(store, spoken_to, 9_000)  # a status line after it ended
    (running,) = (await store.create_jobs(submission(at=1_000))).jobs
    running = await update(store, running, 2_000, JobState.RUNNING)
    await store.add_commands(
        [NewCommand("local", CommandKind.CANCEL, job.id, 2_000) for job in (old, running)]
    )
    old_updates = (await store.updates_of([old.id]))[old.id]

    assert await forget_final_jobs(store, before=5_000) == 1

    assert await store.get_jobs([old.id]) == []
    assert (await store.updates_of([old.id]))[old.id] == []
    listed = await store.find_jobs(JobQuery(EVERYTHING, JobFilter(), limit=10))
    assert {job.id for job in listed.jobs} == {recent.id, spoken_to.id, running.id}
    assert await store.count_jobs(EVERYTHING, JobFilter()) == 3
    assert [c.job_id for c in await store.pending_commands("local")] == [running.id]
    assert all(e.update.job_id != old.id for e in await store.read_log(LogQuery(after=0)))
    assert await store.log_horizon() == max(u.seq for u in old_updates)
    # Its idempotency key went with it: the same request makes a new job.
    again = await store.create_jobs(submission(at=10_000, key="old-key"))
    assert not again.replayed
    assert again.jobs[0].id != old.id
    assert await forget_final_jobs(store, before=5_000) == 0


async def test_the_newest_jobs_forgotten_their_numbers_and_positions_are_never_given_again(
    store: JobStore,
) -> None:
    """A job's id and an update's cursor name one thing forever: after retention removed the
    newest jobs and every update, new jobs (a bulk submit) number on after them."""
    kept, *newest = (await store.create_jobs(submission(spec(), spec(), spec(), at=1_000))).jobs
    for job in newest:
        await update(store, job, 2_000, JobState.SUCCESS)
    latest = await store.latest_seq()
    assert await forget_final_jobs(store, before=5_000) == 2
    assert await forget_updates(store, before=5_000) > 0
    assert await store.read_log(LogQuery(after=0)) == []

    created = await store.create_jobs(submission(spec(), spec(), at=10_000))

    given_before = {int(job.id) for job in (kept, *newest)}
    assert min(int(job.id) for job in created.jobs) > max(given_before)
    assert len({job.id for job in created.jobs}) == 2
    positions = sorted(update.seq for update in created.first_updates.values())
    assert positions[0] > latest
    assert [entry.update.seq for entry in await store.read_log(LogQuery(after=0))] == positions
    # And the positions of updates after them follow on.
    later = await update(store, created.jobs[0], 11_000, JobState.RUNNING)
    (entry,) = (await store.updates_of([later.id]))[later.id][-1:]
    assert entry.seq > positions[-1]


async def test_jobs_ended_long_ago_go_in_batches(store: JobStore) -> None:
    jobs = (await store.create_jobs(submission(*(spec() for _ in range(5)), at=1_000))).jobs
    for job in jobs:
        await update(store, job, 2_000, JobState.SUCCESS)
    assert await store.forget_final_jobs(5_000, 2) == 2
    assert await store.count_jobs(EVERYTHING, JobFilter()) == 3
    assert await forget_final_jobs(store, before=5_000) == 3
    assert await store.count_jobs(EVERYTHING, JobFilter()) == 0


async def test_final_jobs_of_a_store_from_before_retention_are_settled_when_opened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    store = SqliteJobStore(path)
    await store.open()
    ended, running = (await store.create_jobs(submission(spec(), spec(), at=1_000))).jobs
    await update(store, ended, 2_000, JobState.SUCCESS)
    await update(store, running, 2_000, JobState.RUNNING)
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("DROP INDEX jobs_settled")
        db.execute("ALTER TABLE jobs DROP COLUMN settled_at")
        db.commit()
    store = SqliteJobStore(path)
    await store.open()
    try:
        assert await forget_final_jobs(store, before=1_500) == 0
        assert await forget_final_jobs(store, before=2_500) == 1
        assert [job.id for job in await store.get_jobs([ended.id, running.id])] == [running.id]
    finally:
        await store.close()


async def test_final_jobs_stored_in_mongodb_before_retention_are_settled_first(
    mongo_server: str,
) -> None:
    url = fresh_database(mongo_server)
    store = MongoJobStore(url, server_selection_timeout_ms=3000)
    await store.open()
    try:
        ended, running = (await store.create_jobs(submission(spec(), spec(), at=1_000))).jobs
        await update(store, ended, 2_000, JobState.SUCCESS)
        await update(store, running, 2_000, JobState.RUNNING)
        # What an earlier version wrote: job documents without `settledAt`.
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        try:
            jobs = client.get_default_database()["jobs"]
            await jobs.update_many({}, {"$unset": {"settledAt": ""}})
        finally:
            await client.close()
        assert await forget_final_jobs(store, before=1_500) == 0
        assert await forget_final_jobs(store, before=2_500) == 1
        assert [job.id for job in await store.get_jobs([ended.id, running.id])] == [running.id]
    finally:
        await store.close()
