"""The gateway setup for Slurm tests: provider `hpc` on the test cluster, as in the issue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobgate.settings import Settings
from tests.api.documents import job_spec
from tests.gateway import gateway_settings

HPC = "hpc-secret"
FULL_SUPPORT = {"logs": True, "timeExtension": True, "suspension": True}


def hpc_provider(**overrides: Any) -> dict[str, Any]:
    """The `[[providers]]` entry from the issue, polling quickly for tests."""
    provider: dict[str, Any] = {
        "id": "hpc",
        "kind": "slurm",
        "token": HPC,
        "partition": "debug",
        "poll_interval_seconds": 0.3,
        "products": [
            {
                "name": "hpc-cpu",
                "category": "cpu",
                "cpu": 1,
                "memoryInGigs": 1,
                "support": FULL_SUPPORT,
            },
            {"name": "hpc-basic", "category": "cpu", "cpu": 1},
            # More CPUs per task than the test node has: Slurm refuses it at submit.
            {"name": "hpc-huge", "category": "cpu", "cpu": 512},
        ],
    }
    provider.update(overrides)
    return provider


def slurm_settings(data_dir: Path, storage_url: str, **overrides: Any) -> Settings:
    """The test gateway with provider `hpc` only; `overrides` are top-level settings."""
    return gateway_settings(data_dir, storage_url, providers=[hpc_provider()], **overrides)


def hpc_spec(
    app: str = "echo",
    product: str = "hpc-cpu",
    *,
    minutes: int | None = None,
    replicas: int | None = None,
    name: str | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    """A job for provider `hpc`, with a time allocation of `minutes` if given."""
    spec = job_spec(app, provider="hpc", product=product, name=name, **parameters)
    if minutes is not None:
        spec["timeAllocation"] = {"hours": minutes // 60, "minutes": minutes % 60, "seconds": 0}
    if replicas is not None:
        spec["replicas"] = replicas
    return spec
