"""Fixtures shared by every suite: the real MongoDB-compatible server and per-test stores."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from jobgate.storage.base import JobStore
from jobgate.storage.mongo import MongoJobStore
from jobgate.storage.sqlite import SqliteJobStore
from tests.gateway import Gateway, gateway_settings, running_gateway
from tests.servers import FerretDB, Keycloak, RedisServer, SlurmCluster, fresh_database
from tests.unix_accounts import shared_folder, unix_accounts

__all__ = ["shared_folder", "unix_accounts"]  # fixtures for every suite

STORE_KINDS = ["sqlite", "mongo"]


# What a failed test shows of the servers it started: their logs are files in its tmp_path,
# which a CI run on another machine does not keep. The lines that tell what went wrong.
LOG_EXCERPT_CHARS = 8000
LEVEL = re.compile(r"\b(ERROR|CRITICAL)\b")


def telling_lines(lines: list[str]) -> list[str]:
    """ERROR and CRITICAL lines, and every traceback whole (to its exception's line)."""
    kept: list[str] = []
    in_traceback = False
    for line in lines:
        if "Traceback (most recent call last)" in line:
            in_traceback = True
            kept.append(line)
        elif in_traceback:
            kept.append(line)
            # The exception's own line is the first one not indented (chained ones follow it).
            in_traceback = line.startswith((" ", "\t")) or not line.strip()
        elif LEVEL.search(line):
            kept.append(line)
    return kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and isinstance(tmp_path, Path):
        for log_file in sorted(tmp_path.rglob("*.log"))[:10]:
            lines = log_file.read_text(errors="replace").splitlines()
            if telling := telling_lines(lines):
                excerpt = "\n".join(telling)[-LOG_EXCERPT_CHARS:]
                report.sections.append((f"errors in {log_file.relative_to(tmp_path)}", excerpt))
    return report


@pytest.fixture(autouse=True)
def stop_leftover_jobs(tmp_path: Path) -> Iterator[None]:
    """Local jobs outlive their gateway by design; a test's own end with it. Each test's job
    folders are under its `tmp_path`: their supervisors' process groups are killed after it."""
    yield
    for record in tmp_path.rglob("supervisor.json"):
        for name in ("supervisor.json", "processes.json"):
            with contextlib.suppress(OSError, ValueError):
                entries = json.loads((record.parent / name).read_text())
                for entry in entries if isinstance(entries, list) else [entries]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(entry["pid"], signal.SIGKILL)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`MONGODB_URL` if set (a real mongod), else a FerretDB v1 started for this session."""
    url = os.environ.get("MONGODB_URL")
    if url:
        yield url.rstrip("/")
        return
    server = FerretDB(tmp_path_factory.mktemp("ferretdb")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server on loopback, stopped by its PID after the test."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycloak]:
    """A real Keycloak with the tests' realm, started once for the session (it is slow to
    start) and stopped by its process group."""
    server = Keycloak(tmp_path_factory.mktemp("keycloak") / "keycloak.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=STORE_KINDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store of each kind."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/jobgate.db"
    server: str = request.getfixturevalue("mongo_server")
    return fresh_database(server)


@pytest.fixture
async def store(storage_url: str) -> AsyncIterator[JobStore]:
    opened: JobStore
    if storage_url.startswith("sqlite://"):
        opened = SqliteJobStore(Path(storage_url.removeprefix("sqlite://")))
    else:
        opened = MongoJobStore(storage_url, server_selection_timeout_ms=3000)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def gateway(storage_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway on each store kind, with the test users, providers and applications."""
    async with running_gateway(gateway_settings(tmp_path / "data", storage_url)) as running:
        yield running


@pytest.fixture
async def sqlite_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway on SQLite, for behaviour that does not depend on the store."""
    url = f"sqlite://{tmp_path}/jobgate.db"
    async with running_gateway(gateway_settings(tmp_path / "data", url)) as running:
        yield running


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """slurmctld + slurmd on loopback; `SLURM_CONF` points this process's clients at it."""
    # Not under pytest's folders, which are root's alone: every account reads slurm.conf, as
    # on a cluster, so jobs run as users' own accounts (`tests/slurm/test_slurm_accounts.py`).
    root = Path(tempfile.mkdtemp(prefix="jobgate-slurm-"))
    root.chmod(0o755)
    cluster = SlurmCluster(root).start()
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture
def clean_queue(slurm: SlurmCluster) -> Iterator[SlurmCluster]:
    """The cluster, with every job a test left behind cancelled afterwards."""
    yield slurm
    slurm.cancel_all()
