"""Unix accounts the tests run jobs as, made with `useradd` for the run and removed after it,
and a folder every account can reach (a cluster's shared file system)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobgate.unix import Account, host_account

# The test users' accounts: alice's and bob's come from a template ("jgt-{username}"), erin's
# is mapped to a user by name (a static `unix_user`, or Keycloak's claim).
TEST_ACCOUNTS = ("jgt-alice", "jgt-bob", "jgt-erin")
# Debian's shadow tools (package passwd), at the paths it installs them.
USERADD, USERDEL, NOLOGIN = "/usr/sbin/useradd", "/usr/sbin/userdel", "/usr/sbin/nologin"


@pytest.fixture(scope="session")
def unix_accounts() -> Iterator[dict[str, Account]]:
    """The test accounts by name; those this run made are removed at its end."""
    made: list[str] = []
    for name in TEST_ACCOUNTS:
        if host_account(name) is None:
            command = ["--system", "--user-group", "--no-create-home", "--shell", NOLOGIN, name]
            subprocess.run([USERADD, *command], check=True, capture_output=True)
            made.append(name)
    accounts = {name: host_account(name) for name in TEST_ACCOUNTS}
    try:
        yield {name: account for name, account in accounts.items() if account is not None}
    finally:
        for name in made:
            subprocess.run([USERDEL, name], check=False, capture_output=True)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every account may pass through (pytest's own are root's alone), for job
    folders and workspaces of jobs that run as users' accounts."""
    folder = Path(tempfile.mkdtemp(prefix="jobgate-shared-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
