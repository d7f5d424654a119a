"""Output types of the contract (`../shared/api/schema.graphql`), built from domain objects."""

from __future__ import annotations

from typing import Annotated

import strawberry

from jobgate import access
from jobgate.cursors import encode_position
from jobgate.domain import acl as domain_acl
from jobgate.domain import catalog as domain_catalog
from jobgate.domain import job as domain
from jobgate.domain import values as domain_values
from jobgate.domain.acl import Permission as DomainPermission
from jobgate.schema.context import DEPENDS_ON_PERMISSIONS, Context
from jobgate.schema.enums import JobState, Permission
from jobgate.schema.planned import BATCHED
from jobgate.schema.scalars import BigInt, DateTime

Info = strawberry.Info[Context, None]


@strawberry.type
class NameAndVersion:
    name: str
    version: str


@strawberry.type(
    description="Names a product. `id` is the product's name, unique within its "
    "category at its provider."
)
class ProductReference:
    id: str
    category: str
    provider: str

    @classmethod
    def of(cls, ref: domain_values.ProductReference) -> ProductReference:
        return cls(id=ref.id, category=ref.category, provider=ref.provider)


@strawberry.type
class SimpleDuration:
    hours: int
    minutes: int
    seconds: int

    @classmethod
    def of(cls, duration: domain_values.SimpleDuration | None) -> SimpleDuration | None:
        if duration is None:
            return None
        return cls(hours=duration.hours, minutes=duration.minutes, seconds=duration.seconds)


@strawberry.type
class ResourceOwner:
    created_by: str
    project: str | None = strawberry.field(
        description="The project the job belongs to; null for the creator's personal workspace."
    )


# --- parameter values ------------------------------------------------------------------------


@strawberry.type
class FileValue:
    path: str
    read_only: bool


@strawberry.type
class BooleanValue:
    boolean: bool


@strawberry.type
class TextValue:
    text: str


@strawberry.type
class IntegerValue:
    integer: BigInt


@strawberry.type
class FloatingPointValue:
    floating_point: float


@strawberry.type
class PeerValue:
    hostname: str
    job_id: strawberry.ID


@strawberry.type
class LicenseServerValue:
    license_server_id: strawberry.ID


@strawberry.type
class BlockStorageValue:
    block_storage_id: strawberry.ID


@strawberry.type
class NetworkValue:
    network_id: strawberry.ID


@strawberry.type
class IngressValue:
    ingress_id: strawberry.ID


@strawberry.type
class ModulesValue:
    modules: list[str]


AppParameterValue = Annotated[
    FileValue
    | BooleanValue
    | TextValue
    | IntegerValue
    | FloatingPointValue
    | PeerValue
    | LicenseServerValue
    | BlockStorageValue
    | NetworkValue
    | IngressValue
    | ModulesValue,
    strawberry.union(
        "AppParameterValue",
        description="One tagged value of an application parameter or an attached resource "
        "(UCloud's AppParameterValue).",
    ),
]


def parameter_value(value: domain_values.ParameterValue) -> AppParameterValue:
    match value:
        case domain_values.FileValue(path=path, read_only=read_only):
            return FileValue(path=path, read_only=read_only)
        case domain_values.BooleanValue(value=flag):
            return BooleanValue(boolean=flag)
        case domain_values.TextValue(value=text):
            return TextValue(text=text)
        case domain_values.IntegerValue(value=number):
            return IntegerValue(integer=BigInt(number))
        case domain_values.FloatingPointValue(value=number):
            return FloatingPointValue(floating_point=number)
        case domain_values.PeerValue(hostname=hostname, job_id=job_id):
            return PeerValue(hostname=hostname, job_id=strawberry.ID(job_id))
        case domain_values.LicenseServerValue(id=ident):
            return LicenseServerValue(license_server_id=strawberry.ID(ident))
        case domain_values.BlockStorageValue(id=ident):
            return BlockStorageValue(block_storage_id=strawberry.ID(ident))
        case domain_values.NetworkValue(id=ident):
            return NetworkValue(network_id=strawberry.ID(ident))
        case domain_values.IngressValue(id=ident):
            return IngressValue(ingress_id=strawberry.ID(ident))
        case domain_values.ModulesValue(modules=modules):
            return ModulesValue(modules=list(modules))
    raise AssertionError(f"unknown parameter value {value!r}")


@strawberry.type
class NamedParameterValue:
    name: str
    value: AppParameterValue


@strawberry.type
class JobSpecification:
    application: NameAndVersion
    product: ProductReference
    name: str | None
    replicas: int
    allow_duplicate_job: bool
    parameters: list[NamedParameterValue] = strawberry.field(
        description="Values for the application's parameters, defaults filled in."
    )
    resources: list[AppParameterValue] = strawberry.field(
        description="Attached resources: file mounts, peers, networks, ingresses, block storage."
    )
    time_allocation: SimpleDuration | None = strawberry.field(
        description="Wall-time limit; null means no automatic expiry."
    )
    opened_file: str | None
    restart_on_exit: bool | None
    ssh_enabled: bool | None

    @classmethod
    def of(cls, job: domain.Job) -> JobSpecification:
        spec = job.specification
        return cls(
            application=NameAndVersion(
                name=spec.application.name, version=spec.application.version
            ),
            product=ProductReference.of(spec.product),
            name=spec.name,
            replicas=spec.replicas,
            allow_duplicate_job=spec.allow_duplicate_job,
            parameters=[
                NamedParameterValue(name=name, value=parameter_value(value))
                for name, value in spec.parameters
            ],
            resources=[parameter_value(value) for value in spec.resources],
            # The current allocation: a confirmed extension replaces the requested one.
            time_allocation=SimpleDuration.of(job.status.time_allocation),
            opened_file=spec.opened_file,
            restart_on_exit=spec.restart_on_exit,
            ssh_enabled=spec.ssh_enabled,
        )


# --- catalog -----------------------------------------------------------------------------------


@strawberry.type
class ApplicationParameter:
    name: str
    type: domain_catalog.ParameterType
    optional: bool
    default_value: AppParameterValue | None
    title: str | None
    description: str | None
    options: list[str] | None = strawberry.field(
        description="Allowed values of an ENUMERATION parameter."
    )
    min: float | None
    max: float | None


@strawberry.type
class ApplicationInterfaces:
    web: bool
    vnc: bool
    keep_prefix: bool = strawberry.field(
        description="A web app served under its session's path prefix, not from its root."
    )


@strawberry.type
class Application:
    name: str
    version: str
    title: str | None
    description: str | None
    parameters: list[ApplicationParameter]
    command: list[str] = strawberry.field(
        description="What a provider runs: the program and its arguments, each `{name}` "
        "replaced by that parameter's value as one argument (no shell)."
    )
    interactive: ApplicationInterfaces = strawberry.field(
        description="What it serves while it runs, on `{port}` (interactive sessions)."
    )

    @classmethod
    def of(cls, app: domain_catalog.Application) -> Application:
        return cls(
            name=app.name,
            version=app.version,
            title=app.title,
            description=app.description,
            command=list(app.command),
            interactive=ApplicationInterfaces(
                web=app.interactive.web,
                vnc=app.interactive.vnc,
                keep_prefix=app.interactive.keep_prefix,
            ),
            parameters=[
                ApplicationParameter(
                    name=p.name,
                    type=p.type,
                    optional=p.optional or p.default is not None,
                    default_value=None if p.default is None else parameter_value(p.default),
                    title=p.title,
                    description=p.description,
                    options=None if p.options is None else list(p.options),
                    min=p.min,
                    max=p.max,
                )
                for p in app.parameters
            ],
        )


@strawberry.type
class ComputeSupport:
    logs: bool
    time_extension: bool
    suspension: bool
    web: bool = strawberry.field(description="WEB sessions: the job serves a web app.")
    terminal: bool = strawberry.field(
        description="TERMINAL sessions: a shell inside the running job."
    )
    vnc: bool = strawberry.field(description="VNC sessions: the job serves a desktop.")


@strawberry.type
class Product:
    reference: ProductReference
    name: str
    category: str
    provider: str
    description: str | None
    cpu: int | None
    memory_in_gigs: int | None
    gpu: int | None
    support: ComputeSupport
    network: bool

    @classmethod
    def of(cls, product: domain_catalog.Product) -> Product:
        return cls(
            reference=ProductReference.of(product.reference),
            name=product.name,
            category=product.category,
            provider=product.provider,
            description=product.description,
            cpu=product.cpu,
            memory_in_gigs=product.memory_in_gigs,
            gpu=product.gpu,
            support=ComputeSupport(
                logs=product.support.logs,
                time_extension=product.support.time_extension,
                suspension=product.support.suspension,
                web=product.support.web,
                terminal=product.support.terminal,
                vnc=product.support.vnc,
            ),
            network=product.network,
        )


@strawberry.type
class Provider:
    id: strawberry.ID
    kind: str = strawberry.field(description="The adapter behind it: local, slurm, remote, ...")
    online: bool = strawberry.field(
        description="For remote providers: whether an agent is connected now. In-process "
        "adapters are always online."
    )
    products: list[Product]


# --- the job -----------------------------------------------------------------------------------


@strawberry.type
class JobStatus:
    state: JobState
    is_final: bool
    started_at: DateTime | None = strawberry.field(description="The latest transition to RUNNING.")
    expires_at: DateTime | None = strawberry.field(
        description="startedAt + timeAllocation, when both are known."
    )
    allow_restart: bool
    time_allocation: SimpleDuration | None = strawberry.field(
        description="The time allocation now: the requested one plus every confirmed extension."
    )
    _job: strawberry.Private[domain.Job]

    @strawberry.field
    def resolved_application(self, info: Info) -> Application | None:
        app = info.context.services.catalog.application(self._job.specification.application)
        return None if app is None else Application.of(app)

    @strawberry.field
    def resolved_product(self, info: Info) -> Product | None:
        product = info.context.services.catalog.product(self._job.specification.product)
        return None if product is None else Product.of(product)

    @classmethod
    def of(cls, job: domain.Job) -> JobStatus:
        status = job.status
        return cls(
            state=status.state,
            is_final=status.state.is_final,
            started_at=None if status.started_at is None else DateTime(status.started_at),
            expires_at=None if status.expires_at is None else DateTime(status.expires_at),
            allow_restart=status.allow_restart,
            time_allocation=SimpleDuration.of(status.time_allocation),
            _job=job,
        )


@strawberry.type(
    description="One change reported by a provider (or stored by the gateway at creation: every "
    "job has at least its IN_QUEUE update). A null field means 'no change'."
)
class JobUpdate:
    cursor: str = strawberry.field(
        description="Opaque position of this update in the gateway's global, ordered update "
        "log; usable as `after` in jobUpdates."
    )
    timestamp: DateTime = strawberry.field(
        description="Set by the gateway when it stored the update."
    )
    state: JobState | None
    status: str | None
    output_folder: str | None
    expected_state: JobState | None
    expected_different_state: bool | None
    new_time_allocation: SimpleDuration | None = strawberry.field(
        description="The job's new total time allocation (confirms an extension)."
    )
    allow_restart: bool | None

    @classmethod
    def of(cls, update: domain.JobUpdate) -> JobUpdate:
        request = update.request
        return cls(
            cursor=encode_position(update.seq),
            timestamp=DateTime(update.timestamp),
            state=request.state,
            status=request.status,
            output_folder=request.output_folder,
            expected_state=request.expected_state,
            expected_different_state=request.expected_different_state,
            new_time_allocation=SimpleDuration.of(request.new_time_allocation),
            allow_restart=request.allow_restart,
        )


@strawberry.type
class JobOutput:
    output_folder: str | None


@strawberry.type
class AclUser:
    username: str


@strawberry.type
class AclProjectGroup:
    project_id: str
    group: str


AclEntity = Annotated[AclUser | AclProjectGroup, strawberry.union("AclEntity")]


@strawberry.type
class ResourceAclEntry:
    entity: AclEntity
    permissions: list[Permission]

    @classmethod
    def of(cls, entry: domain_acl.AclEntry) -> ResourceAclEntry:
        entity: AclUser | AclProjectGroup
        if entry.entity.username is not None:
            entity = AclUser(username=entry.entity.username)
        else:
            assert entry.entity.project is not None
            assert entry.entity.group is not None
            entity = AclProjectGroup(project_id=entry.entity.project, group=entry.entity.group)
        ordered = [p for p in domain_acl.Permission if p in entry.permissions]
        return cls(entity=entity, permissions=[Permission(p) for p in ordered])


@strawberry.type
class ResourcePermissions:
    myself: list[Permission] = strawberry.field(description="What the caller may do with this job.")
    others: list[ResourceAclEntry] | None = strawberry.field(
        description="Who else was granted access; null unless the caller has ADMIN."
    )


def _at_least_none(last: int | None) -> int | None:
    """`updates(last:)` below zero asks for none."""
    return None if last is None else max(0, last)


async def _updates_of_jobs(
    context: Context, jobs: list[Job], last: int | None = None
) -> list[list[JobUpdate]]:
    """`Job.updates` of each of `jobs` in one store read: how a planned query resolves it for
    a page of jobs (`jobgate/schema/planned.py`, `BATCHED`)."""
    last = _at_least_none(last)
    unknown = [job._job.id for job in jobs if job._known_updates is None]
    loaded = await context.services.store.updates_of(unknown, last) if unknown else {}
    answers = []
    for job in jobs:
        updates = job._known(last)
        if updates is None:
            updates = loaded.get(job._job.id, [])
        answers.append([JobUpdate.of(update) for update in updates])
    return answers


@strawberry.type
class Job:
    id: strawberry.ID
    owner: ResourceOwner
    specification: JobSpecification
    status: JobStatus
    created_at: DateTime
    output: JobOutput | None
    provider_generated_id: str | None
    unix_user: str | None
    _job: strawberry.Private[domain.Job]
    # Every update the job has, when the caller knows them already (a job just created).
    _known_updates: strawberry.Private[list[domain.JobUpdate] | None] = None

    @strawberry.field(
        description="Applied updates, oldest first. `last` returns only the newest N.",
        metadata={BATCHED: _updates_of_jobs},
    )
    async def updates(self, info: Info, last: int | None = None) -> list[JobUpdate]:
        last = _at_least_none(last)
        updates = self._known(last)
        if updates is None:
            updates = await info.context.updates.load((self._job.id, last))
        return [JobUpdate.of(update) for update in updates]

    def _known(self, last: int | None) -> list[domain.JobUpdate] | None:
        """The job's `last` updates when it was given them, without asking the store."""
        if self._known_updates is None:
            return None
        if last is None:
            return self._known_updates
        return self._known_updates[-last:] if last else []

    @strawberry.field(metadata=DEPENDS_ON_PERMISSIONS)
    def permissions(self, info: Info) -> ResourcePermissions:
        identity = info.context.identity
        granted = [] if identity is None else access.permissions_on(identity, self._job)
        others: list[ResourceAclEntry] | None = None
        if DomainPermission.ADMIN in granted:
            others = [ResourceAclEntry.of(entry) for entry in self._job.acl]
        return ResourcePermissions(myself=[Permission(p) for p in granted], others=others)

    @classmethod
    def of(cls, job: domain.Job, known_updates: list[domain.JobUpdate] | None = None) -> Job:
        """The job; with `known_updates`, its updates are those, not read from the store."""
        return cls(
            id=strawberry.ID(job.id),
            owner=ResourceOwner(created_by=job.owner.created_by, project=job.owner.project),
            specification=JobSpecification.of(job),
            status=JobStatus.of(job),
            created_at=DateTime(job.created_at),
            output=JobOutput(output_folder=job.status.output_folder),
            provider_generated_id=job.status.provider_generated_id,
            unix_user=job.unix_user,
            _job=job,
            _known_updates=known_updates,
        )
