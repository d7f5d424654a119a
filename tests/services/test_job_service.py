"""JobService, UpdateFeed and JobWatcher at the service level, on each real store, with a
recording provider: the error paths the wire tests cannot reach, in milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pymongo.errors
import pytest

from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.domain.values import SimpleDuration
from jobgate.errors import StoreUnavailable, UserErrorCode
from jobgate.events.commands import CommandSignal
from jobgate.events.logs import JobLogHub
from jobgate.providers.remote import RemoteProvider
from jobgate.services.jobs import MAX_BULK_ITEMS, SubmitRequest, UpdateOutcome
from jobgate.storage import mongo
from jobgate.storage.base import CreatedJobs, JobStore, LogQuery, NewSubmission
from jobgate.storage.mongo import MongoJobStore
from tests.factories import submission
from tests.servers import fresh_database
from tests.services.harness import ALICE, BOB, Harness, harness, spec
from tests.services.recording import RecordingProvider


@pytest.fixture
async def h(store: JobStore, tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(store, tmp_path) as running:
        yield running


# --- submitting ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", [JobState.IN_QUEUE, JobState.RUNNING])
async def test_an_idempotent_retry_returns_the_first_jobs_whatever_their_state(
    h: Harness, state: JobState
) -> None:
    request = SubmitRequest([spec(duplicate=False)], idempotency_key="retry-1")
    (first,) = (await h.jobs.submit(ALICE, request)).jobs
    if state is JobState.RUNNING:
        await h.report(UpdateRequest(first.id, state=JobState.RUNNING))

    again = await h.jobs.submit(ALICE, request)

    assert again.problems == []
    assert [job.id for job in again.jobs] == [first.id]
    assert again.jobs[0].status.state is state
    assert h.provider.calls_of("submit") == [(first.id,)]


async def test_a_duplicate_without_a_key_is_still_refused(h: Harness) -> None:
    (first,) = await h.submit(spec(duplicate=False))
    outcome = await h.jobs.submit(ALICE, SubmitRequest([spec(duplicate=False)]))
    assert [(p.code, p.job_id) for p in outcome.problems] == [
        (UserErrorCode.DUPLICATE_JOB, first.id)
    ]


async def test_a_key_reused_for_another_request_is_refused(h: Harness) -> None:
    await h.submit(spec("one"), idempotency_key="k")
    outcome = await h.jobs.submit(ALICE, SubmitRequest([spec("two")], idempotency_key="k"))
    assert [p.code for p in outcome.problems] == [UserErrorCode.IDEMPOTENCY_KEY_REUSED]
    assert outcome.problems[0].field == ("idempotencyKey",)


async def test_keys_belong_to_their_user(h: Harness) -> None:
    (mine,) = await h.submit(spec(), idempotency_key="k")
    (theirs,) = (await h.jobs.submit(BOB, SubmitRequest([spec()], idempotency_key="k"))).jobs
    assert theirs.id != mine.id


async def test_too_many_items_are_refused_before_anything_is_stored(h: Harness) -> None:
    outcome = await h.jobs.submit(ALICE, SubmitRequest([spec()] * (MAX_BULK_ITEMS + 1)))
    assert [p.code for p in outcome.problems] == [UserErrorCode.TOO_MANY_ITEMS]
    assert h.provider.calls == []
    assert await h.store.latest_seq() == 0


async def test_jobs_a_provider_refuses_fail_with_its_reason(h: Harness) -> None:
    h.provider.refuse = "the queue is closed"
    (job,) = await h.submit()
    failed = await h.job(job.id)
    assert failed.status.state is JobState.FAILURE
    updates = (await h.store.updates_of([job.id]))[job.id]
    assert (
        updates[-1].request.status == "Provider 'test' did not accept the job: the queue is closed"
    )


async def test_jobs_of_a_crashing_provider_fail_without_its_internals(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h.provider.crash = RuntimeError("secret internals")
    (job,) = await h.submit()
    updates = (await h.store.updates_of([job.id]))[job.id]
    assert updates[-1].status_after.state is JobState.FAILURE
    assert "secret internals" not in (updates[-1].request.status or "")
    assert any(r.levelno == logging.ERROR for r in caplog.records)


async def test_jobs_of_a_provider_that_is_not_running_fail(store: JobStore, tmp_path: Path) -> None:
    gone = RecordingProvider(id="gone")
    async with harness(store, tmp_path, products_without_adapter=gone.products) as h:
        (job,) = await h.submit(spec(provider="gone"))
        assert (await h.job(job.id)).status.state is JobState.FAILURE
        updates = (await store.updates_of([job.id]))[job.id]
        assert "is not running" in (updates[-1].request.status or "")


# --- acting -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["cancel", "suspend", "resume"])
async def test_an_action_naming_a_job_more_than_once_reaches_the_provider_once(
    h: Harness, action: str
) -> None:
    (job,) = await h.submit()
    state = JobState.SUSPENDED if action == "resume" else JobState.RUNNING
    await h.report(UpdateRequest(job.id, state=state))

    outcome = await getattr(h.jobs, action)(ALICE, [job.id, job.id, job.id])

    assert outcome.problems == []
    assert [j.id for j in outcome.jobs] == [job.id]
    assert h.provider.calls_of(action) == [(job.id,)]


async def test_extensions_of_one_job_in_one_request_add_up_in_one_call(h: Harness) -> None:
    (job,) = await h.submit()
    await h.report(UpdateRequest(job.id, state=JobState.RUNNING))
    hour, half = SimpleDuration(hours=1), SimpleDuration(minutes=30)
    outcome = await h.jobs.extend(ALICE, [(job.id, hour), (job.id, half)])

    assert outcome.problems == []
    assert h.provider.calls_of("extend") == [(job.id,)]
    assert h.provider.extensions == [(job.id, SimpleDuration(hours=1, minutes=30))]


async def test_an_action_a_provider_refuses_is_a_precondition_failure(h: Harness) -> None:
    (job,) = await h.submit()
    h.provider.refuse = "busy"
    outcome = await h.jobs.cancel(ALICE, [job.id])
    assert outcome.jobs == []
    assert [(p.code, p.job_id) for p in outcome.problems] == [
        (UserErrorCode.PRECONDITION_FAILED, job.id)
    ]
    assert "busy" in outcome.problems[0].message


async def test_another_users_job_is_not_found_and_never_reaches_the_provider(h: Harness) -> None:
    (job,) = await h.submit()
    outcome = await h.jobs.cancel(BOB, [job.id, "999999"])
    assert [p.code for p in outcome.problems] == [UserErrorCode.NOT_FOUND] * 2
    assert h.provider.calls_of("cancel") == []


# --- updating -----------------------------------------------------------------------------


async def test_only_the_jobs_own_provider_may_report(h: Harness) -> None:
    (job,) = await h.submit()
    result = await h.jobs.apply_update(
        UpdateRequest(job.id, state=JobState.RUNNING), provider_id="someone-else"
    )
    missing = await h.jobs.apply_update(
        UpdateRequest("999999", state=JobState.RUNNING), provider_id="someone-else"
    )
    # Answered as a job that does not exist: a provider learns nothing of other providers' ids.
    assert (result.outcome, result.code) == (UpdateOutcome.REJECTED, UserErrorCode.NOT_FOUND)
    assert result.message == missing.message
    assert (await h.job(job.id)).status.state is JobState.IN_QUEUE


async def test_a_write_that_keeps_losing_its_race_ends_as_store_unavailable(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    (job,) = await h.submit()

    async def always_lose(*_args: object) -> None:
        return None  # another writer changed the job first, every time

    monkeypatch.setattr(h.store, "commit_update", always_lose)
    with pytest.raises(StoreUnavailable, match="changed too often"):
        await h.jobs.apply_update(UpdateRequest(job.id, state=JobState.RUNNING))


# --- watching -----------------------------------------------------------------------------


async def test_a_watcher_gets_the_history_then_live_updates_in_order(h: Harness) -> None:
    (job,) = await h.submit()
    events = h.watcher.watch(ALICE, [job.id], None)
    first = await anext(events)
    await h.report(UpdateRequest(job.id, state=JobState.RUNNING))
    await h.report(UpdateRequest(job.id, state=JobState.SUCCESS))
    rest = [event async for event in events]
    assert [e.update.request.state for e in [first, *rest]] == [
        JobState.IN_QUEUE,
        JobState.RUNNING,
        JobState.SUCCESS,
    ]


async def test_a_watcher_that_falls_behind_catches_up_from_the_store(h: Harness) -> None:
    jobs = await h.submit(*[spec(str(n)) for n in range(3)])
    start = await h.store.latest_seq()
    events = h.watcher.watch(ALICE, None, start)
    reader = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)
    # Far more updates than the feed queues for one subscriber (100 in the harness).
    for job in jobs:
        for _ in range(60):
            await h.report(UpdateRequest(job.id, status="tick"))
    seen = [(await reader).update.seq]
    while len(seen) < 180:
        seen.append((await asyncio.wait_for(anext(events), 10)).update.seq)
    await events.aclose()
    assert seen == sorted(seen)
    assert len(set(seen)) == 180
    assert seen[0] == start + 1


async def test_the_feed_stops_even_when_woken_as_it_is_cancelled(h: Harness) -> None:
    for _ in range(5):
        await asyncio.sleep(0.05)
        h.feed.poke()
        stopping = asyncio.ensure_future(h.feed.stop())
        done, _ = await asyncio.wait({stopping}, timeout=3)
        assert done == {stopping}, "the feed did not stop"
        left = [t for t in asyncio.all_tasks() if t.get_name().startswith("update-feed")]
        assert left == []
        await h.feed.start()


@pytest.fixture
async def mongo_store(mongo_server: str) -> AsyncIterator[MongoJobStore]:
    """A MongoJobStore on a fresh database, for what only MongoDB's store does."""
    store = MongoJobStore(fresh_database(mongo_server), server_selection_timeout_ms=3000)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_mongo_rolls_forward_an_update_whose_writer_died_half_way(
    mongo_store: MongoJobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with harness(mongo_store, tmp_path) as h:
        (job,) = await h.submit()

        async def die(*_args: object) -> None:
            raise ConnectionError("the gateway died after appending to the log")

        monkeypatch.setattr(mongo_store, "_apply_to_job", die)
        with pytest.raises(ConnectionError):
            await h.jobs.apply_update(UpdateRequest(job.id, state=JobState.RUNNING))
        monkeypatch.undo()
        assert (await h.job(job.id)).status.state is JobState.IN_QUEUE  # half written

        monkeypatch.setattr(mongo, "ORPHAN_AGE_MS", 0)  # the orphan is old enough
        result = await h.jobs.apply_update(UpdateRequest(job.id, status="still going"))

        assert result.outcome is UpdateOutcome.APPLIED
        after = await h.job(job.id)
        assert after.status.state is JobState.RUNNING
        updates = (await mongo_store.updates_of([job.id]))[job.id]
        assert [(u.request.state, u.request.status) for u in updates[1:]] == [
            (JobState.RUNNING, None),
            (None, "still going"),
        ]


async def test_mongo_never_undoes_another_writers_entry_for_the_same_version(
    mongo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_database(mongo_server)
    first, second = (MongoJobStore(url, server_selection_timeout_ms=3000) for _ in range(2))
    await first.open()
    await second.open()
    try:
        (job,) = (await first.create_jobs(submission())).jobs
        running = dataclasses.replace(job.status, state=JobState.RUNNING)

        async def die(*_args: object) -> None:
            raise ConnectionError("the gateway died after appending to the log")

        # The first gateway commits version 2 and dies before its job document follows.
        monkeypatch.setattr(first, "_apply_to_job", die)
        with pytest.raises(ConnectionError):
            await first.commit_update(
                job, UpdateRequest(job.id, state=JobState.RUNNING), running, 7
            )
        monkeypatch.undo()

        # The second one, reading the job at version 1, appends version 2 as well, and MongoDB
        # goes away without answering: its own append is in doubt, not the first one's entry.
        await stale_duplicate_undone_alone(monkeypatch, second, job)
    finally:
        await first.close()
        await second.close()


def unanswered_appends(monkeypatch: pytest.MonkeyPatch, store: MongoJobStore) -> None:
    """MongoDB goes away with the store's next appends to the log on their way: each reaches
    it (stored, or refused as a duplicate) and the answer is lost."""
    insert_many = store._log.insert_many

    async def unanswered(*args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(pymongo.errors.BulkWriteError):
            await insert_many(*args, **kwargs)
        raise pymongo.errors.AutoReconnect("connection closed")

    monkeypatch.setattr(store._log, "insert_many", unanswered)


async def stale_duplicate_undone_alone(
    monkeypatch: pytest.MonkeyPatch, store: MongoJobStore, job: Job
) -> None:
    """`store`, which read `job` at version 1 after version 2 (RUNNING) was committed, appends
    version 2 as well and MongoDB refuses it unheard: after its undo, the job's history is still
    the committed one."""
    unanswered_appends(monkeypatch, store)
    with pytest.raises(StoreUnavailable):
        await store.commit_update(job, UpdateRequest(job.id, status="late"), job.status, 8)
    monkeypatch.undo()

    await store.latest_seq()  # undoes what it doubts, before anything it reads
    updates = (await store.updates_of([job.id]))[job.id]
    assert [u.request.state for u in updates] == [JobState.IN_QUEUE, JobState.RUNNING]


async def test_mongo_never_undoes_its_own_committed_entry_for_a_doubtful_one(
    mongo_store: MongoJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two reports on one job in one gateway: the first commits version 2 (its job document is
    left behind when MongoDB goes away); the second, which read the job at version 1, appends
    version 2 as well and gets no answer. Undoing the second must not remove the first, which
    was answered as applied."""
    (job,) = (await mongo_store.create_jobs(submission())).jobs
    running = dataclasses.replace(job.status, state=JobState.RUNNING)

    async def away(*_args: object) -> None:
        raise StoreUnavailable("the job store (MongoDB) is unavailable")

    monkeypatch.setattr(mongo_store, "_apply_to_job", away)
    first = await mongo_store.commit_update(
        job, UpdateRequest(job.id, state=JobState.RUNNING), running, 7
    )
    assert first is not None  # answered as applied; the document catches up later
    monkeypatch.undo()

    await stale_duplicate_undone_alone(monkeypatch, mongo_store, job)


async def undone_submit(monkeypatch: pytest.MonkeyPatch, store: MongoJobStore) -> int:
    """A submit that MongoDB stores but never answers: refused, and its entry undone. The
    position the entry had."""
    start = await store.latest_seq()
    unanswered_appends(monkeypatch, store)
    with pytest.raises(StoreUnavailable):
        await store.create_jobs(submission())
    monkeypatch.undo()
    assert await store.latest_seq() == start  # undone: an answer of failure did nothing
    return start + 1


async def test_mongo_reads_another_gateways_entry_at_the_position_of_one_it_undid(
    mongo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another gateway takes the position this one freed by an undo, and this one's update feed
    must read the new entry there: a reader that remembered the position alone, not when it was
    undone, stopped at it for good, and every watcher of that gateway saw nothing after it."""
    url = fresh_database(mongo_server)
    first, second = (MongoJobStore(url, server_selection_timeout_ms=3000) for _ in range(2))
    await first.open()
    await second.open()
    try:
        freed = await undone_submit(monkeypatch, first)
        (job,) = (await second.create_jobs(submission())).jobs
        entries = await first.read_log(LogQuery(after=freed - 1, limit=10))
        assert [(e.update.seq, e.update.job_id) for e in entries] == [(freed, job.id)]
    finally:
        await first.close()
        await second.close()


async def test_mongo_never_writes_again_at_a_position_it_tried(
    mongo_store: MongoJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FerretDB's find-and-delete deletes by position once it has found its entry: an undo
    whose answer was lost may still delete what stands at that position later. So a gateway
    leaves the position of an append it undid empty, and its feed reads on past it."""
    freed = await undone_submit(monkeypatch, mongo_store)
    (job,) = (await mongo_store.create_jobs(submission())).jobs
    entries = await mongo_store.read_log(LogQuery(after=freed - 1, limit=10))
    assert [(e.update.seq, e.update.job_id) for e in entries] == [(freed + 1, job.id)]


async def test_mongo_takes_ferretdbs_interruption_for_a_store_that_did_not_answer(
    mongo_store: MongoJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FerretDB answers a query it gave up on (its time limit spent, or too loaded to finish)
    with an InternalError "interrupted", where MongoDB says MaxTimeMSExpired or Interrupted: a
    store that did not answer (STORE_UNAVAILABLE), not an unexpected error."""
    errmsg = (
        "[msg_find.go:344 handler.handleMaxTimeMSError] [collection.go:94 "
        "sqlite.(*collection).Query] interrupted (9)"
    )
    reply = {"ok": 0.0, "errmsg": errmsg, "code": 1, "codeName": "InternalError"}
    for code in (1, 11601):  # FerretDB's InternalError, MongoDB's Interrupted

        async def interrupted(*_args: object, code: int = code, **_kwargs: object) -> None:
            raise pymongo.errors.OperationFailure(errmsg, code, {**reply, "code": code})

        monkeypatch.setattr(mongo_store._log, "find_one", interrupted)
        with pytest.raises(StoreUnavailable):
            await mongo_store.latest_seq()
        monkeypatch.undo()
    assert await mongo_store.latest_seq() == 0


async def test_an_in_process_providers_refused_report_is_logged_not_dropped(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await h.report(UpdateRequest("999999", state=JobState.RUNNING))
    (record,) = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "999999" in record.getMessage()
    assert "NOT_FOUND" in record.getMessage()


async def test_a_job_that_ended_before_its_hand_over_never_reaches_its_provider(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = h.store.create_jobs

    async def created_then_cancelled(submission: NewSubmission) -> CreatedJobs:
        created = await create(submission)
        # A cancel (or the reconciler) that got in between the write and the hand-over.
        for job in created.jobs:
            await h.jobs.apply_update(
                UpdateRequest(job.id, state=JobState.SUCCESS, status="cancelled"),
                provider_id="test",
            )
        return created

    monkeypatch.setattr(h.store, "create_jobs", created_then_cancelled)
    (job,) = (await h.jobs.submit(ALICE, SubmitRequest([spec()]))).jobs
    assert h.provider.calls_of("submit") == []
    assert (await h.job(job.id)).status.state is JobState.SUCCESS


async def test_a_remote_provider_handed_a_job_again_leaves_a_started_one_alone(
    h: Harness, tmp_path: Path
) -> None:
    """The hand-over outbox hands a job over again when completing its entry failed (the store
    was away), and the job may have started, even ended, by then. With no agent connected, the
    remote provider tells a job still queued that it waits for one, and nothing to the others:
    a finished job got "Waiting for the agent ..." after its SUCCESS."""
    remote = RemoteProvider(
        h.provider.id,
        h.provider.products,
        store=h.store,
        signal=CommandSignal(),
        ring=lambda: None,
        clock=lambda: 0,
    )
    await remote.start(
        h.jobs.provider_context(remote.id, tmp_path, JobLogHub(tail_lines=10, max_jobs=10))
    )
    queued, started, ended = await h.submit(spec("q"), spec("s"), spec("e"))
    await h.report(UpdateRequest(started.id, state=JobState.RUNNING))
    await h.report(UpdateRequest(ended.id, state=JobState.SUCCESS))
    jobs = {job.id: job for job in await h.store.get_jobs([queued.id, started.id, ended.id])}

    await remote.submit(list(jobs.values()))

    updates = await h.store.updates_of(list(jobs))
    waiting = f"Waiting for the agent of provider '{remote.id}' to connect"
    assert [u.request.status for u in updates[queued.id]][-1] == waiting
    for job_id in (started.id, ended.id):
        assert waiting not in [u.request.status for u in updates[job_id]]


async def test_mongo_readers_never_pass_a_position_whose_write_may_still_land(
    mongo_store: MongoJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append whose answer was lost may still be stored later (a slow server commits it after
    the client gave up). A reader that passed its position meanwhile, reading the appends after
    it, would never see it: a watcher would miss an update for good (a CI fault case did)."""
    store = mongo_store
    (first,) = (await store.create_jobs(submission())).jobs
    lost: list[list[dict[str, Any]]] = []

    async def answer_lost(docs: list[dict[str, Any]], **kwargs: Any) -> None:
        lost.append(docs)  # on its way, not stored yet
        raise pymongo.errors.NetworkTimeout("timed out")

    monkeypatch.setattr(store._log, "insert_many", answer_lost)
    with pytest.raises(StoreUnavailable):  # a keyed submission: its retry finishes it
        await store.create_jobs(submission(key="late"))
    monkeypatch.undo()
    (after,) = (await store.create_jobs(submission())).jobs
    seen = [entry.update.seq for entry in await store.read_log(LogQuery(after=0))]
    # Now the lost write lands, late.
    with contextlib.suppress(pymongo.errors.BulkWriteError):
        await store._log.insert_many(lost[0], ordered=True)
    retried = await store.earlier_submission(submission(key="late"))
    assert retried is not None
    seen += [e.update.seq for e in await store.read_log(LogQuery(after=max(seen)))]
    everything = [entry.update.seq for entry in await store.read_log(LogQuery(after=0))]
    assert seen == everything
    assert {e.update.job_id for e in await store.read_log(LogQuery(after=0))} == {
        first.id,
        after.id,
        retried.jobs[0].id,
    }


async def test_mongo_finds_a_claim_by_its_id_and_one_made_before_claims_had_such_ids(
    mongo_store: MongoJobStore,
) -> None:
    store = mongo_store
    first = await store.create_jobs(submission(key="k"))
    before = store.round_trips.by_kind.get("claim", 0)
    again = await store.earlier_submission(submission(key="k"))
    assert again is not None
    assert [job.id for job in again.jobs] == [job.id for job in first.jobs]
    assert store.round_trips.by_kind["claim"] == before + 1  # one read, by id
    # A claim as an earlier version stored it: a generated id, found by owner and key.
    claim = await store._submissions.find_one_and_delete({})
    assert claim is not None
    del claim["_id"]
    await store._submissions.insert_one(claim)
    replayed = await store.create_jobs(submission(key="k"))
    assert replayed.replayed
    assert [job.id for job in replayed.jobs] == [job.id for job in first.jobs]


async def test_mongo_writes_to_one_job_document_take_turns(mongo_store: MongoJobStore) -> None:
    """FerretDB updates a document by reading it and writing it back whole, outside one
    transaction: a hand-over's completion racing an update of the same job wrote the job back
    as it was (a CI run: a job stuck IN_QUEUE at version 2 with its RUNNING and SUCCESS entries
    in the log). Writes to one job's document from one gateway take turns."""
    store = mongo_store
    jobs = (await store.create_jobs(submission(*[spec() for _ in range(20)]))).jobs

    async def advance(job: Job) -> None:
        request = UpdateRequest(job.id, state=JobState.RUNNING, status="running")
        status = dataclasses.replace(job.status, state=JobState.RUNNING)
        assert await store.commit_update(job, request, status, 2_000) is not None

    for _round in range(3):
        await asyncio.gather(
            *(advance(job) for job in jobs),
            *(store.complete_handovers([job.id]) for job in jobs),
        )
        jobs = await store.get_jobs([job.id for job in jobs])
        assert {job.status.state for job in jobs} == {JobState.RUNNING}
        assert await store.pending_handovers() == []
        # Again, from IN_QUEUE, on fresh jobs.
        jobs = (await store.create_jobs(submission(*[spec() for _ in range(20)]))).jobs
