"""Input types of the contract, and their conversion into domain values."""

from __future__ import annotations

import strawberry

from jobgate.domain import values as domain_values
from jobgate.domain.job import JobSpecification, UpdateRequest
from jobgate.schema.enums import JobState, OrderDirection, OrderField
from jobgate.schema.scalars import BigInt, DateTime
from jobgate.storage.base import JobFilter as StoreJobFilter
from jobgate.storage.base import JobOrder as StoreJobOrder


@strawberry.input
class JobFilter:
    states: list[JobState] | None = None
    application: str | None = None
    created_by: str | None = None
    project: str | None = strawberry.field(
        default=None,
        description="Jobs of this project; omit for every workspace the caller can read.",
    )
    provider: str | None = None
    product_id: str | None = None
    product_category: str | None = None
    created_after: DateTime | None = None
    created_before: DateTime | None = None
    ids: list[strawberry.ID] | None = None
    provider_generated_id: str | None = None
    query: str | None = strawberry.field(
        default=None, description="Case-insensitive match on job name, application name or id."
    )

    def to_domain(self) -> StoreJobFilter:
        return StoreJobFilter(
            states=None if self.states is None else frozenset(self.states),
            application=self.application,
            created_by=self.created_by,
            project=self.project,
            provider=self.provider,
            product_id=self.product_id,
            product_category=self.product_category,
            created_after=self.created_after,
            created_before=self.created_before,
            ids=None if self.ids is None else tuple(str(i) for i in self.ids),
            provider_generated_id=self.provider_generated_id,
            query=self.query or None,
        )


@strawberry.input
class JobOrder:
    field: OrderField
    direction: OrderDirection = OrderDirection.DESC

    def to_domain(self) -> StoreJobOrder:
        return StoreJobOrder(self.field, descending=self.direction == OrderDirection.DESC)


@strawberry.input
class NameAndVersionInput:
    name: str
    version: str


@strawberry.input
class ProductReferenceInput:
    id: str
    category: str
    provider: str


@strawberry.input
class SimpleDurationInput:
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    def to_domain(self) -> domain_values.SimpleDuration:
        return domain_values.SimpleDuration(self.hours, self.minutes, self.seconds)


@strawberry.input
class FileValueInput:
    path: str
    read_only: bool = False


@strawberry.input
class PeerValueInput:
    hostname: str
    job_id: strawberry.ID


@strawberry.input(one_of=True, description="Exactly one field must be set.")
class AppParameterValueInput:
    file: FileValueInput | None = strawberry.UNSET
    boolean: bool | None = strawberry.UNSET
    text: str | None = strawberry.UNSET
    integer: BigInt | None = strawberry.UNSET
    floating_point: float | None = strawberry.UNSET
    peer: PeerValueInput | None = strawberry.UNSET
    license_server: strawberry.ID | None = strawberry.UNSET
    modules: list[str] | None = strawberry.UNSET

    def to_domain(self) -> domain_values.ParameterValue:
        if self.file:
            return domain_values.FileValue(self.file.path, self.file.read_only)
        if isinstance(self.boolean, bool):
            return domain_values.BooleanValue(self.boolean)
        if isinstance(self.text, str):
            return domain_values.TextValue(self.text)
        if isinstance(self.integer, int):
            return domain_values.IntegerValue(self.integer)
        if isinstance(self.floating_point, float | int):
            return domain_values.FloatingPointValue(float(self.floating_point))
        if self.peer:
            return domain_values.PeerValue(self.peer.hostname, str(self.peer.job_id))
        if isinstance(self.license_server, str):
            return domain_values.LicenseServerValue(str(self.license_server))
        assert isinstance(self.modules, list), "@oneOf guarantees exactly one field"
        return domain_values.ModulesValue(tuple(self.modules))


@strawberry.input(one_of=True, description="Exactly one field must be set.")
class JobResourceInput:
    file: FileValueInput | None = strawberry.UNSET
    peer: PeerValueInput | None = strawberry.UNSET
    network: strawberry.ID | None = strawberry.UNSET
    ingress: strawberry.ID | None = strawberry.UNSET
    block_storage: strawberry.ID | None = strawberry.UNSET

    def to_domain(self) -> domain_values.ParameterValue:
        if self.file:
            return domain_values.FileValue(self.file.path, self.file.read_only)
        if self.peer:
            return domain_values.PeerValue(self.peer.hostname, str(self.peer.job_id))
        if isinstance(self.network, str):
            return domain_values.NetworkValue(str(self.network))
        if isinstance(self.ingress, str):
            return domain_values.IngressValue(str(self.ingress))
        assert isinstance(self.block_storage, str), "@oneOf guarantees exactly one field"
        return domain_values.BlockStorageValue(str(self.block_storage))


@strawberry.input
class NamedParameterValueInput:
    name: str
    value: AppParameterValueInput


@strawberry.input
class JobSpecificationInput:
    application: NameAndVersionInput
    product: ProductReferenceInput
    name: str | None = None
    replicas: int = 1
    allow_duplicate_job: bool = strawberry.field(
        default=False,
        description="Submit even if an equal job of the caller's is still active (otherwise "
        "DUPLICATE_JOB).",
    )
    parameters: list[NamedParameterValueInput] = strawberry.field(default_factory=list)
    resources: list[JobResourceInput] = strawberry.field(default_factory=list)
    time_allocation: SimpleDurationInput | None = None
    opened_file: str | None = None
    restart_on_exit: bool | None = None
    ssh_enabled: bool | None = None

    def to_domain(self) -> JobSpecification:
        return JobSpecification(
            application=domain_values.NameAndVersion(
                self.application.name, self.application.version
            ),
            product=domain_values.ProductReference(
                self.product.id, self.product.category, self.product.provider
            ),
            name=self.name,
            replicas=self.replicas,
            allow_duplicate_job=self.allow_duplicate_job,
            parameters=tuple((p.name, p.value.to_domain()) for p in self.parameters),
            resources=tuple(r.to_domain() for r in self.resources),
            time_allocation=None
            if self.time_allocation is None
            else self.time_allocation.to_domain(),
            opened_file=self.opened_file,
            restart_on_exit=self.restart_on_exit,
            ssh_enabled=self.ssh_enabled,
        )


@strawberry.input(
    description="1 to 1000 jobs, all validated before any is created: if any item is invalid, "
    "nothing is created and every problem is reported."
)
class SubmitJobsInput:
    jobs: list[JobSpecificationInput]
    project: str | None = strawberry.field(
        default=None,
        description="The workspace: a project id, or null for the caller's personal workspace.",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Resubmitting the same request with the same key returns the jobs created "
        "the first time.",
    )


@strawberry.input(description="1 to 1000 job ids; each succeeds or fails on its own.")
class JobIdsInput:
    ids: list[strawberry.ID]


@strawberry.input
class JobLogInput:
    job_id: strawberry.ID
    rank: int = 0
    stdout: str | None = None
    stderr: str | None = None
    channel: str | None = None


@strawberry.input
class ReportJobLogsInput:
    lines: list[JobLogInput]


@strawberry.input(description="Commands the agent has carried out; they are not sent again.")
class AcknowledgeProviderCommandsInput:
    ids: list[strawberry.ID]


@strawberry.input
class ExtendJobRequest:
    job_id: strawberry.ID
    requested_time: SimpleDurationInput = strawberry.field(
        description="Time to add to the current allocation."
    )


@strawberry.input
class ExtendJobsInput:
    requests: list[ExtendJobRequest]


@strawberry.input
class JobUpdateInput:
    job_id: strawberry.ID
    state: JobState | None = None
    status: str | None = None
    output_folder: str | None = None
    expected_state: JobState | None = None
    expected_different_state: bool | None = None
    new_time_allocation: SimpleDurationInput | None = None
    allow_restart: bool | None = None
    provider_generated_id: str | None = None

    def to_domain(self) -> UpdateRequest:
        return UpdateRequest(
            job_id=str(self.job_id),
            state=self.state,
            status=self.status,
            output_folder=self.output_folder,
            expected_state=self.expected_state,
            expected_different_state=self.expected_different_state,
            new_time_allocation=None
            if self.new_time_allocation is None
            else self.new_time_allocation.to_domain(),
            allow_restart=self.allow_restart,
            provider_generated_id=self.provider_generated_id,
        )


@strawberry.input
class ReportJobUpdatesInput:
    updates: list[JobUpdateInput]
