"""The interactive replicas of local jobs: the port each is given, the bridge in front of a
sandboxed one, and where the gateway reaches each (README: "Interactive sessions").

An interactive application (`interactive = { web = true }`) gets a free port per replica, as
`{port}` in its command and `JOBGATE_PORT` in its environment (a web app also gets
`JOBGATE_WEB_PREFIX`, the path it is served under). Where it runs decides how it is reached:

- in a sandbox without network (the default), it listens on a loopback the gateway cannot reach:
  the bridge (`jobgate.sessions.bridge`) runs in front of it inside the sandbox and listens on
  `interactive/<kind>-<rank>.sock` in the job's folder, a Unix socket only the job's account and
  the gateway may open. A Unix socket rather than a port on the host: no other local user can
  connect to it, and nothing new listens on the host's network;
- on a product with terminals, the bridge runs in front of every job (interactive or not), and
  gives a shell inside the job, as its account, on `interactive/terminal-<rank>.sock`;
- unconfined, or in a sandbox with the host's network, it listens on the host's loopback, where
  the gateway connects to its port;
- an application that picks its own address instead writes it into its job folder, as Open
  OnDemand's apps do (`jobgate.sessions.gate.AddressFiles`).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobgate.domain.catalog import Interfaces
from jobgate.domain.sessions import SessionType
from jobgate.sessions import bridge
from jobgate.sessions.address import ADDRESS_FOLDER, Upstream, session_path

# The bridge as the sandbox sees it, and the Python that runs it there: the sandbox shows the
# host's /usr, not the gateway's virtual environment.
BRIDGE = Path(bridge.__file__)
BRIDGE_IN_SANDBOX = Path("/run/jobgate/bridge.py")
SANDBOX_PYTHON = Path("/usr/bin/python3")


@dataclass(frozen=True, slots=True)
class InteractiveReplicas:
    """How a job's replicas were started for sessions: what the application serves (`kind`,
    WEB or VNC, on each replica's port), whether its port is reached through the bridge
    (`forwarded`), whether the bridge gives terminals, and whether it runs in the sandbox.
    Kept in the job's launch record."""

    kind: SessionType | None
    ports: tuple[int, ...]
    forwarded: bool
    terminal: bool
    sandboxed: bool
    keep_prefix: bool = False

    @classmethod
    def plan(
        cls,
        interfaces: Interfaces,
        replicas: int,
        *,
        sandboxed: bool,
        network: bool,
        terminal: bool,
    ) -> InteractiveReplicas | None:
        """None for a job that serves nothing and may have no terminal: it runs as it is."""
        if not interfaces.any and not terminal:
            return None
        kind = None
        if interfaces.any:
            kind = SessionType.WEB if interfaces.web else SessionType.VNC
        ports = tuple(_free_port() for _ in range(replicas)) if kind is not None else ()
        forwarded = kind is not None and sandboxed and not network
        return cls(kind, ports, forwarded, terminal, sandboxed, interfaces.keep_prefix)

    @property
    def bridged(self) -> bool:
        return self.forwarded or self.terminal

    def record(self) -> dict[str, Any]:
        return {
            "kind": None if self.kind is None else self.kind.value,
            "ports": list(self.ports),
            "forwarded": self.forwarded,
            "terminal": self.terminal,
            "sandboxed": self.sandboxed,
            "keep_prefix": self.keep_prefix,
        }

    @classmethod
    def of_record(cls, record: Any) -> InteractiveReplicas | None:
        if not isinstance(record, dict):
            return None
        kind = record.get("kind")
        return cls(
            None if kind is None else SessionType(kind),
            tuple(record.get("ports", ())),
            bool(record.get("forwarded")),
            bool(record.get("terminal")),
            bool(record.get("sandboxed")),
            bool(record.get("keep_prefix")),
        )

    def environment(self, job_id: str, rank: int) -> dict[str, str]:
        """What a replica learns of its interface, beside `{port}` in its command."""
        if self.kind is None:
            return {}
        env = {"JOBGATE_PORT": str(self.ports[rank])}
        if self.kind is SessionType.WEB:
            env["JOBGATE_WEB_PREFIX"] = session_path(job_id, rank, SessionType.WEB)
        return env

    def port(self, rank: int) -> int | None:
        return self.ports[rank] if self.kind is not None else None

    def replica_argv(self, rank: int, argv: Sequence[str]) -> list[str]:
        """Replica `rank`'s `argv`, behind the bridge where it needs one (run from the job's
        folder, in the sandbox or not)."""
        if not self.bridged:
            return list(argv)
        bridge = BRIDGE_IN_SANDBOX if self.sandboxed else BRIDGE
        args = [str(SANDBOX_PYTHON), str(bridge)]
        if self.forwarded and self.kind is not None:
            args += ["--forward", socket_name(self.kind, rank), str(self.ports[rank])]
        if self.terminal:
            args += ["--terminal", socket_name(SessionType.TERMINAL, rank)]
        return [*args, "--", *argv]

    def upstream(self, job_folder: Path, rank: int, kind: SessionType) -> Upstream | None:
        """Where the gateway reaches replica `rank`'s `kind` (its app, or the bridge's
        terminals); None if it has no such thing, or it does not listen yet."""
        if kind is SessionType.TERMINAL:
            return self._socket(job_folder, kind, rank) if self.terminal else None
        if kind is not self.kind or not 0 <= rank < len(self.ports):
            return None
        strip = not self.keep_prefix
        if not self.forwarded:
            return Upstream(port=self.ports[rank], strip_prefix=strip)
        return self._socket(job_folder, kind, rank, strip_prefix=strip)

    @staticmethod
    def _socket(
        job_folder: Path, kind: SessionType, rank: int, *, strip_prefix: bool = False
    ) -> Upstream | None:
        path = job_folder / socket_name(kind, rank)
        return Upstream(unix_socket=path, strip_prefix=strip_prefix) if path.is_socket() else None


def socket_name(kind: SessionType, rank: int) -> str:
    """The bridge's socket, relative to the job's folder (bound from there: a socket's address
    is limited to 107 bytes, and the folder's own path may be longer)."""
    return f"{ADDRESS_FOLDER}/{kind.value.lower()}-{rank}.sock"


def _free_port() -> int:
    """A port nothing on this host listens on now. In a sandbox of its own any port would do;
    on the host's network it must be free there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
