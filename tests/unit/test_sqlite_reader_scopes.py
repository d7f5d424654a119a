"""The SQLite store's `job_readers` keep each job's project, so that a user's own entries on
the jobs of a project they manage are not read to find what was shared with them; a store
made before that is brought up to date when it opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jobgate.access import Visibility
from jobgate.domain.acl import AclEntity, AclEntry, Permission
from jobgate.storage.base import JobQuery
from jobgate.storage.sqlite import SqliteJobStore
from tests.factories import submission

ALICE = Visibility(
    username="alice", managed=frozenset({"proj-a"}), entities=frozenset({"user:alice"})
)


async def seeded(path: Path) -> list[str]:
    """Alice's personal job, her job in proj-a (which she manages), bob's personal job shared
    with her, and bob's personal job not shared: the ids of the first three."""
    store = SqliteJobStore(path)
    await store.open()
    try:
        ids = []
        for made in (
            submission(user="alice", at=1),
            submission(user="alice", project="proj-a", at=2),
            submission(user="bob", at=3),
            submission(user="bob", at=4),
        ):
            ids += [job.id for job in (await store.create_jobs(made)).jobs]
        (shared,) = await store.get_jobs([ids[2]])
        entry = AclEntry(AclEntity.user("alice"), frozenset({Permission.READ}))
        assert await store.update_acl(shared, (entry,))
        return ids[:3]
    finally:
        await store.close()


async def visible_to_alice(path: Path) -> list[str]:
    store = SqliteJobStore(path)
    await store.open()
    try:
        return sorted(job.id for job in (await store.find_jobs(JobQuery(ALICE))).jobs)
    finally:
        await store.close()


async def test_what_alice_sees_is_her_own_her_projects_and_what_was_shared(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobgate.db"
    expected = await seeded(path)
    assert await visible_to_alice(path) == sorted(expected)
    with sqlite3.connect(path) as db:
        scopes = dict(db.execute("SELECT job_num, project FROM job_readers").fetchall())
    assert scopes == {int(expected[1]): "proj-a", int(expected[2]): None}


async def test_a_store_from_before_reader_scopes_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "jobgate.db"
    expected = await seeded(path)
    with sqlite3.connect(path) as db:  # as an earlier version left it
        db.execute("DROP INDEX job_readers_scope")
        db.execute("ALTER TABLE job_readers DROP COLUMN project")
    assert await visible_to_alice(path) == sorted(expected)
    with sqlite3.connect(path) as db:
        scopes = dict(db.execute("SELECT job_num, project FROM job_readers").fetchall())
    assert scopes == {int(expected[1]): "proj-a", int(expected[2]): None}
