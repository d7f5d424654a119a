"""Opening interactive sessions, on each store: who may open which
session of which job, what they get, what the job's history says, and that sessions end with
their job."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobgate.domain.acl import AclEntity, AclEntry, Permission
from jobgate.domain.catalog import ComputeSupport, Interfaces, Product
from jobgate.domain.job import Job, JobSpecification, UpdateRequest
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.domain.values import NameAndVersion
from jobgate.errors import UserErrorCode
from jobgate.services.jobs import now_ms
from jobgate.services.sessions import SessionRequest, SessionService
from jobgate.sessions.capability import proves, split
from jobgate.storage.base import JobStore
from tests.services.harness import ALICE, BOB, ECHO, Harness, harness, spec
from tests.services.recording import RecordingProvider

WEB, TERMINAL, VNC = SessionType.WEB, SessionType.TERMINAL, SessionType.VNC


# An application that serves a web app (echo serves nothing: a terminal is all it may get).
WEB_ECHO = dataclasses.replace(ECHO, name="web-echo", interactive=Interfaces(web=True))


@pytest.fixture
async def h(store: JobStore, tmp_path: Path) -> AsyncIterator[Harness]:
    support = ComputeSupport(web=True, terminal=True)
    provider = RecordingProvider(products=[Product("cpu-test", "cpu", "test", support=support)])
    async with harness(store, tmp_path, [provider], applications=[ECHO, WEB_ECHO]) as running:
        yield running


def web_spec() -> JobSpecification:
    return dataclasses.replace(spec(), application=NameAndVersion("web-echo", "1"))


async def running_job(h: Harness, replicas: int = 1, app: JobSpecification | None = None) -> Job:
    specification = app or web_spec()
    (job,) = await h.submit(dataclasses.replace(specification, replicas=replicas))
    await h.report(UpdateRequest(job.id, state=JobState.RUNNING))
    return await h.job(job.id)


async def test_a_running_jobs_owner_gets_a_capability_url_for_each_session(h: Harness) -> None:
    service = SessionService(h.jobs, now_ms)
    job = await running_job(h, replicas=2)

    outcome = await service.open(
        ALICE, [SessionRequest(job.id, 0, WEB), SessionRequest(job.id, 1, TERMINAL)]
    )

    assert outcome.problems == []
    web, terminal = outcome.sessions
    assert web.url.startswith(f"/interactive/{job.id}/0/web/?jobgate-session=")
    assert terminal.url.startswith(f"/interactive/{job.id}/1/terminal/?jobgate-session=")
    assert web.url != terminal.url
    assert web.expires_at > now_ms()
    parts = split(web.url.split("=", 1)[1])
    assert parts is not None
    record = await h.store.session(parts[0])
    assert record is not None
    assert (record.job_id, record.rank, record.type, record.username) == (job.id, 0, WEB, "alice")
    assert proves(record, parts[1])
    # Each opening is on the job's record, saying who.
    statuses = [u.request.status for u in (await h.store.updates_of([job.id]))[job.id]]
    assert "Web session opened by alice (replica 0)" in statuses
    assert "Terminal session opened by alice (replica 1)" in statuses
    await service.stop()


async def test_each_session_that_may_not_be_opened_says_why(h: Harness, store: JobStore) -> None:
    service = SessionService(h.jobs, now_ms)
    job = await running_job(h)
    queued, shared = await h.submit(web_spec(), web_spec())
    plain = await running_job(h, app=spec())
    read_only = AclEntry(AclEntity.user("bob"), frozenset({Permission.READ}))
    assert await store.update_acl(shared, (read_only,))
    await h.report(UpdateRequest(shared.id, state=JobState.RUNNING))

    outcome = await service.open(
        ALICE,
        [
            SessionRequest(job.id, 0, VNC),  # the product offers no desktops
            SessionRequest(job.id, 1, WEB),  # one replica only
            SessionRequest(queued.id, 0, WEB),  # not running yet
            SessionRequest("999999", 0, WEB),
            SessionRequest(plain.id, 0, WEB),  # the application serves no web app
            SessionRequest(job.id, 0, WEB),
            SessionRequest(plain.id, 0, TERMINAL),  # a terminal needs no app's help
        ],
    )
    problems = [(p.index, p.code, p.field) for p in outcome.problems]
    assert problems == [
        (0, UserErrorCode.NOT_SUPPORTED, ("sessions", "0", "type")),
        (1, UserErrorCode.INVALID_PARAMETER, ("sessions", "1", "rank")),
        (2, UserErrorCode.INVALID_STATE, ("sessions", "2", "jobId")),
        (3, UserErrorCode.NOT_FOUND, ("sessions", "3", "jobId")),
        (4, UserErrorCode.NOT_SUPPORTED, ("sessions", "4", "type")),
    ]
    assert "application serves no WEB" in outcome.problems[4].message
    assert [(s.job_id, s.type) for s in outcome.sessions] == [(job.id, WEB), (plain.id, TERMINAL)]

    # Someone who may only read the job, and someone who may not see it.
    mine = await service.open(BOB, [SessionRequest(shared.id, 0, WEB)])
    assert [p.code for p in mine.problems] == [UserErrorCode.FORBIDDEN]
    others = await service.open(BOB, [SessionRequest(job.id, 0, WEB)])
    assert [p.code for p in others.problems] == [UserErrorCode.NOT_FOUND]
    assert (await service.open(ALICE, [])).problems[0].code is UserErrorCode.TOO_MANY_ITEMS
    await service.stop()


async def test_sessions_are_forgotten_when_their_job_ends(h: Harness) -> None:
    service = SessionService(h.jobs, now_ms)
    job = await running_job(h)
    (opened,) = (await service.open(ALICE, [SessionRequest(job.id, 0, WEB)])).sessions
    parts = split(opened.url.split("=", 1)[1])
    assert parts is not None
    assert await h.store.session(parts[0]) is not None

    await h.report(UpdateRequest(job.id, state=JobState.SUCCESS))
    # Forgotten as the final update is stored, in the background.
    for _ in range(100):
        if await h.store.session(parts[0]) is None:
            break
        await asyncio.sleep(0.05)
    assert await h.store.session(parts[0]) is None
    await service.stop()
