"""Real servers for the tests, started on loopback and stopped by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FERRETDB_BIN = Path(os.environ.get("JOBGATE_FERRETDB_BIN", ROOT / ".test-services/bin/ferretdb"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class LoopbackServer:
    """A server process on a loopback port, stopped by its PID."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _run(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class FerretDB(LoopbackServer):
    """A FerretDB v1 server (SQLite handler) on a loopback port, with its data in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(port)
        self.data_dir = data_dir

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> FerretDB:
        if not FERRETDB_BIN.exists():
            raise RuntimeError(
                f"{FERRETDB_BIN} is missing: run scripts/test, which builds FerretDB, or set "
                "MONGODB_URL to a MongoDB server"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._run(
            [
                str(FERRETDB_BIN),
                "--handler=sqlite",
                f"--sqlite-url=file:{self.data_dir}/",
                f"--listen-addr=127.0.0.1:{self.port}",
                "--telemetry=disable",
                "--debug-addr=-",
                f"--state-dir={self.data_dir}",
            ]
        )
        return self


class RedisServer(LoopbackServer):
    """A throwaway redis-server on a loopback port (no persistence)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: run scripts/test, which installs it")
        self._run(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
        )
        return self
