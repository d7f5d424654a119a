"""How `jobgate serve` runs the app: uvicorn's configuration (which the tests' in-process
gateways share) and the garbage collector's."""

from __future__ import annotations

import gc

import uvicorn
from starlette.applications import Starlette

from jobgate.server.http_protocol import bounded_protocol, descriptor_budget
from jobgate.server.protocol import LeanWebSocketProtocol
from jobgate.settings import LimitSettings, ServerSettings


def uvicorn_config(
    app: Starlette, server: ServerSettings, limits: LimitSettings, *, log_level: str
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        log_level=log_level,
        # jobgate configures logging itself (text or JSON lines, request ids): uvicorn's
        # loggers hand their records to it.
        log_config=None,
        # h11, not httptools: httptools takes request heads of any size, h11 stops at this one
        # (and answers 400); jobgate's h11 protocol adds a head timeout and a connection
        # bound. A WebSocket message past the body limit closes its socket (1009).
        http=bounded_protocol(
            limits.header_timeout_seconds,
            descriptor_budget(limits.max_connections, limits.reserved_descriptors),
        ),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        ws_max_size=limits.max_body_bytes,
        # "on", not "auto": a gateway whose store or bus cannot open must stop, not serve.
        lifespan="on",
        interface="asgi3",  # said, not guessed: see `websocket_lane.LeanStarlette`
        timeout_graceful_shutdown=server.shutdown_grace_seconds,
        ws=LeanWebSocketProtocol if server.lean_subscriptions else "websockets-sansio",
        ws_per_message_deflate=server.websocket_compression,
    )


# CPython looks at the oldest generation after every 10 collections of the middle one. A
# gateway holding 10,000 subscribers has a million long-lived objects, and each such full
# collection stopped it for 0.5 to 1 s in the middle of a broadcast
# (`bench/bench_fanout.py`). Looking ten times less often removed those pauses from the
# benchmark; young garbage is still collected as before.
FULL_COLLECTION_EVERY = 100


def tune_garbage_collector() -> None:
    """Collect the oldest generation less often, and never scan what the app was built from."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    # Modules, the schema and the settings live as long as the process.
    gc.freeze()
