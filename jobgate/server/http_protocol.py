"""`BoundedH11Protocol`: uvicorn's h11 protocol with the two bounds it lacks.

- **A head timeout.** uvicorn closes a keep-alive connection that is idle after a response,
  but a connection that never sends a request, or sends its head a byte at a time, stays open
  for as long as the client likes (200 idle sockets, or 50 slow-header ones, held the gateway's
  descriptors indefinitely). Here a request head must be complete within
  `limits.header_timeout_seconds` of the connection opening (or of the previous response).
- **A connection bound.** Past `max_connections` open connections, a new one is answered 503
  and closed at once, before it can take more than its descriptor for a moment: a flood of
  sockets cannot take the descriptors that jobs, the store and log files need
  (`descriptor_budget`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_BUSY_BODY = (
    b'{"errors":[{"message":"the gateway has all the connections it takes",'
    b'"extensions":{"code":"LIMIT_EXCEEDED","limit":"limits.max_connections"}}]}'
)
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\n"
    + f"content-length: {len(_BUSY_BODY)}\r\n\r\n".encode()
    + _BUSY_BODY
)


def descriptor_budget(max_connections: int, reserved: int) -> int:
    """How many connections to take: at most `max_connections`, and `reserved` descriptors
    below the open-file limit, which is first raised to what the system allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the soft limit we have
    budget = min(max_connections, max(1, soft - reserved))
    if budget < max_connections:
        log.warning(
            "limits.max_connections: taking %d connections, %d below the open-file limit "
            "(%d); raise it (ulimit -n, LimitNOFILE=) to take more",
            budget,
            reserved,
            soft,
        )
    return budget


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a head timeout and a connection bound (see the module)."""

    # Set by `uvicorn_config` for the server it configures (one per process).
    head_timeout: float = 10.0
    max_connections: int = 10_000

    _head_timer: asyncio.TimerHandle | None = None
    # Set once the connection became a WebSocket: no request head is ever due again.
    _upgraded = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.transport.write(BUSY)
            self.transport.close()
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._upgraded:
            return
        if self._head_complete():
            self._disarm_head_timer()
        elif self._head_timer is None and not self.transport.is_closing():
            self._arm_head_timer()  # bytes of a next request after a keep-alive pause

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn's keep-alive timer covers the idle time after a response; a head started
        # after it must complete in time as the first one did.
        self._disarm_head_timer()

    def handle_websocket_upgrade(self, event: Any) -> None:
        # The upgrade request is read inside `data_received`, which must not arm the timer
        # again on its way out: the timer would close the WebSocket one timeout later.
        self._upgraded = True
        self._disarm_head_timer()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _head_complete(self) -> bool:
        # A request cycle in progress means its head arrived whole.
        return self.cycle is not None and not self.cycle.response_complete

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._upgraded:
            return
        if not self._head_complete() and not self.transport.is_closing():
            self.transport.close()


def bounded_protocol(head_timeout: float, max_connections: int) -> type[BoundedH11Protocol]:
    """The protocol class for one server, with its bounds."""
    return type(
        "BoundedH11Protocol",
        (BoundedH11Protocol,),
        {"head_timeout": head_timeout, "max_connections": max_connections},
    )
