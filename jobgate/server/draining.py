"""`DrainingServer`: uvicorn's server, which on SIGTERM turns not ready first and only then
stops accepting (README: "Restarts behind a load balancer").

SIGTERM makes `/readyz` answer 503 at once; for `server.drain_seconds` the gateway keeps
serving, so load balancers that probe it stop sending new requests; then uvicorn's own shutdown
runs: the port closes, HTTP requests in flight get `server.shutdown_grace_seconds` to finish, and
every WebSocket is closed with 1012 (service restart), after which its client reconnects
(elsewhere) and resumes from its last cursor. A second SIGTERM, or SIGINT, skips the wait.
"""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

import uvicorn

from jobgate.server.health import Readiness

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, readiness: Readiness, drain_seconds: float) -> None:
        super().__init__(config)
        self.readiness = readiness
        self.drain_seconds = drain_seconds
        self._drain_ends: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.readiness.draining = True
        if sig == signal.SIGTERM and self._drain_ends is None and self.drain_seconds > 0:
            self._drain_ends = time.monotonic() + self.drain_seconds
            log.info("draining: not ready, closing the port in %g s", self.drain_seconds)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_ends is not None and time.monotonic() >= self._drain_ends:
            self._drain_ends = None
            super().handle_exit(signal.SIGTERM, None)
        return await super().on_tick(counter)
