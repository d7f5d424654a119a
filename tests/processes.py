"""`jobgate serve` as a separate process, configured by a TOML file the way an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.gateway import ALICE, GraphQLClient
from tests.servers import free_port, wait_for_port

JOBGATE = Path(sys.executable).parent / "jobgate"

CONFIG = """
[server]
data_dir = "{data}"
{server}

[storage]
url = "{storage}"
server_selection_timeout_ms = 1500

[bus]
url = "{bus}"

[feed]
poll_interval_seconds = {poll}

[[users]]
username = "alice"
token = "alice-secret"
projects = ["proj-a"]

[[users]]
username = "bob"
token = "bob-secret"
projects = ["proj-b"]

[[providers]]
id = "local"
kind = "local"
token = "provider-secret"

[[providers.products]]
name = "cpu-small"
category = "cpu"
cpu = 1
memoryInGigs = 1
support = {{ logs = true, timeExtension = true, suspension = false }}

[[applications]]
name = "echo"
version = "1"
command = ["echo", "{{message}}"]
parameters = [{{ name = "message", type = "text" }}]

[[applications]]
name = "sleep"
version = "1"
command = ["sleep", "{{seconds}}"]
parameters = [{{ name = "seconds", type = "integer" }}]
"""


def write_config(
    path: Path,
    *,
    data_dir: Path,
    storage: str,
    bus: str = "memory://",
    poll: float = 1.0,
    server: str = "",
    extra: str = "",
) -> Path:
    """The test config, with `server` lines in its `[server]` table and `extra` TOML (more
    tables) after it. An empty `storage` is the data folder's SQLite file."""
    text = CONFIG.format(data=data_dir, storage=storage, bus=bus, poll=poll, server=server)
    path.write_text(text + extra)
    return path


class ServeProcess:
    """`jobgate serve --config FILE --port P`; its output goes to `log_file`."""

    def __init__(self, config: Path, log_file: Path | None = None) -> None:
        self.config = config
        self.port = free_port()
        self.log_file = log_file or config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def start(
        self,
        token: str = ALICE,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> GraphQLClient:
        """Start it (with `env` on top of this process's environment, and `preexec` run in the
        child before it starts) and wait for its port."""
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [str(JOBGATE), "serve", "--config", str(self.config), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if env is None else {**os.environ, **env},
                preexec_fn=preexec,
            )
        wait_for_port(self.port)
        return self.client(token)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def client(self, token: str = ALICE) -> GraphQLClient:
        return GraphQLClient(self.url, token)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(20)

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")
