"""`GET /metrics`: the gateway's Prometheus metrics, for operators only (`OperatorAccess`).

The gauges of what the store and the providers hold are read at each scrape: jobs by provider
and state in one grouped query (a scrape every 15 s costs the store one round trip), and
whether each provider can take commands now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobgate.errors import StoreUnavailable
from jobgate.metrics import Metrics
from jobgate.server.operators import OperatorAccess
from jobgate.services.jobs import ProviderRegistry
from jobgate.storage.base import JobStore


def metrics_endpoint(
    metrics: Metrics, store: JobStore, providers: ProviderRegistry, operators: OperatorAccess
) -> Callable[[Request], Awaitable[Response]]:
    async def scrape(request: Request) -> Response:
        if not operators.allows(request):
            return JSONResponse(
                {"error": "metrics are for operators (operations.allow_from or operations.token)"},
                status_code=403,
            )
        for adapter in providers.all:
            metrics.providers_online.labels(adapter.id).set(1 if adapter.online else 0)
        try:
            with store.deadline():
                counts = await store.count_by_provider_and_state()
        except StoreUnavailable:
            pass  # the job gauges keep their last values; readiness says the store is away
        else:
            metrics.jobs.clear()  # a provider or state with no jobs left is no series
            for (provider, state), count in counts.items():
                metrics.jobs.labels(provider, state).set(count)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return scrape
