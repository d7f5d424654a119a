"""`SlurmProvider`: each job is a Slurm batch job; one `squeue` call follows all of them.

Submitting writes the job's batch script into its own folder under `workdir` and hands it to
`sbatch --parsable`; Slurm's job id becomes the job's `providerGeneratedId`, and the script's
`--comment` names the jobgate job, so a job submitted just before a crash is found again. A poll
loop reads every tracked job's state with one `squeue -h -t all` call, takes exit codes from
`scontrol -o show job`, and from `sacct -c` once slurmctld has forgotten a job. Output files are
tailed into the log hub while a job runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from jobgate.domain.catalog import Product, render_command
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.domain.values import SimpleDuration
from jobgate.errors import JobgateError, ProviderError, ProviderNotReady
from jobgate.providers.background import (
    TaskSet,
    report_until_stored,
    state_change,
    until_available,
)
from jobgate.providers.base import ProviderContext, ignore_command
from jobgate.providers.output import OutputTail
from jobgate.providers.sandbox import JOB_PATH
from jobgate.providers.slurm import commands
from jobgate.providers.slurm.commands import JobDetails, SlurmCommandError
from jobgate.providers.slurm.script import (
    ScriptOptions,
    batch_script,
    comment_for,
    time_limit_minutes,
)
from jobgate.providers.slurm.sessions import PORT, node_target, on_node, prepare_folder
from jobgate.providers.slurm.states import Translation, translate
from jobgate.providers.workspace import (
    DEFAULT_LAYOUT,
    OutsideWorkspace,
    WorkspaceLayout,
    Workspaces,
)
from jobgate.sessions.address import AddressFiles, Upstream
from jobgate.sessions.forwarder import Forwarders
from jobgate.unix import Account, users_account

log = logging.getLogger(__name__)

T = TypeVar("T")
# How long a submit waits for the adapter to find the jobs of a previous run in Slurm.
ATTACH_WAIT_SECONDS = 10.0


@dataclass(eq=False)
class _Tracked:
    job: Job
    slurm_id: str
    reported: JobState
    tail: OutputTail | None = None
    cancelled: bool = False
    # Bumped by suspend/resume: a poll that read Slurm before the action must not report a
    # state the action has already replaced.
    actions: int = 0


class SlurmProvider:
    """Jobs on a Slurm cluster, through sbatch, squeue, scontrol, scancel and sacct -c."""

    kind = "slurm"

    def __init__(
        self,
        provider_id: str,
        products: list[Product],
        *,
        partition: str | None = None,
        account: str | None = None,
        workdir: Path | None = None,
        poll_interval_seconds: float = 2.0,
        submit_concurrency: int = 8,
        layout: WorkspaceLayout = DEFAULT_LAYOUT,
    ) -> None:
        self.id = provider_id
        self.products = products
        self.options = ScriptOptions(partition=partition, account=account)
        self._workdir = workdir
        self._layout = layout
        self._workspaces: Workspaces | None = None
        self.poll_interval = poll_interval_seconds
        self._submit_slots = asyncio.Semaphore(submit_concurrency)
        self._tracked: dict[str, _Tracked] = {}  # by Slurm job id
        self._by_job: dict[str, str] = {}  # jobgate id -> Slurm id
        self._submitting: set[str] = set()  # sbatch is on its way
        # Set once the jobs a previous run left are found again in Slurm's queue: a submit
        # before that could sbatch a job Slurm already has.
        self._attached = asyncio.Event()
        self._cancel_when_submitted: set[str] = set()
        self._context: ProviderContext | None = None
        self._tasks = TaskSet()
        self._forwarders = Forwarders()  # to the web apps and desktops of its jobs
        self._poke = asyncio.Event()

    @property
    def online(self) -> bool:
        return True

    @property
    def max_replicas(self) -> None:
        return None  # Slurm refuses (or queues) what the cluster cannot take

    @property
    def workspaces(self) -> Workspaces:
        assert self._workspaces is not None, "start() sets the workspaces"
        return self._workspaces

    @property
    def root(self) -> Path:
        """Where job folders live: `workdir`, or the data folder's `slurm/<provider>`.

        On a real cluster this must be a file system the compute nodes share.
        """
        if self._workdir is not None:
            return self._workdir
        assert self._context is not None, "start() sets the context"
        return self._context.data_dir / "slurm" / self.id

    def job_folder(self, job_id: str) -> Path:
        return self.root / job_id

    # --- lifecycle ----------------------------------------------------------------------------

    async def _slurm(self, command: str, call: Awaitable[T]) -> T:
        """Run one of Slurm's commands (`call`), timed for the gateway's metrics."""
        observe = ignore_command if self._context is None else self._context.observe_command
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await call
        except JobgateError as error:
            outcome = error.code
            raise
        finally:
            observe(command, outcome, time.perf_counter() - started)

    async def start(self, context: ProviderContext) -> None:
        self._context = context
        self._workspaces = self._layout.workspaces(context.data_dir)
        self._tasks.spawn(self._reattach_then_poll())

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        await self._forwarders.close_all()

    # --- commands -----------------------------------------------------------------------------

    async def submit(self, jobs: Sequence[Job]) -> None:
        """sbatch every job (a few at a time); a job Slurm refuses becomes FAILURE. A job this
        adapter already has (a repeated hand-over) is not submitted again."""
        try:
            async with asyncio.timeout(ATTACH_WAIT_SECONDS):
                await self._attached.wait()
        except TimeoutError:
            raise ProviderNotReady(
                f"provider {self.id} is still reading Slurm's queue after its start"
            ) from None
        await self._sbatch_all([job for job in jobs if not self.tracks(job.id)])

    async def _sbatch_all(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self._submitting.add(job.id)
        try:
            results = await asyncio.gather(*(self._sbatch(job) for job in jobs))
        finally:
            for job in jobs:
                self._submitting.discard(job.id)
        updates = [update for update in results if update is not None]
        if updates:
            # Recording the ids is not needed to follow the jobs (the comment finds them after a
            # crash), so the caller does not wait for these writes.
            self._tasks.spawn(self._send(updates))
        self._poke.set()

    async def _sbatch(self, job: Job) -> UpdateRequest | None:
        assert self._context is not None
        app = self._context.catalog.application(job.specification.application)
        if app is None:
            return state_change(job.id, JobState.FAILURE, "The application is no longer offered")
        folder = self.job_folder(job.id)
        try:
            resolved = self.workspaces.resolved_paths(job)
            given = Workspaces.given_parameters(job, resolved)
            if app.interactive.any:  # its port is chosen on the node, by the bridge
                argv = on_node(
                    job, folder, app.interactive, render_command(app.command, given, PORT)
                )
            else:
                argv = render_command(app.command, given)
            workspace = self.workspaces.root(job.owner)
        except OutsideWorkspace as error:
            return state_change(job.id, JobState.FAILURE, f"Refused: {error.message}")
        try:
            account = users_account(job.unix_user)
            if account is not None:
                await asyncio.to_thread(_require_reachable, self.root)
        except ProviderError as error:
            return state_change(job.id, JobState.FAILURE, f"Refused: {error.message}")
        product = self._context.catalog.product(job.specification.product)
        script = batch_script(job, argv, folder, workspace, product, self.id, self.options)
        async with self._submit_slots:
            try:
                # In a thread: on a shared file system these are round trips, and while one job's
                # folder is written the other slots' sbatch calls go on.
                uid = None if account is None else account.uid
                await asyncio.to_thread(self.workspaces.prepare, job.owner, uid)
                await asyncio.to_thread(_write_script, folder, script, account)
                if app.interactive.any:
                    await asyncio.to_thread(prepare_folder, folder, account)
                slurm_id = await self._slurm(
                    "sbatch", commands.sbatch(folder / "job.sh", job.unix_user)
                )
            except (ProviderError, OSError) as error:
                reason = error.message if isinstance(error, JobgateError) else str(error)
                return state_change(job.id, JobState.FAILURE, f"Slurm refused the job: {reason}")
        self._track(job, slurm_id, JobState.IN_QUEUE)
        if job.id in self._cancel_when_submitted:
            self._cancel_when_submitted.discard(job.id)
            self._tracked[slurm_id].cancelled = True
            await self._slurm("scancel", commands.scancel([slurm_id], job.unix_user))
        return UpdateRequest(
            job.id,
            status=f"Submitted to Slurm as job {slurm_id}",
            provider_generated_id=slurm_id,
        )

    async def cancel(self, jobs: Sequence[Job]) -> None:
        """scancel each job as the account it runs as (one call per account); Slurm lets a
        user cancel their own jobs."""
        by_account: dict[str | None, list[str]] = {}
        for job in jobs:
            slurm_id = self._slurm_id(job)
            if slurm_id is None and job.id in self._submitting:
                self._cancel_when_submitted.add(job.id)
                continue
            if slurm_id is None:
                # Never reached Slurm: nothing runs, so it is settled here.
                await self._send([state_change(job.id, JobState.SUCCESS, "The job was cancelled")])
                continue
            if slurm_id in self._tracked:
                self._tracked[slurm_id].cancelled = True
            by_account.setdefault(job.unix_user, []).append(slurm_id)
        for account, slurm_ids in by_account.items():
            await self._slurm("scancel", commands.scancel(slurm_ids, account))
        if by_account:
            self._poke.set()

    async def extend(self, requests: Sequence[tuple[Job, SimpleDuration]]) -> None:
        for job, requested in requests:
            slurm_id = self._require_slurm_id(job)
            # An absolute limit, so a repeated command does not add the time twice.
            target = (job.status.time_allocation or SimpleDuration()) + requested
            minutes = time_limit_minutes(target)
            await self._slurm("scontrol update", commands.set_time_limit(slurm_id, minutes))
            await self._send(
                [
                    UpdateRequest(
                        job.id,
                        status=f"Slurm's time limit of job {slurm_id} is now {minutes} minutes",
                        new_time_allocation=target,
                    )
                ]
            )

    async def suspend(self, jobs: Sequence[Job]) -> None:
        await self._slurm(
            "scontrol suspend", commands.suspend([self._require_slurm_id(job) for job in jobs])
        )
        await self._report_now(jobs, JobState.SUSPENDED, "Suspended by its user", JobState.RUNNING)

    async def resume(self, jobs: Sequence[Job]) -> None:
        await self._slurm(
            "scontrol resume", commands.resume([self._require_slurm_id(job) for job in jobs])
        )
        await self._report_now(jobs, JobState.RUNNING, "Resumed by its user", JobState.SUSPENDED)

    async def _report_now(
        self, jobs: Sequence[Job], state: JobState, status: str, expected: JobState
    ) -> None:
        for job in jobs:
            tracked = self._tracked.get(self._slurm_id(job) or "")
            if tracked is not None:
                tracked.reported = state
                tracked.actions += 1
        await self._send(
            [
                UpdateRequest(job.id, state=state, status=status, expected_state=expected)
                for job in jobs
            ]
        )

    def tracks(self, job_id: str) -> bool:
        """Whether this job is in Slurm (as far as the adapter knows) or on its way there."""
        return job_id in self._by_job or job_id in self._submitting

    async def verify(self, jobs: Sequence[Job]) -> list[Job]:
        """The jobs Slurm no longer knows: not in its queue, not in its completion log."""
        candidates = [job for job in jobs if job.id not in self._submitting]
        with_ids = {job.id: self._slurm_id(job) for job in candidates}
        known = await self._slurm(
            "squeue", commands.squeue([sid for sid in with_ids.values() if sid is not None])
        )
        unknown: list[Job] = []
        for job in candidates:
            slurm_id = with_ids[job.id]
            # Not on its way to Slurm (filtered above) and no Slurm id: Slurm cannot know it.
            if slurm_id is None or (
                slurm_id not in known
                and await self._slurm("sacct", commands.sacct_completed(slurm_id)) is None
            ):
                unknown.append(job)
        return unknown

    async def backfill_logs(self, job: Job) -> None:
        assert self._context is not None
        tail = OutputTail(self.job_folder(job.id), job.id, job.specification.replicas)
        tail.read_last(self._context.logs)
        self._context.logs.close(job.id)

    # --- following ----------------------------------------------------------------------------

    # --- interactive sessions -------------------------------------------------------------------

    async def upstream(self, job: Job, rank: int, kind: SessionType) -> Upstream | None:
        """A web app or desktop: where the bridge on its node said it listens (in the job's
        folder), through a forwarder that proves each connection with the job's secret. A
        terminal: a shell in the job's allocation through `srun --overlap --pty`, which the
        gateway runs (on a pseudo-terminal of its own) as the job's account, with the job's
        environment."""
        if kind is not SessionType.TERMINAL:
            folder = self.job_folder(job.id)
            announced = await AddressFiles(lambda _job: folder).upstream(job, rank, kind)
            target = (
                None
                if announced is None
                else await asyncio.to_thread(node_target, folder, announced)
            )
            if announced is None or target is None:
                return None
            path = await self._forwarders.socket_for(job.id, rank, kind.value, target)
            return Upstream(unix_socket=path, strip_prefix=announced.strip_prefix)
        slurm_id = self._slurm_id(job)
        if slurm_id is None:
            return None
        return Upstream(
            command=commands.shell_in_allocation(slurm_id, self.job_folder(job.id), job.unix_user),
            environment=tuple(sorted(self._job_environment(job).items())),
        )

    def _job_environment(self, job: Job) -> dict[str, str]:
        """What the batch script exports (`script.batch_script`), for a shell beside it."""
        workspace = str(self.workspaces.root(job.owner))
        return {
            **commands.slurm_environment(),
            "PATH": JOB_PATH,
            "HOME": workspace,
            "JOBGATE_JOB_ID": job.id,
            "JOBGATE_REPLICAS": str(job.specification.replicas),
            "JOBGATE_WORKSPACE": workspace,
        }

    def _slurm_id(self, job: Job) -> str | None:
        return self._by_job.get(job.id) or job.status.provider_generated_id

    def _require_slurm_id(self, job: Job) -> str:
        slurm_id = self._slurm_id(job)
        if slurm_id is None:
            raise ProviderError(f"job {job.id} has not reached Slurm yet")
        return slurm_id

    def _track(self, job: Job, slurm_id: str, reported: JobState) -> None:
        assert self._context is not None
        tail = None
        product = self._context.catalog.product(job.specification.product)
        if product is not None and product.support.logs:
            tail = OutputTail(self.job_folder(job.id), job.id, job.specification.replicas)
            self._context.logs.open(job.id)
        self._tracked[slurm_id] = _Tracked(job, slurm_id, reported, tail)
        self._by_job[job.id] = slurm_id

    def _untrack(self, tracked: _Tracked) -> None:
        assert self._context is not None
        self._tracked.pop(tracked.slurm_id, None)
        self._by_job.pop(tracked.job.id, None)
        if tracked.tail is not None:
            tracked.tail.read_new(self._context.logs, final=True)
            self._context.logs.close(tracked.job.id)

    async def _reattach_then_poll(self) -> None:
        await self._reattach()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self._poll()
            except SlurmCommandError as error:
                log.warning("cannot read Slurm's queue for provider %s: %s", self.id, error.message)
            except Exception:
                log.exception("the Slurm provider %s failed to follow its jobs", self.id)

    async def _reattach(self) -> None:
        """Follow the jobs a previous gateway left; submit those that never reached Slurm."""
        assert self._context is not None
        jobs = await until_available(self._context.active_jobs, self.id, "list its active jobs")
        queue = await until_available(
            lambda: self._slurm("squeue", commands.squeue()), self.id, "read Slurm's queue"
        )
        by_comment = {entry.comment: entry.slurm_id for entry in queue.values()}
        unsubmitted: list[Job] = []
        found: list[UpdateRequest] = []
        for job in jobs:
            if job.id in self._by_job or job.id in self._submitting:
                continue
            slurm_id = job.status.provider_generated_id
            if slurm_id is None:
                slurm_id = by_comment.get(comment_for(self.id, job.id))
                if slurm_id is not None:
                    found.append(
                        UpdateRequest(
                            job.id,
                            status=f"Found again in Slurm as job {slurm_id}",
                            provider_generated_id=slurm_id,
                        )
                    )
            if slurm_id is None:
                if job.status.state is JobState.IN_QUEUE:
                    unsubmitted.append(job)
                continue  # not in Slurm and not queued: reconciliation settles it
            self._track(job, slurm_id, job.status.state)
        # Submitting first: nothing between the checks above and submit() may yield, or a SUBMIT
        # arriving meanwhile (through an agent) could send the same job twice.
        if unsubmitted:
            await self._sbatch_all(unsubmitted)
        self._attached.set()
        if found:
            await self._send(found)

    async def _poll(self) -> None:
        if not self._tracked:
            return
        actions = {slurm_id: tracked.actions for slurm_id, tracked in self._tracked.items()}
        queue = await self._slurm("squeue", commands.squeue(list(self._tracked)))
        updates: list[UpdateRequest] = []
        for tracked in list(self._tracked.values()):
            if actions.get(tracked.slurm_id, tracked.actions) != tracked.actions:
                continue  # suspended or resumed meanwhile: the next poll reads it afresh
            entry = queue.get(tracked.slurm_id)
            if entry is None:
                details = await self._slurm("sacct", commands.sacct_completed(tracked.slurm_id))
                if details is None:
                    continue  # unknown to Slurm now; reconciliation decides
            elif translate(entry.state, entry.reason).state.is_final:
                details = await self._slurm(
                    "scontrol show", commands.show_job(tracked.slurm_id)
                ) or JobDetails(entry.state, entry.reason, None)
            else:
                details = JobDetails(entry.state, entry.reason, None)
            translation = translate(details.state, details.reason, details.exit_code)
            if actions.get(tracked.slurm_id, tracked.actions) != tracked.actions:
                continue  # an action came in while Slurm was asked about this job
            if tracked.tail is not None and translation.state is not JobState.IN_QUEUE:
                assert self._context is not None
                tracked.tail.read_new(self._context.logs)
            if translation.state is tracked.reported:
                continue
            if _ran_unseen(tracked.reported, details.state, translation.state):
                # It started and ended between two polls: users still see that it ran.
                updates.append(self._update_for(tracked, translate("RUNNING")))
            updates.append(self._update_for(tracked, translation))
            tracked.reported = translation.state
            if translation.state.is_final:
                self._untrack(tracked)
                await self._forwarders.close(tracked.job.id)
        if updates:
            await self._send(updates)

    def _update_for(self, tracked: _Tracked, translation: Translation) -> UpdateRequest:
        status = translation.status
        if translation.state is JobState.SUCCESS and tracked.cancelled:
            status = "The job was cancelled by its user"
        elif translation.state is JobState.RUNNING:
            status = f"Running as Slurm job {tracked.slurm_id}"
        return state_change(tracked.job.id, translation.state, status)

    # --- reporting ----------------------------------------------------------------------------

    async def _send(self, updates: list[UpdateRequest]) -> None:
        assert self._context is not None
        await report_until_stored(self._context, self.id, updates)


def _write_script(folder: Path, script: str, account: Account | None) -> None:
    """The job's folder with its batch script; the user's, when the job runs as their account
    (Slurm writes their output there as them)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.sh").write_text(script)
    if account is not None:
        folder.chmod(0o700)
        for path in (folder, folder / "job.sh"):
            os.chown(path, account.uid, account.gid)


def _require_reachable(root: Path) -> None:
    """Raises `ProviderError` unless every account can pass through `root` (made if missing)
    and the folders above it: a job run as its user's account reads its script there, and
    Slurm writes its output there as them."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        for place in (*reversed(root.parents), root):
            if not place.stat().st_mode & stat.S_IXOTH:
                raise ProviderError(
                    f"jobs run as their users' accounts, who cannot reach {place}: give it "
                    "o+x, or set workdir to a folder users may reach"
                )
    except OSError as error:
        raise ProviderError(f"cannot prepare {root}: {error.strerror}") from error


def _ran_unseen(reported: JobState, slurm_state: str, state: JobState) -> bool:
    return (
        reported is JobState.IN_QUEUE
        and state in (JobState.SUCCESS, JobState.EXPIRED)
        and not slurm_state.startswith("CANCELLED")
    )
