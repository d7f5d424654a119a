"""The local provider's job supervisor: one small process per job, which runs the job's replicas
and outlives the gateway (or agent) that started it.

`python -I -S supervisor.py FOLDER` (this file, run on its own) reads `FOLDER/launch.json`, starts each replica
in a process group of its own with its output in `FOLDER/{stdout,stderr}-<rank>.log`, records
the replicas in `processes.json`, waits for all of them and writes `exit.json`: their exit codes,
or why they could not start. A SIGTERM stops the replicas (SIGTERM to each group, SIGKILL after
the grace period); one that comes before they started means they never start.

The supervisor holds an exclusive lock on `FOLDER/supervisor.lock` for its whole life: the
adapter takes the lock before it starts the supervisor and hands the locked file over, so the
lock is never free while one runs. "The lock is free and there is no exit.json" means it died.
Every record is written whole (a temporary file renamed over), so a reader never sees half of one.

Only the standard library, and nothing of the gateway: it starts in milliseconds (no site
packages) and holds nothing of the gateway's memory, descriptors or imports.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LAUNCH = "launch.json"  # written by the adapter: argv, replicas, environment, grace
LOCK = "supervisor.lock"
SUPERVISOR = "supervisor.json"  # the supervisor's pid and start time, for signalling it
PROCESSES = "processes.json"  # the replicas' pids and start times, once all have started
EXIT = "exit.json"  # how it ended: {"codes": [...]} or {"error": "..."}
STOP = "stop.json"  # written by the adapter before it signals a stop: {"reason": ...}
# Wakes at least this often even without a signal, in case one was missed.
MAX_WAIT_SECONDS = 5.0


def write_record(path: Path, value: Any) -> None:
    """Write a JSON record whole: readers see the old one or the new one, never a part."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w") as file:
        json.dump(value, file)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)


def read_record(path: Path) -> Any:
    """A record, or None when it is absent or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def stat_fields(stat: Path) -> list[str] | None:
    """The fields of a `/proc/<pid>/stat` after the command name (state, ppid, pgrp, ...), or
    None when the process is gone. The name is in parentheses and may hold anything."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`, to tell a process from a later one with its pid."""
    fields = stat_fields(Path(f"/proc/{pid}/stat"))
    return None if fields is None else fields[19]


def lock_is_held(folder: Path) -> bool:
    """Whether a supervisor (or an adapter about to start one) holds the folder's lock."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock just taken
    return False


def group_members(pgid: int) -> list[tuple[int, int]]:
    """The processes of process group `pgid`: (pid, parent pid) pairs."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(stat)
        if fields is not None and int(fields[2]) == pgid:
            members.append((int(stat.parent.name), int(fields[1])))
    return members


class _Replicas:
    def __init__(self, grace: float, sandboxed: bool) -> None:
        self.grace = grace
        self.sandboxed = sandboxed
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stop_requested = False
        self.kill_at: float | None = None

    def signal_all(self, signum: int) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signum)

    def terminate_all(self) -> None:
        """SIGTERM to every replica's programs.

        In a sandbox, not to bubblewrap itself: it does not pass signals on, and a bwrap that
        ends kills its sandbox at once, with no grace. Its programs share its process group;
        the sandbox's init (bwrap's child) ignores a SIGTERM from outside, and ends with them.
        """
        if not self.sandboxed:
            self.signal_all(signal.SIGTERM)
            return
        for process in self.processes:
            if process.poll() is not None:
                continue
            members = group_members(process.pid)
            outer = {process.pid} | {pid for pid, parent in members if parent == process.pid}
            for pid, _parent in members:
                if pid not in outer:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM now, SIGKILL once the grace period is over."""
        if self.kill_at is None:
            self.terminate_all()
            self.kill_at = time.monotonic() + self.grace


def main(folder: Path) -> int:
    launch = json.loads((folder / LAUNCH).read_text())
    sandboxed = bool(launch.get("sandboxed"))
    replicas = _Replicas(float(launch["grace"]), sandboxed)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    signal.set_wakeup_fd(wake_write)

    def on_stop(_signum: int, _frame: object) -> None:
        replicas.stop_requested = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)  # wakes the select below
    pid = os.getpid()
    write_record(folder / SUPERVISOR, {"pid": pid, "started": process_start_time(pid)})
    # The adapter writes STOP before it reads SUPERVISOR to signal: a stop it could not signal
    # (SUPERVISOR not written yet) is found here.
    replicas.stop_requested = (folder / STOP).exists()

    argv: list[str] = launch["argv"]
    program: str = launch.get("program") or argv[0]
    env: dict[str, str] = launch["env"]
    # An interactive application's replicas differ: each has its own port (and address).
    per_rank: list[dict[str, Any]] | None = launch.get("ranks")
    if sandboxed and shutil.which(program, path=env.get("PATH")) is None:
        # Inside the sandbox it would be bwrap that fails, with only an exit code to show: the
        # sandbox sees this host's system folders, so the program is looked for here.
        write_record(folder / EXIT, {"error": f"Could not start '{program}': no such program"})
        return 0
    account = launch.get("account")
    as_account: dict[str, Any] = {}
    if account is not None and not sandboxed:  # in a sandbox, setpriv inside drops to it
        groups = account.get("groups", [])
        as_account = {"user": account["uid"], "group": account["gid"], "extra_groups": groups}
    for rank in range(int(launch["replicas"])):
        if replicas.stop_requested:
            break  # stopped before every replica started: the rest never start
        try:
            with (
                open(folder / f"stdout-{rank}.log", "ab") as stdout,
                open(folder / f"stderr-{rank}.log", "ab") as stderr,
            ):
                own = {} if per_rank is None else per_rank[rank]
                process = subprocess.Popen(
                    own.get("argv", argv),
                    cwd=launch.get("cwd", folder),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    env={**env, **own.get("env", {}), "JOBGATE_RANK": str(rank)},
                    start_new_session=True,
                    **as_account,
                )
        except OSError as error:
            replicas.signal_all(signal.SIGKILL)
            for started in replicas.processes:
                started.wait()
            reason = error.strerror or str(error)
            write_record(folder / EXIT, {"error": f"Could not start '{argv[0]}': {reason}"})
            return 0
        replicas.processes.append(process)
    if replicas.stop_requested and len(replicas.processes) < int(launch["replicas"]):
        replicas.stop()
    else:
        write_record(
            folder / PROCESSES,
            [{"pid": p.pid, "started": process_start_time(p.pid)} for p in replicas.processes],
        )

    while True:
        codes = [process.poll() for process in replicas.processes]
        if all(code is not None for code in codes):
            break
        if replicas.stop_requested:
            replicas.stop()
        timeout = MAX_WAIT_SECONDS
        if replicas.kill_at is not None:
            left = replicas.kill_at - time.monotonic()
            if left <= 0:
                replicas.signal_all(signal.SIGKILL)
                left = MAX_WAIT_SECONDS
            timeout = min(timeout, left)
        with contextlib.suppress(InterruptedError):
            select.select([wake_read], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            os.read(wake_read, 512)
    write_record(folder / EXIT, {"codes": codes, "stopped": replicas.stop_requested})
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
