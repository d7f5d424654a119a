"""Interactive sessions in the JobStore contract: a session opened through one replica is found
through another (the store holds it, without its secret), and goes with its job."""

from __future__ import annotations

from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.sessions.capability import new_session, proves, split
from jobgate.storage.base import JobStore
from tests.contract.test_retention import forget_final_jobs, update
from tests.factories import spec, submission


async def test_a_session_is_found_by_its_id_and_proved_by_its_secret(store: JobStore) -> None:
    (job,) = (await store.create_jobs(submission(at=1_000))).jobs
    record, capability = new_session(job.id, 0, SessionType.WEB, "alice", 2_000)
    other, _ = new_session(job.id, 1, SessionType.TERMINAL, "alice", 2_000)
    await store.add_sessions([record, other])

    parts = split(capability)
    assert parts is not None
    session_id, secret = parts
    found = await store.session(session_id)
    assert found == record
    assert proves(found, secret)
    assert not proves(found, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert secret not in repr(found)  # the store holds a digest, never the secret
    assert await store.session("0123456789abcdef") is None


async def test_sessions_go_when_their_job_ends_or_is_removed(store: JobStore) -> None:
    one, two = (await store.create_jobs(submission(spec(), spec(), at=1_000))).jobs
    first, _ = new_session(one.id, 0, SessionType.WEB, "alice", 2_000)
    second, _ = new_session(two.id, 0, SessionType.VNC, "alice", 2_000)
    await store.add_sessions([first, second])

    assert await store.forget_sessions([one.id]) == 1
    assert await store.session(first.id) is None
    assert await store.session(second.id) == second

    await update(store, two, 3_000, JobState.SUCCESS)
    assert await forget_final_jobs(store, before=5_000) == 1
    assert await store.session(second.id) is None


def test_anything_but_a_capability_is_refused_before_the_store_is_asked() -> None:
    for text in ("", "abc", "0123456789abcdef", "0123456789abcdef.short", "x" * 200):
        assert split(text) is None
