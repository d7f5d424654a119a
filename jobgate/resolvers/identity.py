"""The contract's [identity] parts: who is calling (`me`), sharing jobs (`updateJobAcl`) and
personal access tokens."""

from __future__ import annotations

import enum

import strawberry

from jobgate import access
from jobgate.domain.acl import AclEntity, AclEntry
from jobgate.domain.acl import Permission as DomainPermission
from jobgate.errors import Forbidden
from jobgate.resolvers.audit import audited
from jobgate.resolvers.errors import coded
from jobgate.resolvers.mutation import jobs_payload
from jobgate.schema.enums import Permission
from jobgate.schema.payloads import JobsPayload, UserError
from jobgate.schema.scalars import DateTime
from jobgate.schema.types import Info
from jobgate.services.sharing import AclChange
from jobgate.storage.tokens import AccessTokenRecord

# A new token's lifetime unless its maker says otherwise (the contract's default).
DEFAULT_TOKEN_DAYS = 90


@strawberry.enum(description="UCloud's project roles.")
class ProjectRole(enum.Enum):
    PI = "PI"
    ADMIN = "ADMIN"
    USER = "USER"


@strawberry.type
class ProjectMembership:
    project_id: str
    title: str | None
    role: ProjectRole
    groups: list[str] = strawberry.field(
        description="The project's groups this user is in (every member is in `all`)."
    )


@strawberry.type
class Viewer:
    username: str
    projects: list[ProjectMembership]
    unix_user: str | None = strawberry.field(
        description="The Unix account mapped to this user, if any: providers that run jobs as "
        "their users' own accounts use it before their template."
    )


@strawberry.input
class AclProjectGroupInput:
    project_id: str
    group: str


@strawberry.input(one_of=True, description="Exactly one field must be set.")
class AclEntityInput:
    username: str | None = strawberry.UNSET
    project_group: AclProjectGroupInput | None = strawberry.UNSET

    def to_domain(self) -> AclEntity:
        # `one_of`: exactly one is set. An empty username is set too (and refused as a name).
        if isinstance(self.project_group, AclProjectGroupInput):
            return AclEntity.project_group(self.project_group.project_id, self.project_group.group)
        assert isinstance(self.username, str)
        return AclEntity.user(self.username)


@strawberry.input
class AclEntryInput:
    entity: AclEntityInput
    permissions: list[Permission]

    def to_domain(self) -> AclEntry:
        granted = frozenset(DomainPermission(p.value) for p in self.permissions)
        return AclEntry(self.entity.to_domain(), granted)


@strawberry.input(
    description="One job's ACL change: entries to add (or widen) and entities to remove."
)
class JobAclChange:
    job_id: strawberry.ID
    added: list[AclEntryInput] = strawberry.field(default_factory=list)
    deleted: list[AclEntityInput] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateJobAclInput:
    changes: list[JobAclChange]


@strawberry.type
class AccessToken:
    id: strawberry.ID
    name: str
    created_at: DateTime
    expires_at: DateTime | None
    last_used_at: DateTime | None

    @classmethod
    def of(cls, record: AccessTokenRecord) -> AccessToken:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            created_at=DateTime(record.created_at),
            expires_at=None if record.expires_at is None else DateTime(record.expires_at),
            last_used_at=None if record.last_used_at is None else DateTime(record.last_used_at),
        )


@strawberry.input
class CreateAccessTokenInput:
    name: str
    expires_in_days: int | None = strawberry.field(
        default=DEFAULT_TOKEN_DAYS, description="Days until it expires; null: never."
    )


@strawberry.type
class CreateAccessTokenPayload:
    token: str | None = strawberry.field(description="The secret, shown this once.")
    access_token: AccessToken | None
    user_errors: list[UserError]


@strawberry.input
class RevokeAccessTokenInput:
    id: strawberry.ID


@strawberry.type
class RevokeAccessTokenPayload:
    revoked: bool
    user_errors: list[UserError]


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="Who is calling: null for providers.")
    @coded
    async def me(self, info: Info) -> Viewer | None:
        identity = info.context.caller()
        if not isinstance(identity, access.User):
            return None
        projects = info.context.services.authenticator.projects
        return Viewer(
            username=identity.username,
            projects=[
                ProjectMembership(
                    project_id=m.project,
                    title=projects.title(m.project),
                    role=ProjectRole(m.role.value),
                    groups=sorted(m.groups | {"all"}),
                )
                for m in identity.memberships
            ],
            unix_user=identity.unix_user,
        )

    @strawberry.field(description="The caller's personal access tokens (never their secrets).")
    @coded
    async def my_access_tokens(self, info: Info) -> list[AccessToken]:
        records = await info.context.services.access_tokens.of(info.context.user())
        return [AccessToken.of(record) for record in records]


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Needs ADMIN on each job; grants READ and/or EDIT only.")
    @audited("updateJobAcl")
    @coded
    async def update_job_acl(self, info: Info, input: UpdateJobAclInput) -> JobsPayload:
        user = info.context.user()
        changes = [
            AclChange(
                str(change.job_id),
                [entry.to_domain() for entry in change.added],
                [entity.to_domain() for entity in change.deleted],
            )
            for change in input.changes
        ]
        return jobs_payload(await info.context.services.sharing.update_acl(user, changes))

    @strawberry.mutation
    @audited("createAccessToken")
    @coded
    async def create_access_token(
        self, info: Info, input: CreateAccessTokenInput
    ) -> CreateAccessTokenPayload:
        user = info.context.user()
        if info.context.access_token_id is not None:
            # A token that could make tokens would outlive its own revocation.
            raise Forbidden("sign in to make a token: a personal access token cannot make one")
        made, problems = await info.context.services.access_tokens.create(
            user, input.name, input.expires_in_days
        )
        return CreateAccessTokenPayload(
            token=None if made is None else made.secret,
            access_token=None if made is None else AccessToken.of(made.record),
            user_errors=[UserError.of(problem) for problem in problems],
        )

    @strawberry.mutation
    @audited("revokeAccessToken")
    @coded
    async def revoke_access_token(
        self, info: Info, input: RevokeAccessTokenInput
    ) -> RevokeAccessTokenPayload:
        problems = await info.context.services.access_tokens.revoke(
            info.context.user(), str(input.id)
        )
        return RevokeAccessTokenPayload(
            revoked=not problems, user_errors=[UserError.of(problem) for problem in problems]
        )
