"""Provider adapters from their settings: what a gateway's `[[providers]]` entry and an
agent's `[adapter]` share. It imports no store and no GraphQL, so the agent can use it alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jobgate.domain.catalog import ComputeSupport, Product
from jobgate.providers.local import LocalProvider
from jobgate.providers.sandbox import Bubblewrap, job_account
from jobgate.providers.slurm import SlurmProvider
from jobgate.providers.workspace import WorkspaceLayout
from jobgate.settings import (
    LocalAdapterOptions,
    ProviderSettings,
    SlurmAdapterOptions,
    WorkspaceOptions,
)


def products_of(provider: ProviderSettings) -> list[Product]:
    return [
        Product(
            name=p.name,
            category=p.category,
            provider=provider.id,
            description=p.description,
            cpu=p.cpu,
            memory_in_gigs=p.memory_in_gigs,
            gpu=p.gpu,
            network=p.network,
            support=ComputeSupport(
                logs=p.support.logs,
                time_extension=p.support.time_extension,
                suspension=p.support.suspension,
                web=p.support.web,
                terminal=p.support.terminal,
                vnc=p.support.vnc,
            ),
        )
        for p in provider.products
    ]


def workspace_layout(options: WorkspaceOptions) -> WorkspaceLayout:
    return WorkspaceLayout(options.files_root, options.user_workspace, options.project_workspace)


def local_adapter(
    provider_id: str,
    products: list[Product],
    options: LocalAdapterOptions,
    *,
    private: Sequence[Path] = (),
) -> LocalProvider:
    """A local adapter, for a gateway's `[[providers]]` entry or an agent's `[adapter]`.

    `private` are files its jobs must never see besides the data folder (the config file).
    Raises `ConfigError` when the sandbox cannot be had (bubblewrap missing, `run_as` wrong).
    """
    account = job_account(options.run_as)
    bubblewrap = None
    if options.sandbox == "bubblewrap":
        hidden = [*private, *workspace_layout(options).roots()]
        bubblewrap = Bubblewrap.find(account, hidden, options.read_only_paths)
    return LocalProvider(
        provider_id,
        products,
        max_concurrent_jobs=options.max_concurrent_jobs,
        cancel_grace_seconds=options.cancel_grace_seconds,
        sandbox=bubblewrap,
        account=account,
        layout=workspace_layout(options),
    )


def slurm_adapter(
    provider_id: str, products: list[Product], options: SlurmAdapterOptions, *, workdir: Path | None
) -> SlurmProvider:
    """A slurm adapter, for a gateway's `[[providers]]` entry or an agent's `[adapter]`."""
    return SlurmProvider(
        provider_id,
        products,
        partition=options.partition,
        account=options.account,
        workdir=workdir,
        poll_interval_seconds=options.poll_interval_seconds,
        submit_concurrency=options.submit_concurrency,
        layout=workspace_layout(options),
    )
