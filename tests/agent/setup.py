"""A gateway with a remote provider and `jobgate agent` processes for it, as an operator runs them."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.processes import JOBGATE

EDGE = "edge-secret"

GATEWAY_CONFIG = """
[server]
data_dir = "{data}"

[storage]
url = "{storage}"
server_selection_timeout_ms = 2000

[feed]
poll_interval_seconds = 0.5

[reconcile]
interval_seconds = {reconcile}
grace_seconds = 0

[[users]]
username = "alice"
token = "alice-secret"
projects = ["proj-a"]

[[providers]]
id = "edge"
kind = "remote"
token = "{token}"
{provider_extra}

[[providers.products]]
name = "edge-cpu"
category = "cpu"
cpu = 1
memoryInGigs = 1
support = {{ logs = true, timeExtension = true, suspension = true }}

[[providers.products]]
name = "edge-net"
category = "cpu"
network = true

[[applications]]
name = "probe"
version = "1"
command = ["bash", "-c", "echo > /dev/tcp/127.0.0.1/$0 && echo reached", "{{port}}"]
parameters = [{{ name = "port", type = "integer" }}]

[[applications]]
name = "echo"
version = "1"
command = ["echo", "{{message}}"]
parameters = [{{ name = "message", type = "text" }}]

[[applications]]
name = "whoami"
version = "1"
command = ["id", "-un"]

[[applications]]
name = "sleep"
version = "1"
command = ["sleep", "{{seconds}}"]
parameters = [{{ name = "seconds", type = "integer", default = 30 }}]
"""

AGENT_CONFIG = """
[adapter]
kind = "{kind}"
workdir = "{workdir}"
{extra}
"""


def write_gateway_config(
    folder: Path,
    *,
    reconcile_seconds: float = 3600,
    storage: str | None = None,
    provider_extra: str = "",
) -> Path:
    """The gateway's config; its store is `folder/jobgate.db` unless `storage` names one;
    `provider_extra` are more keys of provider `edge`."""
    path = folder / "gateway.toml"
    path.write_text(
        GATEWAY_CONFIG.format(
            data=folder / "data",
            storage=storage or f"sqlite://{folder / 'jobgate.db'}",
            token=EDGE,
            reconcile=reconcile_seconds,
            provider_extra=provider_extra,
        )
    )
    return path


def write_agent_config(folder: Path, kind: str, workdir: Path | None = None) -> Path:
    """The agent's config; its jobs' folders are `workdir`, else `folder/agent-work`."""
    extra = 'partition = "debug"\npoll_interval_seconds = 0.3' if kind == "slurm" else ""
    path = folder / "agent.toml"
    workdir = workdir or folder / "agent-work"
    path.write_text(AGENT_CONFIG.format(kind=kind, workdir=workdir, extra=extra))
    return path


class AgentProcess:
    """`jobgate agent --gateway URL --token T --config agent.toml`, output in `agent.log`."""

    def __init__(self, config: Path, gateway_url: str, token: str = EDGE) -> None:
        self.config = config
        self.gateway_url = gateway_url
        self.token = token
        self.log_file = config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(JOBGATE),
                    "agent",
                    "--gateway",
                    self.gateway_url,
                    "--token",
                    self.token,
                    "--config",
                    str(self.config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
            )
        return self

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(20)
        self.process = None

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")
