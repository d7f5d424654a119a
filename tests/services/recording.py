"""A small in-process provider adapter for service tests: it records every call and reports
the updates a test scripts, and it can refuse, fail or be slow on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from jobgate.domain.catalog import ComputeSupport, Product
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.values import SimpleDuration
from jobgate.errors import ProviderError
from jobgate.providers.base import ProviderContext
from jobgate.providers.workspace import Workspaces


@dataclass(frozen=True, slots=True)
class Call:
    """One command the gateway sent: its name and the ids of the jobs it named."""

    command: str
    job_ids: tuple[str, ...]


@dataclass
class RecordingProvider:
    """Records calls in order; `refuse` raises `ProviderError`, `crash` an unexpected error."""

    id: str = "test"
    kind: str = "test"
    products: list[Product] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # The time each `extend` call asked for, per job.
    extensions: list[tuple[str, SimpleDuration]] = field(default_factory=list)
    refuse: str | None = None
    crash: Exception | None = None
    online: bool = True
    context: ProviderContext | None = None
    # Set to hold every command until the test releases it.
    gate: asyncio.Event | None = None
    workspaces: Workspaces | None = None
    max_replicas: int | None = None

    def __post_init__(self) -> None:
        if not self.products:
            support = ComputeSupport(logs=True, time_extension=True, suspension=True)
            self.products = [Product("cpu-test", "cpu", self.id, support=support)]

    async def start(self, context: ProviderContext) -> None:
        self.context = context

    async def stop(self) -> None:
        self.context = None

    async def _record(self, command: str, jobs: Sequence[Job]) -> None:
        self.calls.append(Call(command, tuple(job.id for job in jobs)))
        if self.gate is not None:
            await self.gate.wait()
        if self.crash is not None:
            raise self.crash
        if self.refuse is not None:
            raise ProviderError(self.refuse)

    def calls_of(self, command: str) -> list[tuple[str, ...]]:
        return [call.job_ids for call in self.calls if call.command == command]

    async def submit(self, jobs: Sequence[Job]) -> None:
        await self._record("submit", jobs)

    async def cancel(self, jobs: Sequence[Job]) -> None:
        await self._record("cancel", jobs)

    async def extend(self, requests: Sequence[tuple[Job, SimpleDuration]]) -> None:
        self.extensions.extend((job.id, duration) for job, duration in requests)
        await self._record("extend", [job for job, _ in requests])

    async def suspend(self, jobs: Sequence[Job]) -> None:
        await self._record("suspend", jobs)

    async def resume(self, jobs: Sequence[Job]) -> None:
        await self._record("resume", jobs)

    async def verify(self, jobs: Sequence[Job]) -> list[Job]:
        await self._record("verify", jobs)
        return []

    async def backfill_logs(self, job: Job) -> None:
        await self._record("backfill_logs", [job])

    async def report(self, *updates: UpdateRequest) -> None:
        """Report updates through the gateway, as the back end would."""
        assert self.context is not None, "the provider was not started"
        await self.context.report(updates)
