"""The bridge on its own (as the sandbox runs it: the system's Python, this file alone): it runs
the job's program and ends with its exit code, carries connections to the program's port, and
gives shells on pseudo-terminals in frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from jobgate.providers.interactive import BRIDGE, SANDBOX_PYTHON
from jobgate.sessions.bridge import DATA, EXIT, EXIT_PAYLOAD, FRAME, RESIZE, RESIZE_PAYLOAD
from tests.servers import free_port


@contextlib.asynccontextmanager
async def bridge(folder: Path, *options: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        str(SANDBOX_PYTHON), str(BRIDGE), *options, cwd=folder
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def present(path: Path) -> bool:
    return path.is_socket() or path.is_file()


async def until_listening(path: Path) -> None:
    for _ in range(100):
        if present(path):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listens on {path}")


async def test_it_ends_with_its_programs_exit_code(tmp_path: Path) -> None:
    async with bridge(tmp_path, "--terminal", "t.sock", "--", "sh", "-c", "exit 7") as process:
        assert await asyncio.wait_for(process.wait(), 10) == 7
    assert not (tmp_path / "t.sock").exists()  # its sockets go with it


async def test_a_signal_reaches_the_program_and_the_code_says_so(tmp_path: Path) -> None:
    async with bridge(tmp_path, "--terminal", "t.sock", "--", "sleep", "60") as process:
        await until_listening(tmp_path / "t.sock")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 128 + signal.SIGTERM


async def test_connections_are_carried_to_the_programs_port(tmp_path: Path) -> None:
    port = free_port()
    echo = f"import socket; s=socket.create_server(('127.0.0.1', {port})); c,_=s.accept(); "
    echo += "c.sendall(c.recv(100).upper())"
    forward = ("--forward", "web.sock", str(port))
    async with bridge(tmp_path, *forward, "--", str(SANDBOX_PYTHON), "-c", echo) as process:
        await until_listening(tmp_path / "web.sock")
        for _ in range(50):  # the program listens a moment after the bridge does
            reader, writer = await asyncio.open_unix_connection(tmp_path / "web.sock")
            try:
                writer.write(b"hello")
                answer = await reader.read(100)
            except ConnectionError:
                # The bridge closed it, maybe before "hello" was written (a broken pipe then):
                # it could not reach the program, which does not listen yet.
                answer = b""
            finally:
                writer.close()
            if answer:
                break
            await asyncio.sleep(0.1)
        assert answer == b"HELLO"
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_a_terminal_is_a_shell_on_a_pseudo_terminal(tmp_path: Path) -> None:
    async with bridge(tmp_path, "--terminal", "t.sock", "--", "sleep", "60"):
        await until_listening(tmp_path / "t.sock")
        reader, writer = await asyncio.open_unix_connection(tmp_path / "t.sock")
        writer.write(FRAME.pack(RESIZE, RESIZE_PAYLOAD.size) + RESIZE_PAYLOAD.pack(123, 45))
        command = b"tty; stty size; exit 5\n"
        writer.write(FRAME.pack(DATA, len(command)) + command)
        output, code = b"", None
        async with asyncio.timeout(10):
            while code is None:
                kind, size = FRAME.unpack(await reader.readexactly(FRAME.size))
                payload = await reader.readexactly(size)
                if kind == DATA:
                    output += payload
                elif kind == EXIT:
                    (code,) = EXIT_PAYLOAD.unpack(payload)
        assert code == 5
        text = output.decode(errors="replace")
        assert "/dev/pts/" in text  # a terminal of its own
        assert "45 123" in text  # of the size asked
        writer.close()


async def test_on_a_node_it_announces_its_port_and_lets_in_only_the_secrets_bearer(
    tmp_path: Path,
) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    # The app answers each connection with what it was given: its port and prefix.
    app = (
        "import os, socket, sys; s = socket.create_server(('127.0.0.1', int(sys.argv[1]))); "
        "c, _ = s.accept(); c.recv(100); "
        "c.sendall((sys.argv[1] + ' ' + os.environ['JOBGATE_WEB_PREFIX']).encode())"
    )
    options = ["--on-node", "web", "--address-file", "web-{rank}.json"]
    options += ["--secret-file", "secret", "--web-prefix", "/interactive/7/{rank}/web/"]
    program = [str(SANDBOX_PYTHON), "-c", app, "{port}"]
    async with bridge(tmp_path, *options, "--", *program) as process:
        address_file = tmp_path / "web-0.json"
        for _ in range(100):
            if present(address_file):  # written whole, once it listens
                break
            await asyncio.sleep(0.05)
        address = json.loads(address_file.read_text())
        # Without the secret, nothing: the connection is closed.
        reader, writer = await asyncio.open_connection("127.0.0.1", address["port"])
        writer.write(b"not the secret\nGET /\n")
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        # With it, the app, on the port the bridge gave it, under its prefix.
        for _ in range(50):
            reader, writer = await asyncio.open_connection("127.0.0.1", address["port"])
            writer.write(b"s3cret\nhello")
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            if answer:
                break
            await asyncio.sleep(0.1)
        port, prefix = answer.decode().split()
        assert int(port) != address["port"]  # the app's own port, behind the bridge's
        assert prefix == "/interactive/7/0/web/"
        assert await asyncio.wait_for(process.wait(), 10) == 0
    assert not address_file.exists()  # gone with the app
