"""Settings: one model per area, read from a TOML file with `JOBGATE_...` environment overrides.

Environment variables use `__` between levels: `JOBGATE_STORAGE__URL=mongodb://...` overrides
`[storage] url`. Lists (users, providers, applications) take JSON: `JOBGATE_USERS='[...]'`.
"""

from __future__ import annotations

import os
import tomllib
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from jobgate.domain.catalog import PORT_PLACEHOLDER
from jobgate.domain.paths import FOLDER_NAME
from jobgate.errors import ConfigError
from jobgate.unix import TEMPLATE_PLACEHOLDER, UNIX_NAME, template_problem

ParameterTypeName = Literal[
    "input_file",
    "input_directory",
    "text",
    "textarea",
    "integer",
    "floating_point",
    "boolean",
    "enumeration",
    "peer",
    "license_server",
    "network_ip",
    "ingress",
    "module_list",
]


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser()))


# A folder given relative to where jobgate starts, made absolute once, when settings are read:
# every path handed to Slurm, to local jobs and to agents is absolute (a relative one is taken
# again under each job's working folder).
AbsolutePath = Annotated[Path, AfterValidator(_absolute)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StorageSettings(_Strict):
    url: str = Field(
        default="",
        description="sqlite:///absolute/path.db, sqlite://relative/path.db or mongodb://host/db; "
        "empty means jobgate.db in the data folder",
    )
    server_selection_timeout_ms: int = Field(default=5000, gt=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if url and not url.startswith(("sqlite://", "mongodb://", "mongodb+srv://")):
            raise ValueError("url must start with sqlite://, mongodb:// or mongodb+srv://")
        return url


class BusSettings(_Strict):
    url: str = "memory://"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("url must start with memory://, redis:// or rediss://")
        return url


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: AbsolutePath = Field(default=Path("jobgate-data"), validate_default=True)
    graphiql: bool = True
    # Off by default: events are small JSON, and each compressing connection holds zlib state
    # (~40 KiB measured) and spends CPU on every event it is sent.
    websocket_compression: bool = False
    # The lean jobUpdates path and uvicorn's lean WebSocket protocol (README: "Many watchers on
    # one gateway"); false serves every subscription through Strawberry and stock uvicorn.
    lean_subscriptions: bool = True
    kept_job_values: int = Field(
        default=500_000,
        ge=0,
        le=100_000_000,
        description="How many values of rendered jobs a gateway keeps to answer queries again "
        "while the jobs are unchanged (README: 'Queries'); about 100 bytes each; 0 keeps none",
    )
    allowed_origins: list[str] = Field(
        default=[],
        description="Other origins whose pages may call the API (HTTP CORS and WebSocket), "
        "e.g. a frontend's dev server: https://localhost:5173; '*' allows any",
    )
    drain_seconds: float = Field(
        default=0.0,
        ge=0,
        le=600,
        description="On SIGTERM, how long /readyz says 'not ready' before the port closes, so "
        "load balancers stop sending requests first (e.g. 10 behind one)",
    )
    shutdown_grace_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="Once the port is closed, how long running HTTP requests may take to finish",
    )


class LogFormatSettings(_Strict):
    """How a jobgate process writes its log lines (the gateway's and the agent's)."""

    format: Literal["text", "json"] = Field(
        default="text", description="'json': one JSON object per line, for log collectors"
    )


class LoggingSettings(LogFormatSettings):
    """How jobgate logs (README: "Logs and audit")."""

    audit_file: AbsolutePath | None = Field(
        default=None,
        description="The audit log's own file (JSON lines); default: along with the rest",
    )


class OperationsSettings(_Strict):
    """Who may read the gateway's internals: `/metrics` and why `/readyz` is not ready
    (README: "Operating jobgate")."""

    allow_from: list[IPvAnyNetwork] = Field(
        default=[IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")],
        description="Addresses (networks) that may; loopback only by default",
    )
    token: SecretStr | None = Field(
        default=None, description="A bearer token that may, from any address"
    )
    metrics: bool = Field(
        default=True,
        description="Serve /metrics and measure every operation; false leaves both out",
    )


class FeedSettings(_Strict):
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    max_queued_events: int = Field(default=1000, ge=1)


class LimitSettings(_Strict):
    """What one request may ask of the gateway (README: "Security"). Every default is safe."""

    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="An HTTP body or WebSocket message (HTTP 413)"
    )
    max_header_bytes: int = Field(default=16_384, ge=1024, description="An HTTP request's head")
    max_tokens: int = Field(default=10_000, ge=100, description="Tokens of one document")
    max_aliases: int = Field(default=50, ge=0, description="Aliased fields of one document")
    max_depth: int = Field(default=15, ge=2, description="Nested fields (introspection aside)")
    max_cost: int = Field(
        default=20_000,
        ge=100,
        description="Fields a document may resolve, a list counted as its `first`",
    )
    max_cached_query_bytes: int = Field(
        default=16_384, ge=0, description="Larger documents are parsed and validated, not kept"
    )
    max_ids: int = Field(
        default=1000, ge=1, description="Ids in a `jobs` filter or a `jobUpdates` subscription"
    )
    init_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A WebSocket not initialised (connection_init acknowledged) by then closes",
    )
    # Per caller: a user, a provider, or (without a token) a client address.
    requests_per_minute: int = Field(
        default=1200, ge=1, description="Requests and subscriptions per caller (HTTP 429)"
    )
    cost_per_minute: int = Field(
        default=300_000, ge=100, description="Cost (as max_cost counts it) per caller"
    )
    max_websockets_per_caller: int = Field(default=100, ge=1)
    max_subscriptions_per_caller: int = Field(default=200, ge=1)
    # The whole gateway.
    max_connections: int = Field(
        default=10_000,
        ge=1,
        description="Open TCP connections; kept reserved_descriptors below the open-file limit",
    )
    reserved_descriptors: int = Field(
        default=256, ge=16, description="Descriptors kept for jobs, the store and log files"
    )
    max_concurrent_requests: int = Field(
        default=256, ge=1, description="HTTP GraphQL requests in flight (HTTP 503 beyond)"
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A connection's request head must arrive within this"
    )
    # Quotas, per user, over the jobs not yet final.
    max_active_jobs_per_user: int = Field(default=1000, ge=1)
    max_active_replicas_per_user: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _cost_fits_a_minute(self) -> LimitSettings:
        if self.cost_per_minute < self.max_cost:
            raise ValueError("cost_per_minute must be at least max_cost")
        return self


class LogSettings(_Strict):
    """Job output kept in memory for `jobLogs` (the whole output stays in the job's files)."""

    tail_lines: int = Field(default=1000, ge=1, description="Lines kept per job")
    max_jobs: int = Field(default=1000, ge=1, description="Jobs whose lines are kept")
    tail_bytes: int = Field(default=1 << 20, ge=1024, description="Bytes of lines kept per job")
    total_bytes: int = Field(
        default=128 << 20, ge=1024, description="Bytes of lines kept for all jobs together"
    )


# Asymmetric signatures only: never `none`, and never HS*, whose key would be the issuer's
# public key, known to everyone (the classic algorithm-confusion forgery).
SIGNING_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip


class OidcSettings(_Strict):
    """Sign-in through the site's OpenID Connect provider (README: "Signing in")."""

    issuer: str = Field(
        pattern=r"^https?://[^\s]+$",
        description="The issuer URL; discovery is <issuer>/.well-known/openid-configuration",
    )
    audience: str = Field(min_length=1, description="The access token's aud (or azp) names it")
    username_claim: str = Field(default="preferred_username", min_length=1)
    groups_claim: str = Field(default="groups", min_length=1)
    algorithms: list[str] = Field(default=list(SIGNING_ALGORITHMS), min_length=1)
    leeway_seconds: float = Field(default=30.0, ge=0, le=300, description="Clock skew allowed")
    jwks_refresh_seconds: float = Field(
        default=30.0,
        ge=1,
        description="At most one fetch of the issuer's keys this often for an unknown key id",
    )
    http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    graphiql_client_id: str | None = Field(
        default=None,
        min_length=1,
        description="A public client of the issuer: GraphiQL signs users in through it (PKCE)",
    )
    unix_user_claim: str | None = Field(
        default=None,
        min_length=1,
        description="A claim naming the user's Unix account, for providers with user_accounts",
    )

    @field_validator("issuer")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        refused = [name for name in value if name not in SIGNING_ALGORITHMS]
        if refused:
            raise ValueError(
                f"{', '.join(refused)}: only {', '.join(SIGNING_ALGORITHMS)} are accepted"
            )
        return value


class AuthSettings(_Strict):
    oidc: OidcSettings | None = None


UnixName = Annotated[str, Field(pattern=f"^{UNIX_NAME.pattern}$")]


class UserSettings(_Strict):
    username: str = Field(pattern=f"^{FOLDER_NAME.pattern}$")
    token: SecretStr
    projects: list[Annotated[str, Field(pattern=f"^{FOLDER_NAME.pattern}$")]] = []
    unix_user: UnixName | None = Field(
        default=None,
        description="The user's Unix account, for providers with user_accounts (README: "
        '"Unix accounts")',
    )

    @field_validator("unix_user")
    @classmethod
    def _not_root(cls, value: str | None) -> str | None:
        if value == "root":
            raise ValueError("jobs never run as root")
        return value


Username = Annotated[str, Field(pattern=f"^{FOLDER_NAME.pattern}$")]


class ProjectSettings(_Strict):
    """A project's roles (README: "Projects, roles and sharing"); members name it themselves."""

    id: str = Field(pattern=f"^{FOLDER_NAME.pattern}$")
    title: str | None = Field(default=None, max_length=200)
    pis: list[Username] = Field(default=[], description="Principal investigators")
    admins: list[Username] = []
    groups: dict[Annotated[str, Field(pattern=f"^{FOLDER_NAME.pattern}$")], list[Username]] = {}

    @field_validator("groups")
    @classmethod
    def _all_is_everyone(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if "all" in value:
            raise ValueError("'all' is every member's group; it is not listed")
        return value


class SupportSettings(_Strict):
    logs: bool = False
    time_extension: bool = Field(default=False, alias="timeExtension")
    suspension: bool = False
    # Interactive sessions (README: "Interactive sessions"), unless `[sessions] enabled = false`.
    web: bool = False
    terminal: bool = False
    vnc: bool = False


class ProductSettings(_Strict):
    name: str = Field(min_length=1)
    category: str = Field(min_length=1)
    description: str | None = None
    cpu: int | None = Field(default=None, ge=0)
    memory_in_gigs: int | None = Field(default=None, ge=0, alias="memoryInGigs")
    gpu: int | None = Field(default=None, ge=0)
    support: SupportSettings = SupportSettings()
    network: bool = Field(
        default=False, description="Whether jobs may use the network (local provider's sandbox)"
    )


class _ProviderBase(_Strict):
    id: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    token: SecretStr | None = None
    products: list[ProductSettings] = Field(min_length=1)
    user_accounts: bool = Field(
        default=False,
        description="Run each job as its user's own Unix account; a user without one is "
        'refused at submit (README: "Unix accounts")',
    )
    unix_user_template: str | None = Field(
        default=None,
        description=f"The account of a user with no unix_user of their own, e.g. "
        f"'{TEMPLATE_PLACEHOLDER}' or 'hpc-{TEMPLATE_PLACEHOLDER}'",
    )

    @field_validator("unix_user_template")
    @classmethod
    def _one_placeholder(cls, value: str | None) -> str | None:
        problem = None if value is None else template_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _template_needs_accounts(self) -> _ProviderBase:
        if self.unix_user_template is not None and not self.user_accounts:
            raise ValueError("unix_user_template is used only with user_accounts = true")
        return self


def _workspace_template(placeholder: str) -> Any:
    def check(template: str | None) -> str | None:
        if template is not None and (placeholder not in template or not os.path.isabs(template)):
            raise ValueError(f"must be an absolute path with {placeholder} in it")
        return template

    return AfterValidator(check)


class WorkspaceOptions(_Strict):
    """Where users' and projects' files are at a provider (README: "Security")."""

    files_root: AbsolutePath | None = Field(
        default=None,
        description="Workspaces are <files_root>/users/<username> and "
        "<files_root>/projects/<project>. Default: <data_dir>/files",
    )
    user_workspace: Annotated[str | None, _workspace_template("{username}")] = Field(
        default=None, description="A personal workspace template instead, e.g. /home/{username}"
    )
    project_workspace: Annotated[str | None, _workspace_template("{project}")] = Field(
        default=None, description="A project workspace template instead, e.g. /work/{project}"
    )


class LocalAdapterOptions(WorkspaceOptions):
    """How the local adapter runs jobs, in a gateway or in an agent."""

    max_concurrent_jobs: int = Field(
        default=64,
        ge=1,
        description="Replicas running at once (a job counts as its replicas); more wait "
        "IN_QUEUE, and a job with more replicas is refused at submit",
    )
    cancel_grace_seconds: float = Field(default=5.0, ge=0)
    sandbox: Literal["bubblewrap", "none"] = Field(
        default="bubblewrap",
        description="'none' runs jobs unconfined, as the run_as user; jobgate warns at start",
    )
    run_as: str | None = Field(
        default=None,
        description="The account jobs run as. Default: 'nobody' when jobgate runs as root, "
        "else jobgate's own account (only root can run jobs as another)",
    )
    read_only_paths: list[AbsolutePath] = Field(
        default=[],
        description="More host folders jobs may read (site software, e.g. /opt/apps), besides "
        "/usr, /etc and the library folders",
    )


class SlurmAdapterOptions(WorkspaceOptions):
    """How the slurm adapter submits and follows jobs, in a gateway or in an agent."""

    partition: str | None = Field(default=None, description="Slurm's default partition if unset")
    account: str | None = None
    workdir: AbsolutePath | None = Field(
        default=None,
        description="Job folders (scripts, output); must be shared with the compute nodes. "
        "Default: <data_dir>/slurm/<id>",
    )
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    submit_concurrency: int = Field(default=8, ge=1)


class LocalProviderSettings(LocalAdapterOptions, _ProviderBase):
    """Subprocesses on the gateway's own host."""

    kind: Literal["local"]


class SlurmProviderSettings(SlurmAdapterOptions, _ProviderBase):
    """A Slurm cluster whose client commands work where the gateway runs."""

    kind: Literal["slurm"]


class RemoteProviderSettings(_ProviderBase):
    """A provider whose `jobgate agent` connects out to the gateway."""

    kind: Literal["remote"]


ProviderSettings = Annotated[
    LocalProviderSettings | SlurmProviderSettings | RemoteProviderSettings,
    Field(discriminator="kind"),
]


class ReconcileSettings(_Strict):
    """UCloud's verify: providers are asked about their active jobs every so often."""

    interval_seconds: float = Field(default=60.0, gt=0)
    grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Jobs younger than this, or updated more recently, are not verified",
    )


class RetentionSettings(_Strict):
    """How long finished work is kept. Unset (the default): everything, for ever."""

    final_jobs_days: float | None = Field(
        default=None,
        gt=0,
        description="A final job is removed, with its updates, this many days after it last "
        "changed (0.5 is twelve hours)",
    )
    update_log_days: float | None = Field(
        default=None,
        gt=0,
        description="Updates older than this many days leave the log (and jobs' histories); "
        "a resume from a cursor before what is kept gets CURSOR_EXPIRED",
    )
    interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often compaction runs (in the background)"
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Entries or jobs removed per write: the longest a writer waits for it",
    )


class HandoverSettings(_Strict):
    """The outbox of jobs stored but not yet handed to their provider."""

    retry_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the gateway hands over what a crash or an outage left behind",
    )


class ParameterSettings(_Strict):
    name: str = Field(pattern=r"^\w+$")
    type: ParameterTypeName
    optional: bool = False
    default: Any = None
    title: str | None = None
    description: str | None = None
    options: list[str] | None = None
    min: float | None = None
    max: float | None = None


class InteractiveSettings(_Strict):
    """How an application serves its users while it runs (README: "Interactive sessions")."""

    web: bool = Field(
        default=False,
        description="It serves a web app on 127.0.0.1:{port} (or says where, in its job folder)",
    )
    vnc: bool = Field(default=False, description="It serves a desktop over VNC on {port}")
    keep_prefix: bool = Field(
        default=False,
        description="Send the web app whole paths, under $JOBGATE_WEB_PREFIX (for apps told "
        "their base path, e.g. JupyterLab's base_url); by default it is served from its root",
    )

    @model_validator(mode="after")
    def _one_interface(self) -> InteractiveSettings:
        if self.web and self.vnc:
            raise ValueError("an application serves a web app or a desktop on its port, not both")
        return self


class ApplicationSettings(_Strict):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    command: list[str] = Field(min_length=1)
    title: str | None = None
    description: str | None = None
    parameters: list[ParameterSettings] = []
    interactive: InteractiveSettings = InteractiveSettings()

    @model_validator(mode="after")
    def _port_is_the_gateways(self) -> ApplicationSettings:
        interactive = self.interactive.web or self.interactive.vnc
        if interactive and any(p.name == PORT_PLACEHOLDER for p in self.parameters):
            raise ValueError(
                f"an interactive application has no parameter '{PORT_PLACEHOLDER}': "
                f"{{{PORT_PLACEHOLDER}}} is the port the gateway gives each of its replicas"
            )
        return self


class SessionSettings(_Strict):
    """Interactive sessions: a running job's web app, a terminal in it, its desktop."""

    enabled: bool = Field(
        default=True,
        description="Serve openInteractiveSessions, /interactive/ and the agents' /relay/ "
        "(for products that support a session type); false leaves all of them out",
    )
    host: str | None = Field(
        default=None,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="Serve each session on a host of its own, <session id>.<host> (a wildcard "
        "DNS name for this gateway, e.g. 'sessions.example.org'), not under the gateway's own "
        "origin: recommended (README: 'Same origin')",
    )
    replica_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/\s]+(/\S*)?$",
        description="Where the other gateway replicas reach this one (e.g. "
        "'http://10.0.0.5:8000'): with it and a shared bus, a remote provider's job's session "
        "used through this replica is relayed by its agent wherever the agent is connected",
    )


class Settings(BaseSettings):
    """Everything jobgate reads at start. Tests build it directly: `Settings(users=[...])`."""

    model_config = SettingsConfigDict(
        env_prefix="JOBGATE_", env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    # The file these were read from: jobs must never see it (it holds tokens).
    _source_file: Path | None = PrivateAttr(default=None)

    @property
    def source_file(self) -> Path | None:
        return self._source_file

    storage: StorageSettings = StorageSettings()
    bus: BusSettings = BusSettings()
    server: ServerSettings = ServerSettings()
    feed: FeedSettings = FeedSettings()
    logs: LogSettings = LogSettings()
    limits: LimitSettings = LimitSettings()
    auth: AuthSettings = AuthSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    handover: HandoverSettings = HandoverSettings()
    retention: RetentionSettings = RetentionSettings()
    sessions: SessionSettings = SessionSettings()
    operations: OperationsSettings = OperationsSettings()
    logging: LoggingSettings = LoggingSettings()
    users: list[UserSettings] = []
    projects: list[ProjectSettings] = []
    providers: list[ProviderSettings] = []
    applications: list[ApplicationSettings] = []

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        _require_unique("users", [u.username for u in self.users])
        _require_unique("projects", [p.id for p in self.projects])
        _require_unique("providers", [p.id for p in self.providers])
        _require_unique("applications", [f"{a.name}@{a.version}" for a in self.applications])
        _require_unique_tokens(self)
        return self


def _require_unique(key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{key}: '{name}' appears more than once")
        seen.add(name)


def _require_unique_tokens(settings: Settings) -> None:
    """Every token, of users and providers alike, names one identity; the error names both
    entries and never the token."""
    holders: dict[str, str] = {}
    entries = (
        [
            (f"users.{index} ({user.username})", user.token)
            for index, user in enumerate(settings.users)
        ]
        + [
            (f"providers.{index} ({provider.id})", provider.token)
            for index, provider in enumerate(settings.providers)
        ]
        + [("operations.token", settings.operations.token)]
    )
    for entry, token in entries:
        if token is None:
            continue
        secret = token.get_secret_value()
        if secret in holders:
            raise ValueError(f"{entry} has the same token as {holders[secret]}")
        holders[secret] = entry


def load_settings(config_file: Path | None = None) -> Settings:
    """Settings from `config_file` (if any) with `JOBGATE_...` variables on top.

    Raises `ConfigError` naming the offending key.
    """
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"cannot read config file {config_file}: {error.strerror}") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{config_file} is not valid TOML: {error}") from error
    try:
        overrides = EnvSettingsSource(Settings)()
    except SettingsError as error:
        raise ConfigError(_describe_environment(error)) from error
    try:
        settings = Settings(**_deep_merge(data, overrides))
    except ValidationError as error:
        raise ConfigError(describe(error)) from error
    settings._source_file = None if config_file is None else _absolute(config_file)
    return settings


def _describe_environment(error: SettingsError) -> str:
    """pydantic-settings names the field whose variable did not parse, in its message."""
    field = str(error).split('field "', 1)[-1].split('"', 1)[0]
    variable = f"JOBGATE_{field.upper()}"
    return f"invalid configuration: {field}: {variable} is not valid JSON"


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# The adapter kinds: pydantic puts the tag of a tagged union into an error's location
# (`providers.0.local.products`), where a user looks for the key they wrote.
_UNION_TAGS = frozenset({"local", "slurm", "remote"})
_MESSAGES = {"extra_forbidden": "unknown key", "missing": "required"}


def describe(error: ValidationError) -> str:
    """A validation error as `key: problem; ...`, naming the offending keys as the user wrote
    them (the tag of a tagged union left out), each problem once."""
    lines: list[str] = []
    for problem in error.errors():
        parts: list[str] = []
        for index, part in enumerate(problem["loc"]):
            previous = problem["loc"][index - 1] if index else None
            if part in _UNION_TAGS and (isinstance(previous, int) or previous == "adapter"):
                continue
            parts.append(str(part))
        if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # The problem is the tag (`kind`), so name that key.
            parts.append(str(problem.get("ctx", {}).get("discriminator", "")).strip("'"))
        message = _MESSAGES.get(problem["type"], problem["msg"])
        message = message.removeprefix("Value error, ")
        line = f"{'.'.join(parts)}: {message}" if parts else message
        if line not in lines:
            lines.append(line)
    return "invalid configuration: " + "; ".join(lines)
