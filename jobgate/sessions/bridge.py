"""The bridge between a local job and the gateway's sessions (standard library only).

A job of the local provider runs in a sandbox with a network namespace of its own: its web app
listens on 127.0.0.1:{port} *there*, where the gateway cannot connect, and a shell for its user
must start inside the same sandbox, as the job's account. This program runs inside the sandbox,
in front of the job's program: it starts the program, and listens on Unix sockets in the job's
folder (which the gateway sees too; mode 0600, so only the job's account and the gateway can
connect):

- `--forward SOCKET PORT`: each connection is carried to the app's port;
- `--terminal SOCKET`: each connection gets a shell of its own on a new pseudo-terminal, spoken
  to in frames (`FRAME`): DATA both ways, RESIZE from the gateway, EXIT (the shell's exit code)
  to it.

On a cluster's compute node (`--on-node`, one bridge per Slurm task) there is no folder the
gateway can open a socket in: the bridge gives the app a free port of the node (`{port}` in its
arguments, `$JOBGATE_PORT`), listens on the node's network for the gateway, and writes where
(`--address-file`, `{"host": ..., "port": ...}`) in the job's folder. Every connection must
first send the job's secret (`--secret-file`, which only the job's account and the gateway can
read) and a newline, or it is closed: no one else on the cluster's network reaches the app.

It ends with the program, with its exit code, and takes its shells with it. It is run by the
system's Python (`/usr/bin/python3`), not the gateway's: the gateway's virtual environment is
not visible inside the sandbox, so this file imports nothing of jobgate.

    python3 bridge.py [--forward SOCKET PORT] [--terminal SOCKET] -- PROGRAM [ARGUMENT...]
    python3 bridge.py --on-node web|vnc --address-file FILE --secret-file FILE
                      [--web-prefix PREFIX] [--keep-prefix] -- PROGRAM [ARGUMENT...]

(`{rank}` in FILE and PREFIX is the task's rank, `$SLURM_PROCID`.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import hmac
import json
import os
import pty
import shutil
import signal
import socket
import struct
import sys
import termios
from collections.abc import Mapping, Sequence

CHUNK = 64 * 1024
# A frame: its kind (one byte) and its payload's size (4 bytes, big-endian), then the payload.
FRAME = struct.Struct("!cI")
DATA, RESIZE, EXIT = b"d", b"r", b"x"
RESIZE_PAYLOAD = struct.Struct("!HH")  # columns, rows
EXIT_PAYLOAD = struct.Struct("!i")
MAX_FRAME = 1 << 20
PR_SET_PDEATHSIG = 1


# --- forwarding ---------------------------------------------------------------------------------


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes from `reader` to `writer` until the end, which passes on as a half-close."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close passes on (an HTTP client may close its side)
    except (ConnectionError, OSError):
        writer.close()


async def _carry(port: int, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
    try:
        app, to_app = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        to_client.close()  # the app does not listen yet: the gateway says so to the browser
        return
    try:
        await asyncio.gather(pipe(client, to_app), pipe(app, to_client))
    finally:
        for writer in (to_app, to_client):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


# --- terminals ----------------------------------------------------------------------------------


def _shell() -> list[str]:
    for candidate in ("/bin/bash", "/bin/sh"):
        if os.access(candidate, os.X_OK):
            return [candidate]
    return [shutil.which("sh") or "sh"]


def _as_terminal_session() -> None:
    """In the shell's process, before it starts: the pseudo-terminal becomes its controlling
    terminal, and it dies with the bridge (unconfined, nothing else would end it)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Terminals:
    """The shells of `--terminal` connections, each on a pseudo-terminal of its own: `command`
    (a shell by default) with `environment` (this process's by default, and TERM)."""

    def __init__(
        self, command: Sequence[str] | None = None, environment: Mapping[str, str] | None = None
    ) -> None:
        self.command = list(command) if command is not None else _shell()
        self.environment = dict(os.environ if environment is None else environment)
        self.environment["TERM"] = "xterm-256color"
        self.shells: set[asyncio.subprocess.Process] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        main, child = pty.openpty()
        try:
            shell = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=child,
                stdout=child,
                stderr=child,
                start_new_session=True,
                preexec_fn=_as_terminal_session,
                env=self.environment,
            )
        except OSError:
            os.close(main)
            writer.close()
            return
        finally:
            os.close(child)
        self.shells.add(shell)
        output = asyncio.create_task(_output(main, writer))
        try:
            await _input(reader, main, output)
        finally:
            # The gateway's side ended (the browser left, or the job ended): so does the shell.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGHUP)
            code = await shell.wait()
            self.shells.discard(shell)
            with contextlib.suppress(asyncio.CancelledError):
                await output
            os.close(main)
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(FRAME.pack(EXIT, EXIT_PAYLOAD.size) + EXIT_PAYLOAD.pack(code))
                await writer.drain()
            writer.close()

    def hang_up(self) -> None:
        for shell in self.shells:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGHUP)


async def _input(reader: asyncio.StreamReader, main: int, output: asyncio.Task[None]) -> None:
    """Frames from the gateway to the terminal, until either side ends."""
    reading = asyncio.ensure_future(reader.readexactly(FRAME.size))
    try:
        while True:
            done, _ = await asyncio.wait({reading, output}, return_when=asyncio.FIRST_COMPLETED)
            if output in done:
                return  # the shell closed its terminal
            try:
                kind, size = FRAME.unpack(reading.result())
                if size > MAX_FRAME:
                    return
                payload = await reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                return
            if kind == DATA:
                os.write(main, payload)
            elif kind == RESIZE and size == RESIZE_PAYLOAD.size:
                columns, rows = RESIZE_PAYLOAD.unpack(payload)
                fcntl.ioctl(main, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
            reading = asyncio.ensure_future(reader.readexactly(FRAME.size))
    finally:
        reading.cancel()


async def _output(main: int, writer: asyncio.StreamWriter) -> None:
    """What the shell writes, as DATA frames, until its terminal closes."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            chunk = os.read(main, CHUNK)
        except OSError:  # EIO: every process on the terminal has closed it
            chunk = b""
        if not chunk:
            loop.remove_reader(main)
        chunks.put_nowait(chunk)

    loop.add_reader(main, readable)
    try:
        while chunk := await chunks.get():
            writer.write(FRAME.pack(DATA, len(chunk)) + chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        loop.remove_reader(main)


# --- on a compute node --------------------------------------------------------------------------

SECRET_LINE_BYTES = 200
SECRET_WAIT_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _proven(
    secret: bytes, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A connection from the gateway: its first line is the job's secret, then its traffic."""
    try:
        async with asyncio.timeout(SECRET_WAIT_SECONDS):
            line = await reader.readuntil(b"\n")
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        writer.close()
        return
    if not hmac.compare_digest(line.rstrip(b"\n"), secret):
        writer.close()
        return
    await _carry(port, reader, writer)


def _every_interface() -> socket.socket:
    """A listening socket on a free port of every interface (the gateway reaches this node
    over the cluster's network): one socket for IPv6 and IPv4 alike, so one port, where the
    node has IPv6; IPv4 alone where not."""
    try:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", 0))
    except OSError:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("0.0.0.0", 0))  # noqa: S104 (the gateway connects from elsewhere)
    listener.listen(128)
    return listener


def _read_secret(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read().strip()


def _write_address(path: str, address: dict[str, object]) -> None:
    """Whole or not at all: the gateway never reads half an address."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = f"{path}.{os.getpid()}"
    with open(partial, "w") as file:
        json.dump(address, file)
    os.replace(partial, path)


async def _on_node(options: argparse.Namespace) -> int:
    rank = os.environ.get("SLURM_PROCID", os.environ.get("JOBGATE_RANK", "0"))
    port = _free_port()
    environment = {**os.environ, "JOBGATE_RANK": rank, "JOBGATE_PORT": str(port)}
    if options.web_prefix:
        environment["JOBGATE_WEB_PREFIX"] = options.web_prefix.replace("{rank}", rank)
    argv = [argument.replace("{port}", str(port)) for argument in options.program]
    secret = _read_secret(options.secret_file)
    child = await asyncio.create_subprocess_exec(*argv, env=environment)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, _pass_on, child, signum)
    listener = _every_interface()
    server = await asyncio.start_server(
        lambda r, w: _proven(secret, port, r, w), sock=listener, limit=SECRET_LINE_BYTES
    )
    listening = listener.getsockname()[1]
    host = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    address_file = options.address_file.replace("{rank}", rank)
    _write_address(
        address_file, {"host": host, "port": listening, "keep_prefix": options.keep_prefix}
    )
    try:
        code = await child.wait()
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address_file)
    return code if code >= 0 else 128 - code


# --- the program --------------------------------------------------------------------------------


async def _listen(path: str, serve: object) -> asyncio.Server:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by an earlier run of this replica
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    old_mask = os.umask(0o177)
    try:
        return await asyncio.start_unix_server(serve, path)  # type: ignore[arg-type]
    finally:
        os.umask(old_mask)


async def _main(options: argparse.Namespace) -> int:
    child = await asyncio.create_subprocess_exec(*options.program)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # The supervisor signals the whole process group; passed on for a signal sent to us.
        loop.add_signal_handler(signum, _pass_on, child, signum)
    servers: list[tuple[asyncio.Server, str]] = []
    for path, port in options.forward or []:
        forward = int(port)
        server = await _listen(path, lambda r, w, port=forward: _carry(port, r, w))
        servers.append((server, path))
    terminals = Terminals()
    if options.terminal is not None:
        servers.append((await _listen(options.terminal, terminals.serve), options.terminal))
    try:
        code = await child.wait()
    finally:
        terminals.hang_up()
        for server, path in servers:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return code if code >= 0 else 128 - code


def _pass_on(child: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signum)


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bridge.py")
    parser.add_argument("--forward", nargs=2, action="append", metavar=("SOCKET", "PORT"))
    parser.add_argument("--terminal", metavar="SOCKET")
    parser.add_argument("--on-node", choices=["web", "vnc"])
    parser.add_argument("--address-file")
    parser.add_argument("--secret-file")
    parser.add_argument("--web-prefix")
    parser.add_argument("--keep-prefix", action="store_true")
    parser.add_argument("program", nargs=argparse.REMAINDER)
    options = parser.parse_args(arguments)
    if options.program[:1] == ["--"]:
        options.program = options.program[1:]
    if not options.program:
        parser.error("no program to run")
    if options.on_node and not (options.address_file and options.secret_file):
        parser.error("--on-node needs --address-file and --secret-file")
    try:
        return asyncio.run(_on_node(options) if options.on_node else _main(options))
    except FileNotFoundError:
        print(f"bridge: no such program: {options.program[0]}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
