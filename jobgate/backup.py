"""`jobgate backup` and `jobgate restore`: a consistent copy of the SQLite store, made while the
gateway runs, and putting one back (README: "Backups").

A backup is SQLite's online backup: one read transaction copies every page, so the copy is the
store as it was at one instant (every job with all of its updates up to then, nothing half
written), while the gateway goes on writing (WAL: readers never block the writer). It is written
beside its destination and renamed into place once complete and synced, so a crash never leaves
a half backup under the destination's name.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from jobgate.errors import JobgateError


class BackupError(JobgateError):
    """The backup or restore cannot be made; the message says why."""


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """What a copy of the store holds."""

    jobs: int
    updates: int
    latest_position: int  # the newest update's position (a cursor's), 0 for none

    def as_dict(self) -> dict[str, int]:
        return {"jobs": self.jobs, "updates": self.updates, "latest_position": self.latest_position}


def backup(source: Path, destination: Path) -> StoreSummary:
    """Copy the store at `source` to `destination` (a new file) while it is in use."""
    if not source.is_file():
        raise BackupError(f"there is no SQLite store at {source}")
    if destination.exists():
        raise BackupError(f"{destination} exists; give the backup a new name")
    partial = destination.with_name(destination.name + ".partial")
    try:
        _copy(source, partial)
        summary = summarize(partial)
        os.replace(partial, destination)
        _sync_folder(destination.parent)
    except (sqlite3.Error, OSError) as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the backup failed: {error}") from error
    return summary


def restore(source: Path, target: Path, *, replace: bool = False) -> StoreSummary:
    """Put the backup `source` in place as the store `target`. The caller holds the data
    folder's lock: no gateway runs on it. An existing store is kept beside it, renamed, and
    only with `replace`."""
    summary = summarize(source)
    if target.exists() and not replace:
        raise BackupError(f"{target} exists; pass --replace to put the backup in its place")
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, partial)
        if target.exists():
            os.replace(target, target.with_name(f"{target.name}.replaced-{int(time.time())}"))
        for leftover in ("-wal", "-shm"):  # the old store's; they must not meet the new one
            target.with_name(target.name + leftover).unlink(missing_ok=True)
        os.replace(partial, target)
        _sync_folder(target.parent)
    except (sqlite3.Error, OSError) as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the restore failed: {error}") from error
    return summary


def summarize(path: Path) -> StoreSummary:
    """What the store file at `path` holds; `BackupError` unless it is a sound jobgate store."""
    if not path.is_file():
        raise BackupError(f"there is no file at {path}")
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA query_only = ON")  # a look, never a change
            (check,) = db.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise BackupError(f"{path} is damaged: {check}")
            (jobs,) = db.execute("SELECT count(*) FROM jobs").fetchone()
            updates, latest = db.execute(
                "SELECT count(*), coalesce(max(seq), 0) FROM job_updates"
            ).fetchone()
            # A log that retention emptied ends at its horizon (stores before it had none).
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'store_meta'").fetchone():
                horizon = db.execute(
                    "SELECT value FROM store_meta WHERE name = 'log_horizon'"
                ).fetchone()
                latest = max(latest, 0 if horizon is None else horizon[0])
    except sqlite3.Error as error:
        raise BackupError(f"{path} is not a jobgate store: {error}") from error
    return StoreSummary(jobs, updates, latest)


def _copy(source: Path, destination: Path) -> None:
    destination.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(destination)) as dst,
    ):
        src.backup(dst)  # all pages in one step: one consistent snapshot
    with open(destination, "rb") as copied:
        os.fsync(copied.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
