"""The JobStore contract: every store passes the same suite, against real databases."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from jobgate.access import Project, Projects, User, Visibility, changed_acl
from jobgate.domain.acl import AclEntity, AclEntry, Permission
from jobgate.domain.commands import CommandKind, NewCommand
from jobgate.domain.job import Job, JobStatus, UpdateRequest
from jobgate.domain.rules import Applied, apply_update
from jobgate.domain.states import ACTIVE_STATES, JobState
from jobgate.domain.values import SimpleDuration
from jobgate.errors import IdempotencyKeyReused
from jobgate.storage.base import (
    ActiveUsage,
    JobFilter,
    JobOrder,
    JobQuery,
    JobStore,
    LogQuery,
    OrderField,
    PageKey,
    sort_key,
)
from jobgate.storage.codec import status_to_doc
from jobgate.storage.mongo import MongoJobStore
from jobgate.storage.sqlite import SqliteJobStore
from tests.factories import spec, submission

EVERYTHING = Visibility(everything=True)


async def advance(store: JobStore, job: Job, state: JobState, at: int = 5_000) -> Job:
    status = dataclasses.replace(job.status, state=state)
    stored = await store.commit_update(job, UpdateRequest(job.id, state=state), status, at)
    assert stored is not None
    (fresh,) = await store.get_jobs([job.id])
    return fresh


async def ids(store: JobStore, query: JobQuery) -> list[str]:
    return [job.id for job in (await store.find_jobs(query)).jobs]


async def test_created_jobs_are_stored_with_their_in_queue_update(store: JobStore) -> None:
    created = await store.create_jobs(submission(spec(name="a"), spec(name="b"), at=1234))
    assert not created.replayed
    assert [j.specification.name for j in created.jobs] == ["a", "b"]
    fetched = {j.id: j for j in await store.get_jobs([j.id for j in created.jobs])}
    assert fetched == {j.id: j for j in created.jobs}
    updates = await store.updates_of([j.id for j in created.jobs])
    for job in created.jobs:
        (first,) = updates[job.id]
        assert first.request.state is JobState.IN_QUEUE
        assert first.timestamp == 1234
        assert first.status_after.state is JobState.IN_QUEUE


async def test_ids_that_name_no_job_are_ignored(store: JobStore) -> None:
    assert await store.get_jobs(["999999", "not-a-number", ""]) == []


async def test_an_idempotency_key_returns_the_first_jobs(store: JobStore) -> None:
    first = await store.create_jobs(submission(spec(), spec(), key="k"))
    again = await store.create_jobs(submission(spec(), spec(), key="k"))
    assert again.replayed
    assert [j.id for j in again.jobs] == [j.id for j in first.jobs]
    everything = await store.find_jobs(JobQuery(EVERYTHING))
    assert len(everything.jobs) == 2


async def test_an_idempotency_key_is_per_user(store: JobStore) -> None:
    mine = await store.create_jobs(submission(key="k", user="alice"))
    theirs = await store.create_jobs(submission(key="k", user="bob"))
    assert not theirs.replayed
    assert mine.jobs[0].id != theirs.jobs[0].id


async def test_reusing_a_key_for_another_request_is_refused(store: JobStore) -> None:
    await store.create_jobs(submission(key="k", request_hash="one"))
    with pytest.raises(IdempotencyKeyReused):
        await store.create_jobs(submission(key="k", request_hash="two"))


async def test_racing_submissions_with_one_key_create_one_set_of_jobs(store: JobStore) -> None:
    results = await asyncio.gather(
        *(store.create_jobs(submission(spec(), spec(), key="race")) for _ in range(5))
    )
    assert len({tuple(j.id for j in r.jobs) for r in results}) == 1
    assert len((await store.find_jobs(JobQuery(EVERYTHING))).jobs) == 2


async def test_an_update_is_stored_with_the_new_status_in_one_write(store: JobStore) -> None:
    (job,) = (await store.create_jobs(submission())).jobs
    status = JobStatus(JobState.RUNNING, started_at=42, provider_generated_id="p-1")
    request = UpdateRequest(job.id, state=JobState.RUNNING, status="go")
    stored = await store.commit_update(job, request, status, 42)
    assert stored is not None
    assert (stored.request, stored.status_after, stored.timestamp) == (request, status, 42)
    (fresh,) = await store.get_jobs([job.id])
    assert fresh.status == status
    assert fresh.version == job.version + 1
    history = (await store.updates_of([job.id]))[job.id]
    assert [u.request.state for u in history] == [JobState.IN_QUEUE, JobState.RUNNING]


async def test_active_usage_counts_a_users_unfinished_jobs_and_their_replicas(
    store: JobStore,
) -> None:
    three = dataclasses.replace(spec(), replicas=3)
    jobs = (await store.create_jobs(submission(three, spec(), spec()))).jobs
    await store.create_jobs(submission(three, user="bob"))
    assert await store.active_usage("alice") == ActiveUsage(jobs=3, replicas=5)
    done = JobStatus(JobState.SUCCESS)
    await store.commit_update(jobs[0], UpdateRequest(jobs[0].id, state=JobState.SUCCESS), done, 9)
    assert await store.active_usage("alice") == ActiveUsage(jobs=2, replicas=2)
    assert await store.active_usage("bob") == ActiveUsage(jobs=1, replicas=3)
    assert await store.active_usage("nobody") == ActiveUsage(jobs=0, replicas=0)


async def history_with_changing_strings(store: JobStore) -> tuple[Job, list[JobStatus]]:
    """A job whose provider id and output folder change between status-only updates; its
    status after each of its updates, in order."""
    (job,) = (await store.create_jobs(submission())).jobs
    other = (await store.create_jobs(submission())).jobs[0]  # interleaved in the log
    statuses = [job.status]
    requests = [
        UpdateRequest(job.id, state=JobState.RUNNING, provider_generated_id="p-1"),
        UpdateRequest(job.id, status="one"),
        UpdateRequest(job.id, output_folder="/a" * 100),
        UpdateRequest(job.id, status="two"),
        UpdateRequest(job.id, status="three"),
        UpdateRequest(job.id, output_folder="/b"),
        UpdateRequest(job.id, status="four"),
    ]
    for at, request in enumerate(requests, start=10):
        decision = apply_update(job.status, request, at)
        assert isinstance(decision, Applied)
        stored = await store.commit_update(job, request, decision.status, at)
        assert stored is not None
        assert stored.status_after == decision.status
        (job,) = await store.get_jobs([job.id])
        statuses.append(decision.status)
        await advance(store, other, JobState.IN_QUEUE, at)
        (other,) = await store.get_jobs([other.id])
    return job, statuses


async def test_every_update_reads_back_with_the_whole_status_after_it(store: JobStore) -> None:
    job, statuses = await history_with_changing_strings(store)
    history = (await store.updates_of([job.id]))[job.id]
    assert [u.status_after for u in history] == statuses
    for last in range(1, len(statuses) + 1):
        newest = (await store.updates_of([job.id], last=last))[job.id]
        assert [u.status_after for u in newest] == statuses[-last:], last
    # The log, read from every position and cut at every length, says the same.
    everything = await store.read_log(LogQuery(after=0, job_ids=(job.id,)))
    positions = [entry.update.seq for entry in everything]
    for start in range(len(positions)):
        for limit in (1, 2, 3):
            entries = await store.read_log(
                LogQuery(after=positions[start] - 1, limit=limit, job_ids=(job.id,))
            )
            assert [e.update.status_after for e in entries] == statuses[start : start + limit]
            assert [e.job.status for e in entries] == statuses[start : start + limit]


async def test_a_store_written_before_carried_strings_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteJobStore(path)
    await store.open()
    job, statuses = await history_with_changing_strings(store)
    await store.close()
    # What an earlier version wrote: every entry with its whole status, no carried_since.
    with contextlib.closing(sqlite3.connect(path)) as db:
        seqs = [
            row[0]
            for row in db.execute(
                "SELECT seq FROM job_updates WHERE job_num = ? ORDER BY seq", (int(job.id),)
            )
        ]
        for seq, status in zip(seqs, statuses, strict=True):
            db.execute(
                "UPDATE job_updates SET status_after = ? WHERE seq = ?",
                (json.dumps(status_to_doc(status)), seq),
            )
        db.execute(
            "UPDATE job_updates SET status_after = ? WHERE job_num != ?",
            (json.dumps(status_to_doc(JobStatus())), int(job.id)),
        )
        db.execute("ALTER TABLE jobs DROP COLUMN carried_since")
        db.commit()
    store = SqliteJobStore(path)
    await store.open()
    try:
        request = UpdateRequest(job.id, status="after the upgrade")
        stored = await store.commit_update(job, request, job.status, 99)
        assert stored is not None
        statuses.append(job.status)
        history = (await store.updates_of([job.id]))[job.id]
        assert [u.status_after for u in history] == statuses
        newest = (await store.updates_of([job.id], last=2))[job.id]
        assert [u.status_after for u in newest] == statuses[-2:]
        entries = await store.read_log(LogQuery(after=stored.seq - 1, job_ids=(job.id,)))
        assert [e.job.status for e in entries] == statuses[-1:]
    finally:
        await store.close()


async def test_each_job_keeps_the_unix_account_its_provider_runs_it_as(store: JobStore) -> None:
    """Every read gives the job back with the account picked at submit: a restarted gateway,
    the hand-over outbox, a retried request and an agent all run it as that account."""
    new = dataclasses.replace(
        submission(spec(provider="local"), spec(provider="other"), key="k"),
        unix_users={"local": "jgt-alice"},
    )
    created = (await store.create_jobs(new)).jobs
    expected = {created[0].id: "jgt-alice", created[1].id: None}

    def accounts(jobs: list[Job]) -> dict[str, str | None]:
        return {job.id: job.unix_user for job in jobs}

    assert accounts(created) == expected
    assert accounts(await store.get_jobs(list(expected))) == expected
    listed = await store.find_jobs(JobQuery(EVERYTHING, JobFilter(), limit=10))
    assert accounts(listed.jobs) == expected
    assert accounts(await store.pending_handovers()) == expected
    assert accounts([entry.job for entry in await store.read_log(LogQuery(after=0))]) == expected
    replayed = await store.earlier_submission(new)
    assert replayed is not None
    assert accounts(list(replayed.jobs)) == expected


async def test_a_store_from_before_unix_accounts_opens_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteJobStore(path)
    await store.open()
    (old,) = (await store.create_jobs(submission())).jobs
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("ALTER TABLE jobs DROP COLUMN unix_user")
        db.execute("ALTER TABLE access_tokens DROP COLUMN unix_user")
        db.commit()
    store = SqliteJobStore(path)
    await store.open()
    try:
        (read,) = await store.get_jobs([old.id])
        assert read == old
        assert read.unix_user is None
        new = dataclasses.replace(submission(at=2_000), unix_users={"local": "jgt-alice"})
        (job,) = (await store.create_jobs(new)).jobs
        assert [j.unix_user for j in await store.get_jobs([job.id])] == ["jgt-alice"]
    finally:
        await store.close()


async def test_jobs_are_counted_by_provider_and_state_in_one_call(store: JobStore) -> None:
    """The metrics' gauge of jobs (`/metrics`): one grouped query, whatever the store."""
    assert await store.count_by_provider_and_state() == {}
    local = (await store.create_jobs(submission(spec(), spec(), spec()))).jobs
    await store.create_jobs(submission(spec(provider="other"), at=2_000))
    await advance(store, local[0], JobState.RUNNING)
    before = store.round_trips.count
    counts = await store.count_by_provider_and_state()
    assert counts == {("local", "IN_QUEUE"): 2, ("local", "RUNNING"): 1, ("other", "IN_QUEUE"): 1}
    assert store.round_trips.count - before == 1


async def test_a_write_from_a_stale_read_loses(store: JobStore) -> None:
    (job,) = (await store.create_jobs(submission())).jobs
    await advance(store, job, JobState.RUNNING)
    stale = await store.commit_update(
        job, UpdateRequest(job.id, state=JobState.FAILURE), JobStatus(JobState.FAILURE), 6_000
    )
    assert stale is None
    (fresh,) = await store.get_jobs([job.id])
    assert fresh.status.state is JobState.RUNNING
    assert len((await store.updates_of([job.id]))[job.id]) == 2


async def test_two_racing_writes_cannot_both_win(store: JobStore) -> None:
    (job,) = (await store.create_jobs(submission())).jobs
    results = await asyncio.gather(
        *(
            store.commit_update(job, UpdateRequest(job.id, state=s), JobStatus(s), 7_000)
            for s in (JobState.SUCCESS, JobState.FAILURE)
        )
    )
    assert sum(result is not None for result in results) == 1


async def test_the_update_log_is_ordered_and_positions_are_cursors(store: JobStore) -> None:
    a, b = (await store.create_jobs(submission(spec(), spec()))).jobs
    await advance(store, b, JobState.RUNNING)
    await advance(store, a, JobState.RUNNING)
    log = await store.read_log(LogQuery(after=0))
    assert [(e.update.job_id, e.update.request.state) for e in log] == [
        (a.id, JobState.IN_QUEUE),
        (b.id, JobState.IN_QUEUE),
        (b.id, JobState.RUNNING),
        (a.id, JobState.RUNNING),
    ]
    seqs = [e.update.seq for e in log]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 4
    assert await store.latest_seq() == seqs[-1]
    after_second = await store.read_log(LogQuery(after=seqs[1], up_to=seqs[2]))
    assert [e.update.seq for e in after_second] == [seqs[2]]
    assert log[2].job.status.state is JobState.RUNNING  # the job as of that update


async def test_the_log_can_be_narrowed_to_jobs_or_to_what_a_caller_reads(store: JobStore) -> None:
    (mine,) = (await store.create_jobs(submission(user="alice"))).jobs
    (theirs,) = (await store.create_jobs(submission(user="bob"))).jobs
    (shared,) = (await store.create_jobs(submission(user="bob", project="p"))).jobs
    by_job = await store.read_log(LogQuery(after=0, job_ids=(theirs.id,)))
    assert [e.update.job_id for e in by_job] == [theirs.id]
    (own_in_p,) = (await store.create_jobs(submission(user="alice", project="p"))).jobs
    member = User.member_of("alice", {"p"}).visibility
    visible = await store.read_log(LogQuery(after=0, visibility=member))
    assert [e.update.job_id for e in visible] == [mine.id, own_in_p.id]
    pi = Projects([Project("p", pis=frozenset({"alice"}))]).user("alice").visibility
    visible = await store.read_log(LogQuery(after=0, visibility=pi))
    assert [e.update.job_id for e in visible] == [mine.id, shared.id, own_in_p.id]


async def test_the_newest_updates_of_many_jobs_come_in_one_call(store: JobStore) -> None:
    a, b = (await store.create_jobs(submission(spec(), spec()))).jobs
    await advance(store, a, JobState.RUNNING)
    before = store.round_trips.count
    newest = await store.updates_of([a.id, b.id, "424242"], last=1)
    assert store.round_trips.count == before + 1
    assert [u.request.state for u in newest[a.id]] == [JobState.RUNNING]
    assert [u.request.state for u in newest[b.id]] == [JobState.IN_QUEUE]
    assert newest["424242"] == []


async def test_users_see_their_personal_jobs_and_their_projects_jobs(store: JobStore) -> None:
    (alice_own,) = (await store.create_jobs(submission(user="alice"))).jobs
    (alice_a,) = (await store.create_jobs(submission(user="alice", project="a"))).jobs
    (bob_own,) = (await store.create_jobs(submission(user="bob"))).jobs
    (bob_a,) = (await store.create_jobs(submission(user="bob", project="a"))).jobs
    (bob_b,) = (await store.create_jobs(submission(user="bob", project="b"))).jobs
    # A plain member of a: her own jobs, not a colleague's (that takes sharing).
    alice = User.member_of("alice", {"a"}).visibility
    assert set(await ids(store, JobQuery(alice))) == {alice_own.id, alice_a.id}
    assert await store.count_jobs(alice, JobFilter()) == 2
    bob = User.member_of("bob", {"b"}).visibility
    assert set(await ids(store, JobQuery(bob))) == {bob_own.id, bob_b.id}
    assert bob_own.id not in await ids(store, JobQuery(alice))
    # An admin of a: every job of it.
    admin = Projects([Project("a", admins=frozenset({"alice"}))]).user("alice").visibility
    assert set(await ids(store, JobQuery(admin))) == {alice_own.id, alice_a.id, bob_a.id}
    assert await store.count_jobs(admin, JobFilter()) == 3
    # Bob, no longer a member of a, no longer sees the job he created there.
    assert bob_a.id not in await ids(store, JobQuery(bob))


async def test_providers_see_the_jobs_on_their_products(store: JobStore) -> None:
    (local,) = (await store.create_jobs(submission(spec(provider="local")))).jobs
    await store.create_jobs(submission(spec(provider="other")))
    assert await ids(store, JobQuery(Visibility(provider="local"))) == [local.id]


async def test_every_filter_field_is_applied(store: JobStore) -> None:
    a = (await store.create_jobs(submission(spec("echo", name="Alpha run"), at=1_000))).jobs[0]
    b = (
        await store.create_jobs(
            submission(spec("sleep", name="beta", provider="other", product="big"), at=2_000)
        )
    ).jobs[0]
    c = (await store.create_jobs(submission(spec("echo"), user="bob", project="p", at=3_000))).jobs[
        0
    ]
    b = await advance(store, b, JobState.RUNNING)
    await store.commit_update(
        b,
        UpdateRequest(b.id, provider_generated_id="slurm-7"),
        dataclasses.replace(b.status, provider_generated_id="slurm-7"),
        9_000,
    )

    async def matching(**fields: object) -> set[str]:
        query = JobQuery(EVERYTHING, JobFilter(**fields))  # type: ignore[arg-type]
        found = set(await ids(store, query))
        assert await store.count_jobs(EVERYTHING, query.filter) == len(found)
        return found

    assert await matching(states=frozenset({JobState.RUNNING})) == {b.id}
    assert await matching(states=ACTIVE_STATES) == {a.id, b.id, c.id}
    assert await matching(application="echo") == {a.id, c.id}
    assert await matching(created_by="bob") == {c.id}
    assert await matching(project="p") == {c.id}
    assert await matching(provider="other") == {b.id}
    assert await matching(product_id="big") == {b.id}
    assert await matching(product_category="cpu") == {a.id, b.id, c.id}
    assert await matching(created_after=2_000) == {b.id, c.id}
    assert await matching(created_before=2_000) == {a.id, b.id}
    assert await matching(ids=(a.id, c.id, "nope")) == {a.id, c.id}
    assert await matching(provider_generated_id="slurm-7") == {b.id}
    assert await matching(query="ALPHA") == {a.id}
    assert await matching(query="slee") == {b.id}
    assert await matching(query=c.id) >= {c.id}
    assert await matching(application="echo", created_by="alice") == {a.id}


@pytest.mark.parametrize("field", list(OrderField))
@pytest.mark.parametrize("descending", [True, False])
async def test_pages_follow_the_order_without_gaps_or_repeats(
    store: JobStore, field: OrderField, descending: bool
) -> None:
    names = ["delta", "alpha", None, "Charlie", "bravo", "alpha"]
    jobs: list[Job] = []
    for number, name in enumerate(names):
        user = "bob" if number % 2 else "alice"
        created = await store.create_jobs(submission(spec(name=name), user=user, at=number // 2))
        jobs.extend(created.jobs)
    jobs[1] = await advance(store, jobs[1], JobState.RUNNING)
    jobs[4] = await advance(store, jobs[4], JobState.SUCCESS)
    order = JobOrder(field, descending)

    expected = sorted(jobs, key=lambda j: (sort_key(j, field), int(j.id)), reverse=descending)
    seen: list[str] = []
    after: PageKey | None = None
    while True:
        page = await store.find_jobs(JobQuery(EVERYTHING, order=order, limit=4, after=after))
        seen.extend(job.id for job in page.jobs)
        if not page.has_next:
            break
        last = page.jobs[-1]
        after = PageKey(sort_key(last, field), int(last.id))
    assert seen == [job.id for job in expected]


async def test_two_gateways_writing_at_once_share_one_dense_ordered_log(
    store: JobStore, storage_url: str
) -> None:
    """Like two replicas on one database: no position is taken twice, none is skipped."""
    other: JobStore
    if storage_url.startswith("sqlite://"):
        other = SqliteJobStore(Path(storage_url.removeprefix("sqlite://")))
    else:
        other = MongoJobStore(storage_url)
    await other.open()
    try:
        jobs = (await store.create_jobs(submission(*(spec() for _ in range(6))))).jobs
        more = (await other.create_jobs(submission(*(spec() for _ in range(6))))).jobs
        assert not {j.id for j in jobs} & {j.id for j in more}

        async def run(writer: JobStore, job: Job) -> None:
            for state in (JobState.RUNNING, JobState.SUCCESS):
                (current,) = await writer.get_jobs([job.id])
                status = dataclasses.replace(current.status, state=state)
                request = UpdateRequest(job.id, state=state)
                assert await writer.commit_update(current, request, status, 8_000) is not None

        await asyncio.gather(*(run(store, job) for job in jobs), *(run(other, job) for job in more))
        log = await store.read_log(LogQuery(after=0, limit=1000))
        seqs = [entry.update.seq for entry in log]
        assert seqs == list(range(seqs[0], seqs[0] + 36))
        for job in jobs + more:
            states = [e.update.request.state for e in log if e.update.job_id == job.id]
            assert states == [JobState.IN_QUEUE, JobState.RUNNING, JobState.SUCCESS]
            (final,) = await store.get_jobs([job.id])
            assert (final.status.state, final.version) == (JobState.SUCCESS, 3)
    finally:
        await other.close()


async def test_provider_commands_wait_until_acknowledged(store: JobStore) -> None:
    created = await store.create_jobs(submission(spec(), spec()))
    first, second = (job.id for job in created.jobs)
    extend = SimpleDuration(minutes=5)
    stored = await store.add_commands(
        [
            NewCommand("remote", CommandKind.SUBMIT, first, 10),
            NewCommand("other", CommandKind.SUBMIT, second, 11),
            NewCommand("remote", CommandKind.EXTEND, first, 12, extend),
        ]
    )
    assert stored[0].seq < stored[2].seq
    pending = await store.pending_commands("remote")
    assert [(c.kind, c.job_id, c.requested_time) for c in pending] == [
        (CommandKind.SUBMIT, first, None),
        (CommandKind.EXTEND, first, extend),
    ]
    assert await store.pending_commands("remote", after=pending[0].seq) == pending[1:]

    # Another provider's ids acknowledge nothing here.
    assert await store.acknowledge_commands("remote", [stored[1].seq]) == 0
    assert await store.acknowledge_commands("remote", [pending[0].seq, pending[0].seq]) == 1
    assert await store.pending_commands("remote") == pending[1:]
    assert await store.acknowledge_commands("remote", [pending[0].seq]) == 0
    later = await store.add_commands([NewCommand("remote", CommandKind.CANCEL, first, 13)])
    assert later[0].seq > pending[1].seq
    assert [c.kind for c in await store.pending_commands("remote")] == [
        CommandKind.EXTEND,
        CommandKind.CANCEL,
    ]


async def test_a_read_after_a_write_sees_it_whatever_the_concurrent_readers(
    store: JobStore,
) -> None:
    stop = asyncio.Event()

    async def keep_reading() -> None:
        while not stop.is_set():
            await store.find_jobs(JobQuery(EVERYTHING, limit=50))

    readers = [asyncio.ensure_future(keep_reading()) for _ in range(10)]
    try:
        missed = 0
        for _ in range(25):
            (job,) = (await store.create_jobs(submission())).jobs
            missed += not await store.get_jobs([job.id])
            advanced = await advance(store, job, JobState.RUNNING)
            missed += advanced.status.state is not JobState.RUNNING
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert missed == 0


async def test_earlier_submission_replays_a_key_and_refuses_its_reuse(store: JobStore) -> None:
    first = await store.create_jobs(submission(key="k", request_hash="h1"))
    assert await store.earlier_submission(submission(key="other", request_hash="h1")) is None
    assert await store.earlier_submission(submission(request_hash="h1")) is None
    before = store.round_trips.count
    again = await store.earlier_submission(submission(key="k", request_hash="h1"))
    # A retry of a stored submission (clients retry while a store is slow: it must stay cheap)
    # reads the claim and its jobs, nothing more.
    assert store.round_trips.count - before <= 2, store.round_trips.by_kind
    assert again is not None
    assert again.replayed
    assert [job.id for job in again.jobs] == [job.id for job in first.jobs]
    with pytest.raises(IdempotencyKeyReused):
        await store.earlier_submission(submission(key="k", request_hash="h2"))


async def test_created_jobs_wait_in_the_outbox_until_their_hand_over_is_complete(
    store: JobStore,
) -> None:
    created = await store.create_jobs(
        submission(spec(), spec(provider="other", product="cpu-other"))
    )
    local, other = created.jobs
    assert [job.id for job in await store.pending_handovers()] == [local.id, other.id]
    assert [job.id for job in await store.pending_handovers("other")] == [other.id]
    await store.complete_handovers([local.id])
    assert [job.id for job in await store.pending_handovers()] == [other.id]
    await store.complete_handovers([other.id, other.id, "999"])  # repeats change nothing
    assert await store.pending_handovers() == []


async def test_created_jobs_come_with_their_first_update(store: JobStore) -> None:
    created = await store.create_jobs(submission(spec(), spec(), key="k"))
    stored = await store.updates_of([job.id for job in created.jobs])
    assert created.first_updates == {job_id: updates[0] for job_id, updates in stored.items()}
    replay = await store.create_jobs(submission(spec(), spec(), key="k"))
    assert replay.replayed
    assert replay.first_updates == {}


@pytest.mark.parametrize("field", list(OrderField))
@pytest.mark.parametrize("descending", [True, False])
async def test_a_users_pages_merge_personal_project_and_shared_jobs_in_order(
    store: JobStore, field: OrderField, descending: bool
) -> None:
    """Alice's pages, in every order: her personal jobs, every job of the project she leads,
    and what was shared with her of another's personal jobs and of a project she is a plain
    member of; with equal sort values across them, pages of 3."""
    owners = [
        ("alice", None),
        ("alice", "lab"),
        ("bob", "lab"),
        ("bob", None),
        ("carol", "x"),
        ("alice", "x"),
    ]
    names = ["delta", "alpha", None, "Charlie", "bravo", "alpha", "echo"]
    jobs: list[Job] = []
    for number in range(28):
        user, project = owners[number % len(owners)]
        made = submission(
            spec(name=names[number % len(names)]), user=user, project=project, at=(number * 7) % 5
        )
        jobs.extend((await store.create_jobs(made)).jobs)
    for index in range(0, len(jobs), 4):
        jobs[index] = await advance(store, jobs[index], JobState.RUNNING)
    # Bob shares two personal jobs with alice; carol one job of project x.
    shared = AclEntry(AclEntity.user("alice"), frozenset({Permission.READ}))
    for index in (3, 9, 4):
        (job,) = await store.get_jobs([jobs[index].id])
        assert await store.update_acl(job, (*job.acl, shared))
        (jobs[index],) = await store.get_jobs([job.id])
    alice = (
        Projects([Project("lab", pis=frozenset({"alice"})), Project("x")])
        .user("alice", {"x"})
        .visibility
    )
    visible = [job for job in jobs if alice.allows(job)]
    assert {jobs[3].id, jobs[9].id, jobs[4].id} <= {job.id for job in visible}
    assert len(visible) < len(jobs)
    filters = {
        "none": JobFilter(),
        "one state": JobFilter(states=frozenset({JobState.RUNNING})),
        "two states": JobFilter(states=frozenset({JobState.RUNNING, JobState.IN_QUEUE})),
        "no state": JobFilter(states=frozenset()),
        "a range": JobFilter(created_after=1, created_before=3),
        "ids": JobFilter(ids=tuple(job.id for job in jobs[::3])),
        "a range and a state": JobFilter(created_after=2, states=frozenset({JobState.RUNNING})),
    }
    for name, job_filter in filters.items():
        matching = [job for job in visible if matches(job, job_filter)]
        expected = sorted(
            matching, key=lambda j: (sort_key(j, field), int(j.id)), reverse=descending
        )
        assert await all_pages(store, alice, job_filter, field, descending) == [
            job.id for job in expected
        ], name
        assert await store.count_jobs(alice, job_filter) == len(expected), name
    if isinstance(store, SqliteJobStore):
        # A range wider than this is walked in the order's index rather than sorted.
        store.range_sort_limit = 1
        for name in ("a range", "a range and a state"):
            job_filter = filters[name]
            expected = sorted(
                (job for job in visible if matches(job, job_filter)),
                key=lambda j: (sort_key(j, field), int(j.id)),
                reverse=descending,
            )
            walked = await all_pages(store, alice, job_filter, field, descending)
            assert walked == [job.id for job in expected], name


def matches(job: Job, job_filter: JobFilter) -> bool:
    """What the filters of `test_a_users_pages_merge_...` ask, in Python."""
    return (
        (job_filter.states is None or job.status.state in job_filter.states)
        and (job_filter.created_after is None or job.created_at >= job_filter.created_after)
        and (job_filter.created_before is None or job.created_at <= job_filter.created_before)
        and (job_filter.ids is None or job.id in job_filter.ids)
    )


async def all_pages(
    store: JobStore,
    visibility: Visibility,
    job_filter: JobFilter,
    field: OrderField,
    descending: bool,
) -> list[str]:
    """The ids of every job `visibility` lists with `job_filter`, in pages of 3."""
    seen: list[str] = []
    after: PageKey | None = None
    while True:
        query = JobQuery(visibility, job_filter, JobOrder(field, descending), limit=3, after=after)
        page = await store.find_jobs(query)
        seen.extend(job.id for job in page.jobs)
        if not page.has_next:
            return seen
        last = page.jobs[-1]
        after = PageKey(sort_key(last, field), int(last.id))


async def test_a_jobs_acl_decides_who_else_reads_it_in_every_query(store: JobStore) -> None:
    (job,) = (await store.create_jobs(submission(user="bob", project="a"))).jobs
    (personal,) = (await store.create_jobs(submission(user="bob"))).jobs
    projects = Projects([Project("a", groups=(("analysts", frozenset({"carol"})),))])
    carol = projects.user("carol", {"a"}).visibility
    dave = projects.user("dave", {"a"}).visibility  # a member, in no group
    outsider = projects.user("erin").visibility

    async def readers_of(job_id: str) -> dict[str, bool]:
        seen = {}
        for name, visibility in (("carol", carol), ("dave", dave), ("erin", outsider)):
            listed = job_id in await ids(store, JobQuery(visibility))
            counted = await store.count_jobs(visibility, JobFilter(ids=(job_id,)))
            logged = await store.read_log(LogQuery(after=0, visibility=visibility))
            in_log = job_id in {entry.update.job_id for entry in logged}
            assert listed == bool(counted) == in_log, (name, listed, counted, in_log)
            seen[name] = listed
        return seen

    assert await readers_of(job.id) == {"carol": False, "dave": False, "erin": False}
    analysts = AclEntry(AclEntity.project_group("a", "analysts"), frozenset({Permission.READ}))
    shared = changed_acl(job.acl, [analysts], [])
    assert await store.update_acl(job, shared)
    (stored,) = await store.get_jobs([job.id])
    assert set(stored.acl) == set(shared)
    assert await readers_of(job.id) == {"carol": True, "dave": False, "erin": False}
    # A change made from an older copy of the ACL does not land: the caller re-reads.
    everyone = AclEntry(AclEntity.project_group("a", "all"), frozenset({Permission.READ}))
    assert not await store.update_acl(job, changed_acl(job.acl, [everyone], []))
    assert await store.update_acl(stored, changed_acl(stored.acl, [everyone], []))
    assert await readers_of(job.id) == {"carol": True, "dave": True, "erin": False}
    (stored,) = await store.get_jobs([job.id])
    revoked = changed_acl(stored.acl, [], [everyone.entity, analysts.entity])
    assert await store.update_acl(stored, revoked)
    assert await readers_of(job.id) == {"carol": False, "dave": False, "erin": False}
    # A personal job, shared with a user who shares no project with its creator.
    erin = AclEntry(AclEntity.user("erin"), frozenset({Permission.READ, Permission.EDIT}))
    assert await store.update_acl(personal, changed_acl(personal.acl, [erin], []))
    assert await readers_of(personal.id) == {"carol": False, "dave": False, "erin": True}
