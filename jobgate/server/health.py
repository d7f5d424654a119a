"""Health for load balancers and orchestrators (README: "Health").

- `/livez`: the process serves HTTP; 200 whenever it answers at all.
- `/readyz`: it should be sent traffic: it has started, it is not draining (shutting down), its
  store answers and, with `redis://`, so does its bus. 200 when ready, else 503.

Anyone may ask; only operators (`OperatorAccess`) are told which check failed and why. The
checks of concurrent callers are shared, and a result stands for `FRESH_SECONDS`: a flood of
probes costs the store one round trip a second, not one each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobgate.errors import StoreUnavailable
from jobgate.events.redis_backend import BusUnavailable
from jobgate.server.operators import OperatorAccess

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]
FRESH_SECONDS = 1.0
CHECK_TIMEOUT_SECONDS = 2.0


class Readiness:
    """Whether this process should be sent traffic, and if not, why."""

    def __init__(
        self, checks: Mapping[str, Check], *, timeout: float = CHECK_TIMEOUT_SECONDS
    ) -> None:
        self._checks = dict(checks)
        self.timeout = timeout
        self.started = False
        self.draining = False
        self._lock = asyncio.Lock()
        self._last: tuple[float, dict[str, str]] | None = None

    async def failures(self) -> dict[str, str]:
        """What keeps it from being ready, by check; empty when it is ready."""
        failures: dict[str, str] = {}
        if not self.started:
            failures["started"] = "still starting"
        if self.draining:
            failures["draining"] = "shutting down"
        failures.update(await self._checked())
        return failures

    async def _checked(self) -> dict[str, str]:
        async with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < FRESH_SECONDS:
                return self._last[1]
            names = list(self._checks)
            results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
            failed = {name: result for name, result in zip(names, results, strict=True) if result}
            if self._last is not None and failed != self._last[1]:
                log.warning("readiness: %s", failed or "ready again")
            self._last = (time.monotonic(), failed)
            return failed

    async def _run(self, check: Check) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                await check()
        except TimeoutError:
            return f"no answer in {self.timeout:g} s"
        except (StoreUnavailable, BusUnavailable) as error:
            return str(error)
        return None


def health_endpoints(
    readiness: Readiness, operators: OperatorAccess
) -> tuple[Callable[[Request], Awaitable[Response]], Callable[[Request], Awaitable[Response]]]:
    """The `/livez` and `/readyz` endpoints."""

    async def livez(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        failures = await readiness.failures()
        body: dict[str, object] = {"status": "not ready" if failures else "ready"}
        if operators.allows(request):
            body["failures"] = failures
        return JSONResponse(body, status_code=503 if failures else 200)

    return livez, readyz
