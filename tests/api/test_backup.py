"""`jobgate backup` while a gateway takes a burst of writes, and `jobgate restore` into a fresh
data folder: everything the backup reported is there, nothing half written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
from pathlib import Path

from jobgate.storage.base import LogQuery
from jobgate.storage.sqlite import SqliteJobStore
from tests.api.documents import job_spec, submit
from tests.processes import JOBGATE, ServeProcess, write_config


def config_in(folder: Path) -> Path:
    """A gateway on the SQLite file of `folder/data`, with alice and the local provider."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_config(folder / "jobgate.toml", data_dir=folder / "data", storage="")


def jobgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JOBGATE), *args], capture_output=True, text=True, check=False, timeout=120
    )


async def test_a_backup_during_a_write_burst_restores_whole(tmp_path: Path) -> None:
    config = config_in(tmp_path / "live")
    serve = ServeProcess(config)
    alice = serve.start()
    submitted: list[str] = []
    grown = asyncio.Condition()

    async def burst() -> None:
        n = 0
        while True:
            n += 1
            specs = [job_spec(message=f"burst {n}.{i}") for i in range(5)]
            submitted.extend(await submit(alice, *specs))
            async with grown:
                grown.notify_all()

    async def until_submitted(count: int) -> None:
        async with grown:
            await grown.wait_for(lambda: len(submitted) >= count)

    writer = asyncio.create_task(burst())
    try:
        await until_submitted(50)
        made = await asyncio.to_thread(
            jobgate, "backup", str(tmp_path / "b.db"), "--config", str(config)
        )
        assert made.returncode == 0, made.stderr
        await until_submitted(len(submitted) + 20)  # the burst goes on after the backup
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        serve.stop(signal.SIGTERM)
    reported = json.loads(made.stdout)
    assert reported["file"] == str(tmp_path / "b.db")
    assert reported["jobs"] >= 50
    assert len(submitted) > reported["jobs"]  # the burst went on during and after it

    fresh = config_in(tmp_path / "fresh")
    restored = await asyncio.to_thread(
        jobgate, "restore", str(tmp_path / "b.db"), "--config", str(fresh)
    )
    assert restored.returncode == 0, restored.stderr
    assert {k: v for k, v in json.loads(restored.stdout).items() if k != "file"} == {
        k: v for k, v in reported.items() if k != "file"
    }

    store = SqliteJobStore(tmp_path / "fresh" / "data" / "jobgate.db")
    await store.open()
    try:
        # Jobs are numbered in order: the backup holds the first ones, each whole.
        ids = [str(n) for n in range(1, reported["jobs"] + 1)]
        jobs = await store.get_jobs(ids)
        assert sorted(int(job.id) for job in jobs) == list(range(1, reported["jobs"] + 1))
        log = await store.read_log(LogQuery(after=0, limit=100_000))
        assert len(log) == reported["updates"]
        assert log[-1].update.seq == reported["latest_position"]
        assert {entry.update.job_id for entry in log} == set(ids)  # every job's first update
        for job in jobs:  # each job as its last update in the backup left it
            last = [e for e in log if e.update.job_id == job.id][-1]
            assert job.status == last.update.status_after
    finally:
        await store.close()


def test_restore_refuses_while_a_gateway_runs_and_refuses_what_is_no_store(
    tmp_path: Path,
) -> None:
    config = config_in(tmp_path / "live")
    serve = ServeProcess(config)
    serve.start()
    try:
        made = jobgate("backup", str(tmp_path / "b.db"), "--config", str(config))
        assert made.returncode == 0, made.stderr
        again = jobgate("backup", str(tmp_path / "b.db"), "--config", str(config))
        assert again.returncode == 2
        assert "exists; give the backup a new name" in again.stderr
        busy = jobgate("restore", str(tmp_path / "b.db"), "--config", str(config), "--replace")
        assert busy.returncode == 2
        assert "another gateway" in busy.stderr
    finally:
        serve.stop(signal.SIGTERM)
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("hello")
    wrong = jobgate("restore", str(not_a_store), "--config", str(config), "--replace")
    assert wrong.returncode == 2
    assert "is not a jobgate store" in wrong.stderr
    kept = jobgate("restore", str(tmp_path / "b.db"), "--config", str(config))
    assert kept.returncode == 2
    assert "pass --replace" in kept.stderr
    replaced = jobgate("restore", str(tmp_path / "b.db"), "--config", str(config), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert list((tmp_path / "live" / "data").glob("jobgate.db.replaced-*"))


def test_a_mongodb_store_is_backed_up_with_mongodump(tmp_path: Path) -> None:
    config = tmp_path / "jobgate.toml"
    config.write_text('[storage]\nurl = "mongodb://127.0.0.1:1/jobgate"\n')
    refused = jobgate("backup", str(tmp_path / "b.db"), "--config", str(config))
    assert refused.returncode == 2
    assert "use mongodump and mongorestore" in refused.stderr
