"""The interactive side of Slurm jobs: an interactive application's tasks run behind the bridge
(`jobgate.sessions.bridge`, `--on-node`), which picks each task's port on its node, tells the
gateway where it listens in the job's folder, and lets through only connections that bring the
job's secret. The job's folder (on the shared file system) holds the bridge's copy, the secret
(readable by the job's account and the gateway only) and the address files.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from jobgate.domain.catalog import Interfaces
from jobgate.domain.job import Job
from jobgate.domain.sessions import SessionType
from jobgate.sessions import bridge
from jobgate.sessions.address import ADDRESS_FOLDER, Upstream, session_path
from jobgate.sessions.forwarder import Target
from jobgate.unix import Account

# Left in the command for the bridge to fill in with the port it picks on the node.
PORT = "{port}"
BRIDGE_COPY = "jobgate-bridge.py"
SECRET_FILE = "job-secret"  # noqa: S105 (the name of the file that holds it)


def on_node(job: Job, folder: Path, interfaces: Interfaces, argv: list[str]) -> list[str]:
    """`argv` (with `{port}` in it) behind the bridge, for each of the job's tasks."""
    kind = SessionType.WEB if interfaces.web else SessionType.VNC
    name = kind.value.lower()
    sessions = folder / ADDRESS_FOLDER
    wrapper = [
        "python3",
        str(folder / BRIDGE_COPY),
        "--on-node",
        name,
        "--address-file",
        str(sessions / f"{name}-{{rank}}.json"),
        "--secret-file",
        str(sessions / SECRET_FILE),
    ]
    if kind is SessionType.WEB:
        wrapper += ["--web-prefix", session_path(job.id, "{rank}", kind)]
        if interfaces.keep_prefix:
            wrapper.append("--keep-prefix")
    return [*wrapper, "--", *argv]


def prepare_folder(folder: Path, account: Account | None) -> None:
    """The bridge's copy and a new secret in the job's folder (the job's account's)."""
    shutil.copyfile(bridge.__file__, folder / BRIDGE_COPY)
    sessions = folder / ADDRESS_FOLDER
    sessions.mkdir(mode=0o700, exist_ok=True)
    secret = sessions / SECRET_FILE
    descriptor = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(32))
    if account is not None:
        for path in (folder / BRIDGE_COPY, sessions, secret):
            os.chown(path, account.uid, account.gid)


def node_target(folder: Path, announced: Upstream) -> Target | None:
    """Where a task's bridge listens (as it announced), with the job's secret."""
    try:
        secret = (folder / ADDRESS_FOLDER / SECRET_FILE).read_bytes().strip()
    except OSError:
        return None
    if announced.port is None or not secret:
        return None  # a bridge on a node announces a port, never a socket
    return Target(announced.host, announced.port, secret)
