"""A benchmark's server processes: run on loopback until the benchmark is done with them, and
what it reads of them from /proc."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.servers import wait_for_port


def rss_kib(pid: int) -> int:
    """The process's resident memory, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far (in ticks of 1/SC_CLK_TCK: 10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running(
    command: list[str], port: int, *, ready_timeout: float = 60, **options: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` (`subprocess.Popen` `options`), once it listens on `port` of loopback;
    terminated by its PID on leaving."""
    process: subprocess.Popen[bytes] = subprocess.Popen(command, **options)
    try:
        wait_for_port(port, timeout=ready_timeout)
        yield process
    finally:
        process.terminate()
        process.wait(20)
