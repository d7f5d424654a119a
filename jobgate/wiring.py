"""Building the parts from settings: catalog, store, providers and identities."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobgate.access import Identity, Project, Projects, ProviderIdentity
from jobgate.auth import Authenticator
from jobgate.domain.catalog import (
    Application,
    ApplicationParameter,
    Catalog,
    Interfaces,
    ParameterType,
)
from jobgate.domain.values import (
    BooleanValue,
    FileValue,
    FloatingPointValue,
    IntegerValue,
    ModulesValue,
    ParameterValue,
    TextValue,
)
from jobgate.errors import ConfigError
from jobgate.events.commands import CommandSignal
from jobgate.oidc import OidcVerifier
from jobgate.providers.base import ProviderAdapter
from jobgate.providers.factory import local_adapter, products_of, slurm_adapter
from jobgate.providers.remote import RemoteProvider
from jobgate.sessions.relay import RelayHub
from jobgate.settings import (
    ApplicationSettings,
    LocalProviderSettings,
    ProviderSettings,
    RemoteProviderSettings,
    Settings,
    SlurmProviderSettings,
)
from jobgate.storage.base import JobStore
from jobgate.storage.mongo import MongoJobStore
from jobgate.storage.sqlite import SqliteJobStore
from jobgate.unix import UnixAccountRule, can_switch_accounts


def build_store(settings: Settings) -> JobStore:
    path = sqlite_path(settings)
    if path is None:
        return MongoJobStore(
            settings.storage.url,
            server_selection_timeout_ms=settings.storage.server_selection_timeout_ms,
        )
    return SqliteJobStore(path)


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite store's file; None when the store is MongoDB."""
    url = settings.storage.url
    if url.startswith("mongodb"):
        return None
    if not url:
        return settings.server.data_dir / "jobgate.db"
    # sqlite:///var/lib/x.db is an absolute path; sqlite://data/x.db a relative one.
    return Path(url.removeprefix("sqlite://")).absolute()


@dataclass(frozen=True, slots=True)
class CommandQueue:
    """What remote providers need to store commands and wake agents' streams (and, with
    sessions, to relay them through their agents)."""

    store: JobStore
    signal: CommandSignal
    ring: Callable[[], None]
    clock: Callable[[], int]
    relays: RelayHub | None = None


def build_providers(settings: Settings, commands: CommandQueue) -> list[ProviderAdapter]:
    private = [] if settings.source_file is None else [settings.source_file]
    return [build_adapter(provider, commands, private) for provider in settings.providers]


def build_adapter(
    provider: ProviderSettings, commands: CommandQueue | None, private: Sequence[Path] = ()
) -> ProviderAdapter:
    """The adapter for one `[[providers]]` entry (remote ones need the gateway's `commands`);
    `private` are files its jobs must never see (the config file)."""
    products = products_of(provider)
    match provider:
        case RemoteProviderSettings() if commands is not None:
            return RemoteProvider(
                provider.id,
                products,
                store=commands.store,
                signal=commands.signal,
                ring=commands.ring,
                clock=commands.clock,
                relays=commands.relays,
            )
        case LocalProviderSettings():
            return local_adapter(provider.id, products, provider, private=private)
        case SlurmProviderSettings():
            return slurm_adapter(provider.id, products, provider, workdir=provider.workdir)
    raise ConfigError(f"providers: kind '{provider.kind}' cannot run here")


def build_unix_accounts(settings: Settings) -> dict[str, UnixAccountRule]:
    """By provider id, how each provider with `user_accounts` picks a job's Unix account.

    Raises `ConfigError` for an adapter in this gateway that could not switch accounts.
    """
    rules: dict[str, UnixAccountRule] = {}
    for index, provider in enumerate(settings.providers):
        if not provider.user_accounts:
            continue
        here = not isinstance(provider, RemoteProviderSettings)
        if here and not can_switch_accounts():
            raise ConfigError(
                f"providers.{index}.user_accounts: running jobs as their users' accounts "
                "needs jobgate to run as root"
            )
        if isinstance(provider, SlurmProviderSettings) and shutil.which("runuser") is None:
            raise ConfigError(
                f"providers.{index}.user_accounts: Slurm jobs are submitted through runuser "
                "(Debian: util-linux), which is not installed"
            )
        rules[provider.id] = UnixAccountRule(provider.unix_user_template, checked_here=here)
    return rules


def build_catalog(settings: Settings) -> Catalog:
    applications = [_application(index, app) for index, app in enumerate(settings.applications)]
    products = [product for p in settings.providers for product in products_of(p)]
    return Catalog(applications, products)


def build_projects(settings: Settings) -> Projects:
    return Projects(
        Project(
            p.id,
            p.title,
            frozenset(p.pis),
            frozenset(p.admins),
            tuple((name, frozenset(names)) for name, names in sorted(p.groups.items())),
        )
        for p in settings.projects
    )


def build_authenticator(settings: Settings) -> Authenticator:
    projects = build_projects(settings)
    tokens: dict[str, Identity] = {}
    for user in settings.users:
        tokens[user.token.get_secret_value()] = projects.user(
            user.username, user.projects, user.unix_user
        )
    for provider in settings.providers:
        if provider.token is not None:
            tokens[provider.token.get_secret_value()] = ProviderIdentity(provider.id)
    # Settings refuse a repeated token, so no identity can shadow another here.
    assert len(tokens) == len(settings.users) + sum(p.token is not None for p in settings.providers)
    oidc = settings.auth.oidc
    return Authenticator(tokens, None if oidc is None else OidcVerifier(oidc), projects)


def _application(index: int, app: ApplicationSettings) -> Application:
    parameters = []
    for number, p in enumerate(app.parameters):
        kind = ParameterType(p.type.upper())
        default = None
        if p.default is not None:
            try:
                default = _default_value(kind, p.default)
            except (TypeError, ValueError) as error:
                key = f"applications.{index}.parameters.{number}.default"
                raise ConfigError(f"{key}: {error}") from error
        parameters.append(
            ApplicationParameter(
                name=p.name,
                type=kind,
                optional=p.optional,
                default=default,
                title=p.title,
                description=p.description,
                options=None if p.options is None else tuple(p.options),
                min=p.min,
                max=p.max,
            )
        )
    return Application(
        name=app.name,
        version=app.version,
        command=tuple(app.command),
        parameters=tuple(parameters),
        title=app.title,
        description=app.description,
        interactive=Interfaces(
            web=app.interactive.web,
            vnc=app.interactive.vnc,
            keep_prefix=app.interactive.keep_prefix,
        ),
    )


def _default_value(kind: ParameterType, raw: Any) -> ParameterValue:
    match kind:
        case ParameterType.TEXT | ParameterType.TEXTAREA | ParameterType.ENUMERATION:
            if not isinstance(raw, str):
                raise TypeError("a text default must be a string")
            return TextValue(raw)
        case ParameterType.INTEGER:
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise TypeError("an integer default must be a whole number")
            return IntegerValue(raw)
        case ParameterType.FLOATING_POINT:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise TypeError("a floating_point default must be a number")
            return FloatingPointValue(float(raw))
        case ParameterType.BOOLEAN:
            if not isinstance(raw, bool):
                raise TypeError("a boolean default must be true or false")
            return BooleanValue(raw)
        case ParameterType.INPUT_FILE | ParameterType.INPUT_DIRECTORY:
            if not isinstance(raw, str):
                raise TypeError("a file default must be a path")
            return FileValue(raw)
        case ParameterType.MODULE_LIST:
            if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
                raise TypeError("a module_list default must be a list of strings")
            return ModulesValue(tuple(raw))
    raise ValueError(f"parameters of type {kind.lower()} cannot have a default")
