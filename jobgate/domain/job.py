"""The Job resource: what was asked for, what it is now, and the updates that got it there.

Instants are integers, milliseconds since the Unix epoch in UTC, as on UCloud's wire; the GraphQL
layer turns them into RFC 3339 strings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from jobgate.domain.acl import Acl
from jobgate.domain.states import JobState
from jobgate.domain.values import (
    NameAndVersion,
    ParameterValue,
    ProductReference,
    ResourceOwner,
    SimpleDuration,
)


@dataclass(frozen=True, slots=True)
class JobSpecification:
    """What the user asked for. Parameters keep their request order, defaults filled in."""

    application: NameAndVersion
    product: ProductReference
    name: str | None = None
    replicas: int = 1
    allow_duplicate_job: bool = False
    parameters: tuple[tuple[str, ParameterValue], ...] = ()
    resources: tuple[ParameterValue, ...] = ()
    time_allocation: SimpleDuration | None = None
    opened_file: str | None = None
    restart_on_exit: bool | None = None
    ssh_enabled: bool | None = None

    def parameter(self, name: str) -> ParameterValue | None:
        for key, value in self.parameters:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class JobStatus:
    """The parts of a job that updates change."""

    state: JobState = JobState.IN_QUEUE
    started_at: int | None = None
    allow_restart: bool = False
    time_allocation: SimpleDuration | None = None
    output_folder: str | None = None
    provider_generated_id: str | None = None

    @property
    def expires_at(self) -> int | None:
        """startedAt + timeAllocation, when both are known."""
        if self.started_at is None or self.time_allocation is None:
            return None
        return self.started_at + self.time_allocation.total_ms


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """An update as a provider reports it. A None field means 'no change'."""

    job_id: str
    state: JobState | None = None
    status: str | None = None
    output_folder: str | None = None
    expected_state: JobState | None = None
    expected_different_state: bool | None = None
    new_time_allocation: SimpleDuration | None = None
    allow_restart: bool | None = None
    provider_generated_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """An applied, stored update. `seq` is its position in the global update log."""

    seq: int
    job_id: str
    timestamp: int
    request: UpdateRequest
    status_after: JobStatus


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. `version` counts applied updates; writes are guarded by it."""

    id: str
    owner: ResourceOwner
    specification: JobSpecification
    status: JobStatus
    created_at: int
    version: int = 0
    # Who else may read or change it (UCloud's ACL); a project job's creator is on it.
    acl: Acl = ()
    # The Unix account it runs as, where its provider runs jobs as their users' (`jobgate.unix`).
    unix_user: str | None = None

    @property
    def provider(self) -> str:
        return self.specification.product.provider

    def as_of(self, update: JobUpdate) -> Job:
        """The job as it was right after `update` (its version then is not known: 0)."""
        return dataclasses.replace(self, status=update.status_after, version=0)
