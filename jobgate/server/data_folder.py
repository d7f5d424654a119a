"""One gateway per data folder: a lock held for the process's life.

Two gateways on one data folder would each settle the other's "left over" local jobs (and kill
their processes). The second start refuses at once, before it touches anything.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from jobgate.errors import ConfigError

LOCK_FILE = "gateway.lock"


class DataFolderLock:
    """An exclusive `flock` on `<data_dir>/gateway.lock`, released when the process ends."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock; `ConfigError` naming the holder's pid if another gateway has it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held for life)
        except OSError as error:
            raise ConfigError(
                f"server.data_dir: cannot use {self.path.parent}: {error.strerror}"
            ) from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"server.data_dir: another gateway (pid {holder}) is using {self.path.parent}; "
                "stop it first, or give this one its own data_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases the flock
            self._file = None
