"""Who may read the gateway's internals (`/metrics`, and why `/readyz` is not ready): callers
from `operations.allow_from` (loopback only, by default) or with `operations.token`."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request

from jobgate.auth import bearer_token, token_digest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


@dataclass(frozen=True, slots=True)
class OperatorAccess:
    networks: Sequence[Network] = LOOPBACK
    token_digest: bytes | None = None  # SHA-256 of `operations.token`, compared in constant time

    @classmethod
    def of(cls, networks: Sequence[Network], token: str | None) -> OperatorAccess:
        digest = None if token is None else token_digest(token)
        return cls(tuple(networks), digest)

    def allows(self, request: Request) -> bool:
        """Whether the caller is an operator: by its address (as uvicorn sees it, after a
        trusted proxy's forwarded headers), or by `Authorization: Bearer <operations.token>`."""
        if self.token_digest is not None:
            token = bearer_token(request.headers.get("authorization", ""))
            if token is not None and hmac.compare_digest(token_digest(token), self.token_digest):
                return True
        client = request.client
        if client is None:
            return False
        try:
            address = ipaddress.ip_address(client.host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)
