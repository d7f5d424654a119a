"""`CommandJournal`: the commands this agent has carried out, kept on disk.

A command is written here once done and before it is acknowledged, so one that is delivered again
(the agent died before its acknowledgement reached the gateway) is acknowledged, not run twice.
"""

from __future__ import annotations

import os
from pathlib import Path


class CommandJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._done: set[int] = set()
        if path.exists():
            self._done = {int(line) for line in path.read_text().split() if line.isdecimal()}

    def __contains__(self, seq: int) -> bool:
        return seq in self._done

    def record(self, seq: int) -> None:
        """Durably note that command `seq` is done (flushed and synced before returning)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as file:
            file.write(f"{seq}\n")
            file.flush()
            os.fsync(file.fileno())
        self._done.add(seq)
