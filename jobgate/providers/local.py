"""`LocalProvider`: runs each job as subprocesses on this host, one per replica.

Every job gets a working folder under the data folder, with `stdout-<rank>.log` and
`stderr-<rank>.log` per replica. Commands are argument lists with parameters substituted into
single arguments; no shell sees user text. Each replica runs in its own process group so a cancel
or an expiry stops everything the command started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from jobgate.domain.catalog import Product, render_command
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.domain.values import SimpleDuration
from jobgate.errors import ProviderError
from jobgate.events.logs import Channel
from jobgate.providers.background import (
    TaskSet,
    report_until_stored,
    state_change,
    until_available,
)
from jobgate.providers.base import ProviderContext
from jobgate.providers.output import OutputTail

log = logging.getLogger(__name__)

MARKER = "processes.json"
# A longer run of output without a newline is passed on in pieces of this size.
MAX_LINE_BYTES = 16 * 1024
READ_CHUNK = 64 * 1024
# How long output may keep flowing after the processes ended (a pipe held by a leftover child).
DRAIN_SECONDS = 2.0


@dataclass(eq=False)
class _LocalJob:
    job: Job
    allocation: SimpleDuration | None
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    deadline: float | None = None
    started: bool = False  # every replica runs and RUNNING was reported
    cancelled: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class LocalProvider:
    """Subprocesses on this host, with time limits, cancel and extend."""

    kind = "local"

    def __init__(
        self,
        provider_id: str,
        products: list[Product],
        *,
        max_concurrent_jobs: int = 64,
        cancel_grace_seconds: float = 5.0,
    ) -> None:
        self.id = provider_id
        self.products = products
        self._slots = asyncio.Semaphore(max_concurrent_jobs)
        self._grace = cancel_grace_seconds
        self._jobs: dict[str, _LocalJob] = {}
        self._tasks = TaskSet()
        self._context: ProviderContext | None = None

    @property
    def online(self) -> bool:
        return True

    @property
    def root(self) -> Path:
        assert self._context is not None, "start() sets the context"
        return self._context.data_dir / "local" / self.id

    def workdir(self, job_id: str) -> Path:
        """The job's working folder, where its output files are."""
        return self.root / job_id

    async def start(self, context: ProviderContext) -> None:
        self._context = context
        self._tasks.spawn(self._settle_after_restart())

    async def stop(self) -> None:
        for local in list(self._jobs.values()):
            _signal_groups(local.processes, signal.SIGKILL)
        await self._tasks.cancel_all()

    async def submit(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self._jobs[job.id] = _LocalJob(job, job.status.time_allocation)
            self._tasks.spawn(self._run(self._jobs[job.id]))

    async def cancel(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            local = self._jobs.get(job.id)
            if local is None:
                # Not running here (the gateway restarted, or it already ended): settle it.
                await self._report(job.id, JobState.SUCCESS, "The job was cancelled")
                continue
            local.cancelled = True
            if local.started:
                local.changed.set()  # the supervisor stops the processes and reports
            else:
                # Waiting for a slot, or starting: settle it now; `_run` will not start it.
                await self._report(job.id, JobState.SUCCESS, "The job was cancelled by its user")

    async def extend(self, requests: Sequence[tuple[Job, SimpleDuration]]) -> None:
        for job, requested in requests:
            local = self._jobs.get(job.id)
            if local is None:
                raise ProviderError(f"job {job.id} is not running on provider {self.id}")
            base = local.allocation or SimpleDuration()
            local.allocation = base + requested
            if local.deadline is not None:
                local.deadline += requested.total_seconds
            elif local.processes:
                loop = asyncio.get_running_loop()
                local.deadline = loop.time() + requested.total_seconds
            local.changed.set()
            await self._send(
                UpdateRequest(
                    job.id,
                    status=f"The time allocation was extended by {_describe(requested)}",
                    new_time_allocation=local.allocation,
                )
            )

    async def suspend(self, jobs: Sequence[Job]) -> None:
        raise ProviderError("the local provider cannot suspend jobs")

    async def resume(self, jobs: Sequence[Job]) -> None:
        raise ProviderError("the local provider cannot resume jobs")

    def tracks(self, job_id: str) -> bool:
        """Whether this job runs here or waits for a slot."""
        return job_id in self._jobs

    async def verify(self, jobs: Sequence[Job]) -> list[Job]:
        """Jobs this gateway's processes do not run (and that are not waiting for a slot)."""
        return [job for job in jobs if job.id not in self._jobs]

    # --- running ------------------------------------------------------------------------------

    async def _run(self, local: _LocalJob) -> None:
        job = local.job
        try:
            async with self._slots:
                if local.cancelled:
                    return
                if await self._launch(local):
                    await self._supervise(local)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the local provider failed while running job %s", job.id)
            await self._report(job.id, JobState.FAILURE, "The local provider failed internally")
        finally:
            self._jobs.pop(job.id, None)
            for pump in local.pumps:
                pump.cancel()
            assert self._context is not None
            self._context.logs.close(job.id)

    async def _launch(self, local: _LocalJob) -> bool:
        assert self._context is not None
        job = local.job
        spec = job.specification
        app = self._context.catalog.application(spec.application)
        if app is None:
            await self._report(job.id, JobState.FAILURE, "The application is no longer offered")
            return False
        argv = render_command(app.command, dict(spec.parameters))
        workdir = self.workdir(job.id)
        try:
            # Everything the job folder must hold, before any process starts: a full disk is
            # a FAILURE with its cause, never a job running untracked.
            copies = _prepare_folder(workdir, spec.replicas)
        except OSError as error:
            await self._report(
                job.id, JobState.FAILURE, f"Could not prepare the job folder: {_reason(error)}"
            )
            return False
        self._context.logs.open(job.id)
        try:
            for rank in range(spec.replicas):
                env = {
                    **os.environ,
                    "JOBGATE_JOB_ID": job.id,
                    "JOBGATE_RANK": str(rank),
                    "JOBGATE_REPLICAS": str(spec.replicas),
                }
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=workdir,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=env,
                    start_new_session=True,
                )
                local.processes.append(process)
                assert process.stdout is not None
                assert process.stderr is not None
                streams: tuple[tuple[Channel, asyncio.StreamReader], ...] = (
                    ("stdout", process.stdout),
                    ("stderr", process.stderr),
                )
                for channel, stream in streams:
                    pump = self._pump(job.id, rank, channel, stream, copies.pop((rank, channel)))
                    local.pumps.append(asyncio.create_task(pump))
        except OSError as error:
            await self._abandon(local, copies)
            await self._report(
                job.id, JobState.FAILURE, f"Could not start '{argv[0]}': {_reason(error)}"
            )
            return False
        try:
            _write_marker(workdir, local.processes)
        except OSError as error:
            # Untracked after a restart without it: stop the processes rather than lose them.
            await self._abandon(local, copies)
            await self._report(
                job.id, JobState.FAILURE, f"Could not record the job's processes: {_reason(error)}"
            )
            return False
        if local.cancelled:  # cancelled while its processes were starting
            await self._terminate(local.processes)
            return False
        if local.allocation is not None:
            local.deadline = asyncio.get_running_loop().time() + local.allocation.total_seconds
        count = len(local.processes)
        await self._report(
            job.id,
            JobState.RUNNING,
            f"Running on this host ({count} process{'es' if count > 1 else ''})",
        )
        local.started = True
        if local.cancelled:  # cancelled while RUNNING was being reported
            local.changed.set()
        return True

    async def _supervise(self, local: _LocalJob) -> None:
        loop = asyncio.get_running_loop()
        exited = asyncio.ensure_future(asyncio.gather(*(p.wait() for p in local.processes)))
        try:
            while True:
                timeout = None if local.deadline is None else max(0.0, local.deadline - loop.time())
                changed = asyncio.ensure_future(local.changed.wait())
                waiting: set[asyncio.Future[Any]] = {exited, changed}
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                changed.cancel()
                if exited in done:
                    await self._drain(local)
                    break
                local.changed.clear()
                if local.cancelled:
                    await self._terminate(local.processes)
                    await self._drain(local)
                    await self._report(
                        local.job.id, JobState.SUCCESS, "The job was cancelled by its user"
                    )
                    return
                if local.deadline is not None and loop.time() >= local.deadline:
                    await self._terminate(local.processes)
                    await self._drain(local)
                    allocation = _describe(local.allocation or SimpleDuration())
                    await self._report(
                        local.job.id,
                        JobState.EXPIRED,
                        f"The time allocation of {allocation} ran out",
                    )
                    return
        finally:
            if not exited.done():
                exited.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await exited
        codes = [p.returncode for p in local.processes]
        if len(codes) == 1:
            message = f"The program exited with code {codes[0]}"
        else:
            message = "The programs exited with codes " + ", ".join(map(str, codes))
        await self._report(local.job.id, JobState.SUCCESS, message)

    async def _abandon(self, local: _LocalJob, copies: dict[tuple[int, Channel], BinaryIO]) -> None:
        """Stop a launch half done: kill what started, and wait for it, so nothing runs on."""
        _signal_groups(local.processes, signal.SIGKILL)
        await asyncio.gather(*(p.wait() for p in local.processes))
        for pump in local.pumps:
            pump.cancel()
        for copy in copies.values():
            with contextlib.suppress(OSError):
                copy.close()

    async def _pump(
        self, job_id: str, rank: int, channel: Channel, stream: asyncio.StreamReader, copy: BinaryIO
    ) -> None:
        """Copy one output stream to its file and, line by line, to the log hub. A file that
        can no longer be written (a full disk) stops being copied; the hub still gets it all."""
        assert self._context is not None
        logs = self._context.logs

        def emit(raw: bytes) -> None:
            logs.append(
                job_id, rank, channel, raw.decode("utf-8", errors="replace").removesuffix("\r")
            )

        # Writes to a local file are short; they do not hold up the loop noticeably.
        with copy:
            pending = b""
            copying = True
            while chunk := await stream.read(READ_CHUNK):
                if copying:
                    try:
                        copy.write(chunk)
                    except OSError as error:
                        copying = False
                        log.warning(
                            "job %s: cannot write %s-%s.log (%s); its output goes on to jobLogs only",
                            job_id,
                            channel,
                            rank,
                            _reason(error),
                        )
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    emit(raw)
                while len(pending) > MAX_LINE_BYTES:
                    emit(pending[:MAX_LINE_BYTES])
                    pending = pending[MAX_LINE_BYTES:]
            if pending:
                emit(pending)

    async def _drain(self, local: _LocalJob) -> None:
        """Wait until the output the processes wrote has been read, within reason."""
        if local.pumps:
            await asyncio.wait(local.pumps, timeout=DRAIN_SECONDS)

    async def backfill_logs(self, job: Job) -> None:
        """The tail of each output file of an ended job, replica by replica."""
        assert self._context is not None
        tail = OutputTail(self.workdir(job.id), job.id, job.specification.replicas)
        tail.read_last(self._context.logs)
        self._context.logs.close(job.id)

    async def _terminate(self, processes: list[asyncio.subprocess.Process]) -> None:
        """SIGTERM each process group, then SIGKILL what is left after the grace period."""
        _signal_groups(processes, signal.SIGTERM)
        waiting = asyncio.gather(*(p.wait() for p in processes))
        try:
            async with asyncio.timeout(self._grace):
                await waiting
        except TimeoutError:
            _signal_groups(processes, signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in processes))

    # --- after a restart ------------------------------------------------------------------------

    async def _settle_after_restart(self) -> None:
        assert self._context is not None
        jobs = await until_available(self._context.active_jobs, self.id, "list its active jobs")
        for job in jobs:
            if job.id in self._jobs:
                continue
            marker = self.workdir(job.id) / MARKER
            if job.status.state is JobState.IN_QUEUE and not _marked_processes(marker):
                # Stored but never started before the restart: start it now.
                await self.submit([job])
                continue
            _kill_leftovers(marker)
            await self._report(
                job.id,
                JobState.FAILURE,
                "The provider restarted (gateway or agent) and the job's local process no longer exists",
            )

    # --- reporting ------------------------------------------------------------------------------

    async def _report(self, job_id: str, state: JobState, status: str) -> None:
        await self._send(state_change(job_id, state, status))

    async def _send(self, update: UpdateRequest) -> None:
        assert self._context is not None
        await report_until_stored(self._context, self.id, [update])


def _describe(duration: SimpleDuration) -> str:
    return f"{duration.hours:02d}:{duration.minutes:02d}:{duration.seconds:02d}"


def _signal_groups(processes: Sequence[asyncio.subprocess.Process], signum: int) -> None:
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signum)


def _process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`, to tell our process from a later one with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _reason(error: OSError) -> str:
    """What went wrong, for people: the system's words ("No space left on device")."""
    return error.strerror or str(error)


def _prepare_folder(workdir: Path, replicas: int) -> dict[tuple[int, Channel], BinaryIO]:
    """The job folder with its output files open (unbuffered) and an empty process marker
    written: `OSError` (e.g. no space left) before any process is started."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("[]")
    copies: dict[tuple[int, Channel], BinaryIO] = {}
    try:
        for rank in range(replicas):
            for channel in ("stdout", "stderr"):
                copies[(rank, channel)] = open(workdir / f"{channel}-{rank}.log", "wb", buffering=0)  # noqa: SIM115
    except OSError:
        for copy in copies.values():
            copy.close()
        raise
    return copies


def _write_marker(workdir: Path, processes: Sequence[asyncio.subprocess.Process]) -> None:
    entries = [{"pid": p.pid, "started": _process_start_time(p.pid)} for p in processes]
    (workdir / MARKER).write_text(json.dumps(entries))


def _marked_processes(marker: Path) -> list[dict[str, Any]]:
    """The processes a job folder's marker records (none if it is absent, empty or unreadable:
    a folder is prepared with an empty marker before any process starts)."""
    try:
        entries = json.loads(marker.read_text())
    except (OSError, ValueError):
        return []
    return entries if isinstance(entries, list) else []


def _kill_leftovers(marker: Path) -> None:
    """Kill process groups a previous gateway left running, if they are still the same ones."""
    for entry in _marked_processes(marker):
        pid = entry["pid"]
        if entry["started"] is not None and _process_start_time(pid) == entry["started"]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
