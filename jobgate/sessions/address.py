"""Where a session's server is, and where the gateway serves it.

A session is served at `/interactive/<job>/<rank>/<kind>/` on the gateway (`session_path`); the
job's server listens at an `Upstream` (a TCP port, or a Unix socket). A provider adapter that
can say where its jobs' servers are is a `Locator`; jobs may also say it themselves, in their
folder (`AddressFiles`). Nothing here needs the gateway's own parts: an agent's adapters use it too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from jobgate.domain.job import Job
from jobgate.domain.sessions import SessionType

# Where a session is served: a folder per replica and kind, so a web app's own paths never
# meet the terminal's or the desktop's. `session_path` writes it, `SESSION_PATH` reads it.
SESSION_PATH = re.compile(r"^/interactive/(\d{1,18})/(\d{1,4})/(web|terminal|vnc)/")


def session_path(job_id: str, rank: int | str, kind: SessionType) -> str:
    """The folder on the gateway where a session of this kind of this replica is served (with
    `rank` "{rank}": a template, for a bridge that learns its rank where it runs)."""
    return f"/interactive/{job_id}/{rank}/{kind.value.lower()}/"


# The folder, in a job's folder, where a job's servers say where they listen (`AddressFiles`).
ADDRESS_FOLDER = "interactive"


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where a job's server listens: a TCP port on `host`, or a Unix socket; for a terminal,
    also a `command` the gateway runs on a pseudo-terminal of its own (Slurm's `srun --pty`
    into the job's allocation), with `environment` its whole environment."""

    host: str = "127.0.0.1"
    port: int | None = None
    unix_socket: Path | None = None
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    # Whether the app is served from its root (`/`); an app that knows its prefix (JupyterLab's
    # base_url = $JOBGATE_WEB_PREFIX) serves under `session_path` instead (see `PathMap`).
    strip_prefix: bool = False

    def __post_init__(self) -> None:
        given = [self.port, self.unix_socket, self.command]
        if sum(part is not None for part in given) != 1:
            raise ValueError("an upstream is a TCP port, a Unix socket or a command, one only")

    @property
    def authority(self) -> str:
        return "localhost" if self.port is None else f"{self.host}:{self.port}"


@runtime_checkable
class Locator(Protocol):
    async def upstream(self, job: Job, rank: int, kind: SessionType) -> Upstream | None:
        """Where this replica's server of `kind` listens now; None while it does not (yet)."""


@dataclass(frozen=True, slots=True)
class AddressFiles:
    """Jobs tell where they listen as Open OnDemand's batch-connect apps do: by writing
    `<job folder>/interactive/<kind>-<rank>.json` once listening, either `{"port": 8888}`
    (on `"host"`, default 127.0.0.1) or `{"socket": "web.sock"}` (a Unix socket, relative to
    the job folder), and `"keep_prefix": true` for an app that serves under its prefix (by
    default it is sent paths from its root). `folder_of` gives a job's folder on this host
    (None: not here)."""

    folder_of: Callable[[Job], Path | None]

    async def upstream(self, job: Job, rank: int, kind: SessionType) -> Upstream | None:
        folder = self.folder_of(job)
        if folder is None:
            return None
        try:
            address = json.loads(
                (folder / ADDRESS_FOLDER / f"{kind.value.lower()}-{rank}.json").read_text()
            )
        except (OSError, ValueError):
            return None
        if not isinstance(address, dict):
            return None
        socket, port = address.get("socket"), address.get("port")
        strip = address.get("keep_prefix") is not True
        if isinstance(socket, str):
            path = (folder / socket).resolve()
            # The job's own folder only: an address file cannot point the gateway elsewhere.
            inside = folder.resolve() in path.parents
            return Upstream(unix_socket=path, strip_prefix=strip) if inside else None
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            host = address.get("host", "127.0.0.1")
            if not isinstance(host, str):
                return None
            return Upstream(host=host, port=port, strip_prefix=strip)
        return None


# A Unix socket's address holds at most 107 bytes; job folders can be deeper than that.
MAX_SOCKET_PATH = 100


def connectable_path(path: Path) -> tuple[int | None, str]:
    """A path to the socket that fits in a socket address: itself, or (when too long) through
    its folder opened here, `/proc/self/fd/<n>/<name>` (the caller closes `<n>` after its last
    connect)."""
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return None, str(path)
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return folder, f"/proc/self/fd/{folder}/{path.name}"
