"""A real single-node Slurm for the slurm adapter's tests, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.services import SlurmCluster


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """slurmctld + slurmd on loopback; `SLURM_CONF` points this process's clients at it."""
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture
def clean_queue(slurm: SlurmCluster) -> Iterator[SlurmCluster]:
    """The cluster, with every job a test left behind cancelled afterwards."""
    yield slurm
    slurm.cancel_all()
