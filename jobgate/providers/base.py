"""The `ProviderAdapter` protocol and what the gateway hands an adapter when it starts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from jobgate.domain.catalog import Catalog, Product
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.values import SimpleDuration
from jobgate.events.logs import JobLogHub
from jobgate.providers.workspace import Workspaces

ReportUpdates = Callable[[Sequence[UpdateRequest]], Awaitable[None]]
ListJobs = Callable[[], Awaitable[list[Job]]]


# A back end's command (its name, e.g. "sbatch"), its outcome ("ok" or an error code) and the
# seconds it took: the gateway's metrics take them (`jobgate_slurm_command_seconds`).
CommandObserver = Callable[[str, str, float], None]


def ignore_command(_command: str, _outcome: str, _seconds: float) -> None:
    """The observer of adapters whose host keeps no metrics (an agent)."""


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """The gateway's side of an adapter: where to report updates and what it may read."""

    report: ReportUpdates
    active_jobs: ListJobs
    catalog: Catalog
    data_dir: Path
    logs: JobLogHub
    observe_command: CommandObserver = ignore_command


class ProviderAdapter(Protocol):
    """Turns the gateway's commands into a back end's actions; reports what happens as updates.

    Commands return once the back end has accepted them; state changes arrive later through
    `ProviderContext.report`. Optional abilities are declared per product (`ComputeSupport`),
    and the gateway only sends a command the job's product supports.
    """

    id: str
    kind: str
    products: list[Product]

    @property
    def online(self) -> bool:
        """Whether the back end can take commands now."""

    @property
    def workspaces(self) -> Workspaces | None:
        """Where its users' and projects' files are, when this host sees them (the gateway then
        checks every path at submit); None when the back end checks them itself (an agent)."""

    @property
    def max_replicas(self) -> int | None:
        """The most replicas one job may ask for here (refused at submit beyond it); None
        when the back end bounds that itself."""

    async def start(self, context: ProviderContext) -> None:
        """Begin work, and follow again (or settle) the jobs it was given before a restart."""

    async def stop(self) -> None:
        """Stop following; the jobs themselves run on, for `start` to follow next time."""

    async def submit(self, jobs: Sequence[Job]) -> None:
        """Take stored IN_QUEUE jobs; once it returns, the adapter has them (durably: a restart
        follows them). A job it was given before (the outbox hands a job over again when a
        crash came between the two) is not started again. Raises `ProviderError` to refuse them
        all, `ProviderNotReady` to have them handed over again later."""

    async def cancel(self, jobs: Sequence[Job]) -> None:
        """Stop the jobs; each later ends with a final update (SUCCESS, cancelled)."""

    async def extend(self, requests: Sequence[tuple[Job, SimpleDuration]]) -> None:
        """Add time; confirmed later by an update with `newTimeAllocation`."""

    async def suspend(self, jobs: Sequence[Job]) -> None:
        """Pause the jobs; they become SUSPENDED."""

    async def resume(self, jobs: Sequence[Job]) -> None:
        """Continue suspended jobs."""

    async def verify(self, jobs: Sequence[Job]) -> list[Job]:
        """Of these active jobs, the ones the back end no longer knows (UCloud's verify)."""

    async def backfill_logs(self, job: Job) -> None:
        """Put the tail of an ended job's output into the log hub, from wherever the back end
        kept it (for products with `logs` support), and close that log."""
