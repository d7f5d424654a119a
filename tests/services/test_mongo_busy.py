"""FerretDB (the MongoDB of the tests) answers a write it cannot make because its SQLite file is
locked with an `InternalError` ("database is locked", SQLITE_BUSY), where MongoDB would make the
client wait or time out. Under load in CI that reached callers as INTERNAL_SERVER_ERROR (and an
agent, told so, exited): it is a store that did not answer, STORE_UNAVAILABLE, and passes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobgate.domain.commands import CommandKind, NewCommand
from jobgate.errors import StoreUnavailable
from jobgate.storage.mongo import MongoJobStore
from tests.factories import submission
from tests.servers import FerretDB


async def test_a_locked_ferretdb_file_is_a_store_that_did_not_answer(tmp_path: Path) -> None:
    # A busy timeout of a second (FerretDB's default is 10 s), well within the client's
    # timeout: FerretDB answers before the client gives up, with SQLITE_BUSY.
    server = FerretDB(tmp_path / "ferretdb", sqlite_options="_pragma=busy_timeout(1000)").start()
    store = MongoJobStore(f"{server.url}/busy", server_selection_timeout_ms=10_000)
    try:
        await store.open()
        (job,) = (await store.create_jobs(submission())).jobs
        command = NewCommand("local", CommandKind.CANCEL, job.id, created_at=1)
        holder = sqlite3.connect(tmp_path / "ferretdb" / "busy.sqlite", timeout=0)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # no one else writes to it meanwhile
            with pytest.raises(StoreUnavailable):
                await store.add_commands([command])
        finally:
            holder.rollback()
            holder.close()
        (stored,) = await store.add_commands([command])  # the file free again: it answers
        assert stored.job_id == job.id
    finally:
        await store.close()
        server.stop()
