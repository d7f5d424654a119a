"""A subscription's per-event executions keep no memory: a gateway stays flat however many live
events a long-lived subscription gets (graphql-core 3.3.2 shared a memo across events)."""

from __future__ import annotations

import gc
import tracemalloc

from graphql import execute_subscription_event, parse

from jobgate.schema.build import build_schema

DOCUMENT = parse("subscription { jobUpdates { jobId cursor update { state status } } }")


def memory_growth(events: int) -> int:
    """Bytes still allocated after `events` more events through one subscription's executor,
    as Strawberry's path and the lean path both run them."""
    schema = build_schema()
    executor = schema.execution_context_class.build(schema._schema, DOCUMENT, None, None, {}, None)
    assert not isinstance(executor, list)

    def run(count: int) -> None:
        for n in range(count):
            event = {
                "jobId": str(n),
                "cursor": str(n),
                "update": {"state": "RUNNING", "status": "x"},
            }
            per_event = executor.build_per_event_executor({"jobUpdates": event})
            execute_subscription_event(per_event)

    run(200)  # warm-up: caches that are filled once
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        run(events)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


def test_live_events_leave_no_memory_behind() -> None:
    # The shared memo kept ~1.2 KiB per event (3.6 MB here); what is left is fixed overhead.
    assert memory_growth(3000) < 300_000
