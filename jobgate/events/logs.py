"""`JobLogHub`: the output lines of running jobs, kept as a bounded tail and streamed live.

Providers append lines as their jobs write them and close a job's log when the job ends. A
watcher gets the kept tail first (or the lines after its cursor), then new lines as they come,
and its stream ends when the log is closed. Each job keeps at most `tail_lines` lines and
`tail_bytes` of text, and the hub keeps the tails of at most `max_jobs` jobs and `total_bytes`
of text in all: past those it drops the longest-finished jobs' tails first, then the oldest
lines of the job that is writing (and, once it is down to one line, of the oldest job). The whole output stays in the job's files; watchers that had
not read the dropped lines are told (`LogLagging`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

from jobgate.errors import JobgateError

Channel = Literal["stdout", "stderr"]

# A longer run of output without a newline is passed on in pieces of this size (the output
# files), and a longer line reported by a provider is refused.
MAX_LINE_BYTES = 16 * 1024
# What a kept line costs besides its text (the LogLine and its strings' headers), so that a
# flood of empty lines is bounded too.
LINE_OVERHEAD_BYTES = 160


def text_bytes(text: str) -> int:
    """The UTF-8 size of `text` (its length, for ASCII, without encoding it)."""
    return len(text) if text.isascii() else len(text.encode())


def _size(line: LogLine) -> int:
    return (
        LINE_OVERHEAD_BYTES
        + (0 if line.stdout is None else text_bytes(line.stdout))
        + (0 if line.stderr is None else text_bytes(line.stderr))
    )


class LogLagging(JobgateError):
    """A watcher fell so far behind that lines it has not read left the kept tail."""

    code = "LAGGING"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a job wrote. `seq` counts the job's lines from 1; it is the line's cursor."""

    seq: int
    job_id: str
    rank: int
    timestamp: int
    stdout: str | None = None
    stderr: str | None = None
    channel: str | None = None


@dataclass(eq=False)
class _JobLog:
    tail: deque[LogLine]
    next_seq: int = 1
    closed: bool = False
    size: int = 0  # bytes of the kept lines (`_size`)
    # One future per waiting follower, resolved on the next change. Not a shared Event: a
    # follower clearing it would hide a line from another that was busy sending.
    waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def changed(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()

    async def wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self.waiters:
                self.waiters.remove(waiter)


class JobLogHub:
    """In-process log tails and live log streams, per job."""

    def __init__(
        self,
        *,
        tail_lines: int = 1000,
        max_jobs: int = 1000,
        tail_bytes: int = 1 << 20,
        total_bytes: int = 128 << 20,
    ) -> None:
        self.tail_lines = tail_lines
        self.max_jobs = max_jobs
        self.tail_bytes = tail_bytes
        self.total_bytes = total_bytes
        self.size = 0  # bytes kept in all
        self._logs: OrderedDict[str, _JobLog] = OrderedDict()
        # Called with every appended line (an agent forwards them to its gateway).
        self.listeners: list[Callable[[LogLine], None]] = []

    def _log(self, job_id: str) -> _JobLog:
        log = self._logs.get(job_id)
        if log is None:
            log = self._logs[job_id] = _JobLog(deque())
            self._forget_old()
        return log

    def _forget_old(self) -> None:
        # Keep every open log; past the limit, drop the oldest closed ones.
        excess = len(self._logs) - self.max_jobs
        if excess <= 0:
            return
        for job_id in [j for j, log in self._logs.items() if log.closed][: max(excess, 0)]:
            self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        self.size -= self._logs.pop(job_id).size

    def _drop_oldest_line(self, log: _JobLog) -> None:
        dropped = _size(log.tail.popleft())
        log.size -= dropped
        self.size -= dropped

    def _keep_within_bounds(self, writing: _JobLog) -> None:
        while len(writing.tail) > self.tail_lines or (
            writing.size > self.tail_bytes and len(writing.tail) > 1
        ):
            self._drop_oldest_line(writing)
        while self.size > self.total_bytes:
            finished = next((j for j, log in self._logs.items() if log.closed), None)
            if finished is not None:
                self._forget(finished)
                continue
            if len(writing.tail) <= 1:
                # The writer is down to its newest line: the oldest job with more gives one.
                other = next((log for log in self._logs.values() if len(log.tail) > 1), None)
                if other is None:
                    return  # every open job keeps its newest line
                self._drop_oldest_line(other)
            else:
                self._drop_oldest_line(writing)

    def append(
        self, job_id: str, rank: int, channel: Channel, text: str, label: str | None = None
    ) -> None:
        """Record one line a job's replica wrote on its standard output or error.

        `label` names the channel when it is more specific than stdout/stderr.
        """
        log = self._log(job_id)
        line = LogLine(
            seq=log.next_seq,
            job_id=job_id,
            rank=rank,
            timestamp=time.time_ns() // 1_000_000,
            stdout=text if channel == "stdout" else None,
            stderr=text if channel == "stderr" else None,
            channel=label or channel,
        )
        log.next_seq += 1
        log.tail.append(line)
        size = _size(line)
        log.size += size
        self.size += size
        self._keep_within_bounds(log)
        log.changed()
        for listener in self.listeners:
            listener(line)

    def open(self, job_id: str) -> None:
        """Start (or restart) a job's log, so watchers wait for its lines."""
        log = self._log(job_id)
        log.closed = False

    def knows(self, job_id: str) -> bool:
        """Whether the hub holds lines (or an open log) of this job."""
        return job_id in self._logs

    def close(self, job_id: str) -> None:
        """The job ended: its watchers get what is left, then their streams end."""
        log = self._log(job_id)
        log.closed = True
        log.changed()
        self._logs.move_to_end(job_id)
        self._forget_old()

    async def follow(self, job_id: str, after: int = 0) -> AsyncIterator[LogLine]:
        """The kept lines after `after`, then new ones, until the job's log is closed.

        Raises `LogLagging` when lines after `after` are no longer kept.
        """
        log = self._log(job_id)
        seen = after
        first = True
        while True:
            # The first read may start at the kept tail; after that, a line that left the tail
            # unread would be lost, and a watcher is told rather than silently skipped ahead.
            if not first and log.tail and seen < log.tail[0].seq - 1:
                raise LogLagging("log lines were dropped before this watcher read them")
            first = False
            pending = [line for line in log.tail if line.seq > seen]
            for line in pending:
                yield line
                seen = line.seq
            if pending:
                continue  # lines may have come while these were being sent: look again
            if log.closed:
                return
            await log.wait()
