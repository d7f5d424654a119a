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
    """How a job's interactive replicas were started: the kind they serve, each one's port,
    and whether a bridge stands in front of them. Kept in the job's launch record."""

    kind: SessionType
    ports: tuple[int, ...]
    bridged: bool
    keep_prefix: bool = False

    @classmethod
    def plan(cls, interfaces: Interfaces, replicas: int, *, bridged: bool) -> InteractiveReplicas:
        kind = SessionType.WEB if interfaces.web else SessionType.VNC
        ports = tuple(_free_port() for _ in range(replicas))
        return cls(kind, ports, bridged, interfaces.keep_prefix)

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "ports": list(self.ports),
            "bridged": self.bridged,
            "keep_prefix": self.keep_prefix,
        }

    @classmethod
    def of_record(cls, record: Any) -> InteractiveReplicas | None:
        if not isinstance(record, dict):
            return None
        return cls(
            SessionType(record["kind"]),
            tuple(record["ports"]),
            bool(record["bridged"]),
            bool(record.get("keep_prefix")),
        )

    def environment(self, job_id: str, rank: int) -> dict[str, str]:
        """What a replica learns of its interface, beside `{port}` in its command."""
        env = {"JOBGATE_PORT": str(self.ports[rank])}
        if self.kind is SessionType.WEB:
            env["JOBGATE_WEB_PREFIX"] = session_path(job_id, rank, SessionType.WEB)
        return env

    def bridged_argv(self, rank: int, argv: Sequence[str]) -> list[str]:
        """`argv` behind the bridge, as run inside the sandbox (from the job's folder)."""
        relative = socket_name(self.kind, rank)
        port = str(self.ports[rank])
        return [str(SANDBOX_PYTHON), str(BRIDGE_IN_SANDBOX), relative, port, "--", *argv]

    def upstream(self, job_folder: Path, rank: int, kind: SessionType) -> Upstream | None:
        """Where the gateway reaches replica `rank`'s server of `kind`; None if it serves no
        such thing, or (bridged) its bridge does not listen yet."""
        if kind is not self.kind or not 0 <= rank < len(self.ports):
            return None
        strip = not self.keep_prefix
        if not self.bridged:
            return Upstream(port=self.ports[rank], strip_prefix=strip)
        path = job_folder / socket_name(self.kind, rank)
        return Upstream(unix_socket=path, strip_prefix=strip) if path.is_socket() else None


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
