"""The bridge between a sandboxed job's server and the gateway (standard library only).

A job of the local provider runs in a network namespace of its own: its web app listens on
127.0.0.1:{port} *there*, where the gateway cannot connect. This program runs inside the same
sandbox, as the job's account, in front of the app: it starts the app, listens on a Unix socket
in the job's folder (which the gateway sees too; mode 0600, so only the job's account and the
gateway can connect) and carries each connection to the app's port. It ends with the app, with
its exit code.

It is run by the sandbox's own Python (`/usr/bin/python3`), not the gateway's: the gateway's
virtual environment is not visible inside the sandbox, so this file imports nothing of jobgate.

    python3 bridge.py SOCKET PORT -- PROGRAM [ARGUMENT...]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
        await asyncio.gather(_pipe(client, to_app), _pipe(app, to_client))
    finally:
        for writer in (to_app, to_client):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _main(socket_path: str, port: int, argv: list[str]) -> int:
    child = await asyncio.create_subprocess_exec(*argv)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # The supervisor signals the whole process group; passed on for a signal sent to us.
        loop.add_signal_handler(signum, _pass_on, child, signum)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)  # left by an earlier run of this replica
    os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
    old_mask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(
            lambda reader, writer: _carry(port, reader, writer), socket_path
        )
    finally:
        os.umask(old_mask)
    try:
        code = await child.wait()
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
    return code if code >= 0 else 128 - code


def _pass_on(child: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signum)


def main(arguments: list[str]) -> int:
    if len(arguments) < 4 or arguments[2] != "--":
        print("usage: bridge.py SOCKET PORT -- PROGRAM [ARGUMENT...]", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(arguments[0], int(arguments[1]), arguments[3:]))
    except FileNotFoundError:
        print(f"bridge: no such program: {arguments[3]}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
