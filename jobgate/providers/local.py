"""`LocalProvider`: runs each job on this host, under a supervisor process of its own.

Every job gets a folder under the data folder. `submit` claims it (the `given` file: from then on
this provider has the job, whatever restarts). When a slot is free the job's supervisor
(`jobgate.providers.supervisor`) starts its replicas, each in its own process group with
`stdout-<rank>.log` and `stderr-<rank>.log` in the folder, and records how they ended. Commands
are argument lists with parameters substituted into single arguments; no shell sees user text.

The supervisor does not belong to the gateway: a gateway (or agent) that stops or is killed leaves
its jobs running, and the next one follows them again from their folders, or reports how they
ended meanwhile. Time limits are the gateway's to enforce: a job whose allocation ran out while
no gateway watched expires when one is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobgate.domain.catalog import Product, render_command
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.domain.values import ParameterValue, SimpleDuration
from jobgate.errors import ProviderError
from jobgate.providers import supervisor
from jobgate.providers.background import (
    TaskSet,
    report_until_stored,
    state_change,
    until_available,
)
from jobgate.providers.base import ProviderContext
from jobgate.providers.interactive import (
    BRIDGE,
    BRIDGE_IN_SANDBOX,
    SANDBOX_PYTHON,
    InteractiveReplicas,
)
from jobgate.providers.output import OutputTail
from jobgate.providers.sandbox import JOB_PATH, Bubblewrap, job_environment
from jobgate.providers.supervisor import EXIT, LAUNCH, LOCK, PROCESSES, STOP, SUPERVISOR
from jobgate.providers.workspace import (
    DEFAULT_LAYOUT,
    OutsideWorkspace,
    WorkspaceLayout,
    Workspaces,
)
from jobgate.sessions.address import AddressFiles, Upstream
from jobgate.unix import Account, users_account

log = logging.getLogger(__name__)

GIVEN = "given"  # the job was handed to this provider


class _Folder(enum.Enum):
    """What taking a job found in its folder."""

    PREPARED = "prepared"  # made now, with its GIVEN marker
    GIVEN_BEFORE = "given before"  # a repeat: this provider has (or had) the job


WORK = "work"  # the job's own working folder inside its folder
# How often a running job's output files and records are looked at.
FOLLOW_SECONDS = 0.2
CANCELLED = "The job was cancelled by its user"
NO_PYTHON_FOR_THE_BRIDGE = (
    f"Refused: sessions of local jobs go through a bridge that runs on {SANDBOX_PYTHON}, "
    "which is not installed (Debian: python3)"
)


@dataclass(eq=False)
class _LocalJob:
    job: Job
    allocation: SimpleDuration | None
    deadline: float | None = None  # wall-clock time the allocation runs out
    launched: bool = False  # its supervisor was started
    cancelled: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class LocalProvider:
    """Jobs on this host, with time limits, cancel and extend, that survive restarts."""

    kind = "local"

    def __init__(
        self,
        provider_id: str,
        products: list[Product],
        *,
        max_concurrent_jobs: int = 64,
        cancel_grace_seconds: float = 5.0,
        sandbox: Bubblewrap | None = None,
        account: Account | None = None,
        layout: WorkspaceLayout = DEFAULT_LAYOUT,
    ) -> None:
        self.id = provider_id
        self.products = products
        self._sandbox = sandbox
        self._account = account
        self._layout = layout
        self._workspaces: Workspaces | None = None
        # Replicas (processes), not jobs: one job of 1,000 replicas is 1,000 processes.
        self._max_running = max_concurrent_jobs
        self._running = 0  # replicas of jobs with a supervisor, started here or found running
        self._slot_freed = asyncio.Condition()
        self._grace = cancel_grace_seconds
        self._jobs: dict[str, _LocalJob] = {}
        # Jobs whose folders are being made: neither a concurrent submit nor the restart scan
        # takes them too.
        self._taking: set[str] = set()
        self._tasks = TaskSet()
        self._context: ProviderContext | None = None

    @property
    def online(self) -> bool:
        return True

    @property
    def max_replicas(self) -> int:
        return self._max_running  # a bigger job could never have all its replicas started

    @property
    def workspaces(self) -> Workspaces:
        assert self._workspaces is not None, "start() sets the workspaces"
        return self._workspaces

    @property
    def root(self) -> Path:
        assert self._context is not None, "start() sets the context"
        return self._context.data_dir / "local" / self.id

    def workdir(self, job_id: str) -> Path:
        """The job's working folder, where its output files are."""
        return self.root / job_id

    async def start(self, context: ProviderContext) -> None:
        self._context = context
        self._workspaces = self._layout.workspaces(context.data_dir)
        if self._sandbox is not None:
            # The data folder holds every job's records, the store and often the config.
            self._sandbox = self._sandbox.hiding(context.data_dir)
        else:
            log.warning(
                'provider %s runs jobs without a sandbox (sandbox = "none"): they can read '
                "whatever %s can, including the gateway's config and data",
                self.id,
                "its account" if self._account is None else f"account '{self._account.name}'",
            )
        self._tasks.spawn(self._follow_after_restart())

    async def stop(self) -> None:
        """Stop following; the jobs' supervisors run on, for the next start to follow."""
        await self._tasks.cancel_all()

    async def submit(self, jobs: Sequence[Job]) -> None:
        """Take the jobs; one this provider was given before (a repeat after a crash) is
        followed from its folder, never started twice. Their folders are made in one hop to a
        thread: a bulk submit of 1,000 jobs is 3,000 file system calls, which would otherwise
        hold the event loop (and every subscriber) for a tenth of a second."""
        new = [job for job in jobs if job.id not in self._jobs and job.id not in self._taking]
        self._taking.update(job.id for job in new)  # a concurrent submit of them skips them
        try:
            prepared = await asyncio.to_thread(self._prepare_folders, new)
        finally:
            self._taking.difference_update(job.id for job in new)
        for job, outcome in zip(new, prepared, strict=True):
            if isinstance(outcome, OSError):
                await self._report(
                    job.id,
                    JobState.FAILURE,
                    f"Could not prepare the job folder: {_reason(outcome)}",
                )
            elif outcome is _Folder.GIVEN_BEFORE:
                self._follow_again(job)
            else:
                local = _LocalJob(job, job.status.time_allocation)
                self._jobs[job.id] = local
                self._tasks.spawn(self._run(local))

    def _prepare_folders(self, jobs: Sequence[Job]) -> list[OSError | _Folder]:
        """For each job, what its folder holds now, or the error that kept it from being made."""
        outcomes: list[OSError | _Folder] = []
        for job in jobs:
            folder = self.workdir(job.id)
            if (folder / GIVEN).exists():
                outcomes.append(_Folder.GIVEN_BEFORE)
                continue
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / GIVEN).touch()
            except OSError as error:
                outcomes.append(error)
            else:
                outcomes.append(_Folder.PREPARED)
        return outcomes

    async def cancel(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            local = self._jobs.get(job.id)
            if local is None:
                # Not running here (it already ended): settle it.
                await self._report(job.id, JobState.SUCCESS, "The job was cancelled")
                continue
            local.cancelled = True
            if local.launched:
                local.changed.set()  # its follower stops the supervisor and reports
            else:
                # Waiting for a slot: settle it now; `_run` will not start it.
                await self._report(job.id, JobState.SUCCESS, CANCELLED)

    async def extend(self, requests: Sequence[tuple[Job, SimpleDuration]]) -> None:
        for job, requested in requests:
            local = self._jobs.get(job.id)
            if local is None:
                raise ProviderError(f"job {job.id} is not running on provider {self.id}")
            local.allocation = (local.allocation or SimpleDuration()) + requested
            if local.deadline is not None:
                local.deadline += requested.total_seconds
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
        """Jobs this provider was never given (or whose folder is gone): nothing runs them."""
        return [
            job
            for job in jobs
            if job.id not in self._jobs and not (self.workdir(job.id) / GIVEN).exists()
        ]

    async def backfill_logs(self, job: Job) -> None:
        """The tail of each output file of an ended job, replica by replica."""
        assert self._context is not None
        tail = OutputTail(self.workdir(job.id), job.id, job.specification.replicas)
        tail.read_last(self._context.logs)
        self._context.logs.close(job.id)

    # --- running ------------------------------------------------------------------------------

    async def _run(self, local: _LocalJob) -> None:
        """Wait for a slot, start the supervisor, follow the job to its end."""
        job = local.job
        # Submit refuses bigger jobs; one given under a larger limit before a restart still
        # runs, alone.
        slots = min(job.specification.replicas, self._max_running)
        try:
            await self._claim_slots(slots)
            try:
                if local.cancelled:
                    return
                child = await self._launch(local)
                if child is not None:
                    await self._follow(local, child)
            finally:
                await self._release_slots(slots)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the local provider failed while running job %s", job.id)
            await self._report(job.id, JobState.FAILURE, "The local provider failed internally")
        finally:
            self._jobs.pop(job.id, None)

    async def _claim_slots(self, replicas: int) -> None:
        async with self._slot_freed:
            await self._slot_freed.wait_for(lambda: self._running + replicas <= self._max_running)
            self._running += replicas

    async def _release_slots(self, replicas: int) -> None:
        async with self._slot_freed:
            self._running -= replicas
            self._slot_freed.notify_all()  # a freed slot may be what a smaller job waits for

    async def _launch(self, local: _LocalJob) -> int | None:
        """Start the job's supervisor: its pid, or None when the job could not be started
        (reported)."""
        assert self._context is not None
        job = local.job
        spec = job.specification
        app = self._context.catalog.application(spec.application)
        if app is None:
            await self._report(job.id, JobState.FAILURE, "The application is no longer offered")
            return None
        folder = self.workdir(job.id)
        try:
            resolved = self.workspaces.resolved_paths(job)
            given = Workspaces.given_parameters(job, resolved)
            mounts = Workspaces.mounts(job, resolved)
            workspace = self.workspaces.root(job.owner)
        except OutsideWorkspace as error:
            await self._report(job.id, JobState.FAILURE, f"Refused: {error.message}")
            return None
        try:
            own = users_account(job.unix_user)
        except ProviderError as error:
            await self._report(job.id, JobState.FAILURE, f"Refused: {error.message}")
            return None
        account = own or self._account
        argv = render_command(app.command, given)
        work = folder / WORK
        product = self._context.catalog.product(spec.product)
        network = product is not None and product.network
        sandbox = self._sandbox
        interactive = InteractiveReplicas.plan(
            app.interactive,
            spec.replicas,
            sandboxed=sandbox is not None,
            network=network,
            terminal=product is not None and product.support.terminal,
        )
        if interactive is not None and interactive.bridged and not SANDBOX_PYTHON.exists():
            await self._report(job.id, JobState.FAILURE, NO_PYTHON_FOR_THE_BRIDGE)
            return None

        def confined(argv: list[str]) -> list[str]:
            if sandbox is None:
                return argv
            bridged = interactive is not None and interactive.bridged
            bridge = [(BRIDGE, BRIDGE_IN_SANDBOX)] if bridged else []
            return sandbox.command(
                argv,
                job_folder=work,
                workspace=workspace,
                mounts=mounts,
                network=network,
                account=own,
                files=bridge,
            )

        launch: dict[str, Any] = {
            "argv": confined(argv),
            "program": argv[0] if argv else "",
            "sandboxed": sandbox is not None,
            "cwd": str(work),
            "replicas": spec.replicas,
            "grace": self._grace,
            "env": job_environment(
                job_id=job.id, replicas=spec.replicas, workspace=workspace, job_folder=work
            ),
            "account": None if account is None else _launch_account(account, own is not None),
        }
        if interactive is not None:
            launch["interactive"] = interactive.record()
            launch["ranks"] = [
                {
                    "argv": confined(_replica_argv(app.command, given, interactive, rank)),
                    "env": interactive.environment(job.id, rank),
                }
                for rank in range(spec.replicas)
            ]
        try:
            # Everything the job folder must hold before anything starts: a full disk is a
            # FAILURE with its cause, never a job running untracked.
            self.workspaces.prepare(job.owner, None if account is None else account.uid)
            lock = _prepare_folder(folder, spec.replicas, launch, account)
        except OSError as error:
            await self._report(
                job.id, JobState.FAILURE, f"Could not prepare the job folder: {_reason(error)}"
            )
            return None
        try:
            if local.cancelled:  # cancelled while the folder was prepared: it never starts
                return None
            child = _spawn_supervisor(folder, lock)
        finally:
            os.close(lock)
        local.launched = True
        return child

    async def _follow(self, local: _LocalJob, child: int | None = None) -> None:
        """Follow a job's supervisor until it ends, then report how the job ended."""
        assert self._context is not None
        job = local.job
        folder = self.workdir(job.id)
        tail = OutputTail(folder, job.id, job.specification.replicas)
        self._context.logs.open(job.id)
        stopping: str | None = None
        started = False
        running_reported = job.status.state is JobState.RUNNING
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FOLLOW_SECONDS):
                    await local.changed.wait()
            local.changed.clear()
            if child is not None:
                _reap(child)
            tail.read_new(self._context.logs)
            ended = supervisor.read_record(folder / EXIT)
            if ended is None and not supervisor.lock_is_held(folder):
                ended = supervisor.read_record(folder / EXIT)  # written just before it ended
                if ended is None:
                    ended = {"died": True}
            started = started or (folder / PROCESSES).exists()
            if started and not running_reported:  # also for a job that ended within a round
                running_reported = True
                count = job.specification.replicas
                await self._report(
                    job.id,
                    JobState.RUNNING,
                    f"Running on this host ({count} process{'es' if count > 1 else ''})",
                )
            if ended is not None:
                break
            if started and local.deadline is None and local.allocation is not None:
                began = (folder / PROCESSES).stat().st_mtime
                local.deadline = began + local.allocation.total_seconds
            if stopping is None:
                if local.cancelled:
                    stopping = "cancelled"
                elif local.deadline is not None and time.time() >= local.deadline:
                    stopping = "expired"
                if stopping is not None:
                    supervisor.write_record(folder / STOP, {"reason": stopping})
                    _signal_supervisor(folder, signal.SIGTERM)
        if child is not None:
            # It ends right after its record; collected so no zombie is left (in a thread: the
            # wait is short but blocking).
            await asyncio.to_thread(_wait_for_exit, child)
        tail.read_new(self._context.logs, final=True)
        self._context.logs.close(job.id)
        await self._report_end(local, ended, supervisor.read_record(folder / STOP))

    async def _report_end(
        self, local: _LocalJob, ended: dict[str, Any], stop: dict[str, Any] | None
    ) -> None:
        job_id = local.job.id
        reason = None if stop is None else stop.get("reason")
        if "error" in ended:
            await self._report(job_id, JobState.FAILURE, str(ended["error"]))
        elif ended.get("died"):
            _kill_leftovers(self.workdir(job_id) / PROCESSES)
            await self._report(
                job_id,
                JobState.FAILURE,
                "The job's supervisor process ended without recording how the job ended",
            )
        elif reason == "cancelled":
            await self._report(job_id, JobState.SUCCESS, CANCELLED)
        elif reason == "expired":
            allocation = _describe(local.allocation or SimpleDuration())
            await self._report(
                job_id, JobState.EXPIRED, f"The time allocation of {allocation} ran out"
            )
        else:
            codes = ended["codes"]
            if len(codes) == 1:
                message = f"The program exited with code {codes[0]}"
            else:
                message = "The programs exited with codes " + ", ".join(map(str, codes))
            await self._report(job_id, JobState.SUCCESS, message)

    # --- interactive sessions -------------------------------------------------------------------

    async def upstream(self, job: Job, rank: int, kind: SessionType) -> Upstream | None:
        """Where replica `rank` of a job running here serves `kind` (see
        `jobgate.providers.interactive`); None where it does not, or not yet."""
        folder = self.workdir(job.id)
        launch = supervisor.read_record(folder / LAUNCH)
        replicas = (
            None if launch is None else InteractiveReplicas.of_record(launch.get("interactive"))
        )
        found = None if replicas is None else replicas.upstream(folder / WORK, rank, kind)
        if found is not None:
            return found
        return await AddressFiles(lambda _job: folder / WORK).upstream(job, rank, kind)

    # --- after a restart ------------------------------------------------------------------------

    async def _follow_after_restart(self) -> None:
        """Follow every job a previous gateway (or agent) was given, from its folder."""
        assert self._context is not None
        jobs = await until_available(self._context.active_jobs, self.id, "list its active jobs")
        for job in jobs:
            # A job being taken has its folder made already, by `submit`, which starts it.
            taken_now = job.id in self._jobs or job.id in self._taking
            if not taken_now and (self.workdir(job.id) / GIVEN).exists():
                self._follow_again(job)

    def _follow_again(self, job: Job) -> None:
        """A job given before this process started: follow its supervisor, report how it
        ended meanwhile, or start it if it never started."""
        folder = self.workdir(job.id)
        local = _LocalJob(job, job.status.time_allocation)
        self._jobs[job.id] = local
        if not (folder / SUPERVISOR).exists() and not supervisor.lock_is_held(folder):
            self._tasks.spawn(self._run(local))  # given, never started
            return
        local.launched = True
        self._tasks.spawn(self._follow_found(local))

    async def _follow_found(self, local: _LocalJob) -> None:
        async with self._slot_freed:
            self._running += local.job.specification.replicas  # it runs, whatever the limit
        try:
            await self._follow(local)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the local provider failed while following job %s", local.job.id)
        finally:
            await self._release_slots(local.job.specification.replicas)
            self._jobs.pop(local.job.id, None)

    # --- reporting ------------------------------------------------------------------------------

    async def _report(self, job_id: str, state: JobState, status: str) -> None:
        await self._send(state_change(job_id, state, status))

    async def _send(self, update: UpdateRequest) -> None:
        assert self._context is not None
        await report_until_stored(self._context, self.id, [update])


def _describe(duration: SimpleDuration) -> str:
    return f"{duration.hours:02d}:{duration.minutes:02d}:{duration.seconds:02d}"


def _launch_account(account: Account, users_own: bool) -> dict[str, Any]:
    """The account as the supervisor takes it: a user's own keeps its groups."""
    groups = os.getgrouplist(account.name, account.gid) if users_own else []
    return {"uid": account.uid, "gid": account.gid, "groups": groups}


def _reason(error: OSError) -> str:
    """What went wrong, for people: the system's words ("No space left on device")."""
    return error.strerror or str(error)


def _replica_argv(
    command: Sequence[str],
    given: dict[str, ParameterValue],
    interactive: InteractiveReplicas,
    rank: int,
) -> list[str]:
    argv = render_command(command, given, interactive.port(rank))
    return interactive.replica_argv(rank, argv)


def _prepare_folder(
    folder: Path, replicas: int, launch: dict[str, Any], account: Account | None
) -> int:
    """The job folder ready for its supervisor: output files created, the job's working folder
    made (its account's: the job may write there and nowhere else of the folder, so it cannot
    forge its supervisor's records), the launch record written, and the folder's lock taken
    (its descriptor is returned, to hand over). Raises `OSError` (e.g. no space left) before
    anything starts."""
    work = folder / WORK
    work.mkdir(exist_ok=True)
    if account is not None:
        os.chown(work, account.uid, account.gid)
    for rank in range(replicas):
        for channel in ("stdout", "stderr"):
            (folder / f"{channel}-{rank}.log").touch()
    supervisor.write_record(folder / LAUNCH, launch)
    lock = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        raise
    return lock


def _spawn_supervisor(folder: Path, lock: int) -> int:
    """Start a job's supervisor in a session of its own, holding the folder's `lock`; its pid.

    Not asyncio's subprocess (its transport kills a child still running when it is closed or
    collected) nor `subprocess.Popen` (which warns when collected while its child runs): the
    supervisor is meant to outlive this process. Called on the event loop's thread, so no other
    spawn inherits the lock while it is inheritable here.
    """
    devnull = os.devnull
    os.set_inheritable(lock, True)
    try:
        return os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", supervisor.__file__, str(folder)],
            {"PATH": JOB_PATH, "LANG": "C.UTF-8"},  # nothing of the gateway's own
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
            ],
            setsid=True,  # signals to this process's group do not reach it
        )
    finally:
        os.set_inheritable(lock, False)


def _reap(pid: int) -> None:
    """Collect our own supervisor's exit status if it has ended (no zombie is left)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _wait_for_exit(pid: int) -> None:
    """Wait for our own supervisor to end and collect its exit status."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _signal_supervisor(folder: Path, signum: int) -> None:
    record = supervisor.read_record(folder / SUPERVISOR)
    if record is not None:  # else not started far enough to say its pid: it reads STOP itself
        _signal_if_same(record, signum, group=False)


def _signal_if_same(entry: dict[str, Any], signum: int, *, group: bool) -> None:
    """Signal a recorded process (or its group) if it is still the one recorded: same pid and
    same kernel start time, never a later process that reuses the pid."""
    pid = entry["pid"]
    if entry["started"] is not None and supervisor.process_start_time(pid) == entry["started"]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            (os.killpg if group else os.kill)(pid, signum)


def _kill_leftovers(marker: Path) -> None:
    """Kill the process groups of replicas whose supervisor died, if still the same ones."""
    entries = supervisor.read_record(marker)
    for entry in entries if isinstance(entries, list) else []:
        _signal_if_same(entry, signal.SIGKILL, group=True)
