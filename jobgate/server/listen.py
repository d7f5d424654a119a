"""The listening socket, bound before anything else starts: a gateway that cannot have its
port stops before it opens the store or settles a single job."""

from __future__ import annotations

import socket

from jobgate.errors import ConfigError


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), ready for uvicorn; `ConfigError` if it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise ConfigError(f"server.host: cannot resolve '{host}': {error.strerror}") from error
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"server.port: cannot listen on {host}:{port}: {error.strerror}"
        ) from error
    return sock
