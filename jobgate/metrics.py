"""The gateway's Prometheus metrics (README: "Metrics"), with prometheus-client.

Each gateway has a registry of its own (a test process runs many), served at `/metrics` to
operators. Every label value comes from a bounded set: operation names are the schema's root
fields (a document that does not validate counts as `invalid`), outcomes are error codes,
providers and states are configured or enumerated; never a job id, a username or client text.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import DocumentNode, FieldNode, OperationType, get_operation_ast
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from jobgate.storage.base import RoundTrips

# Seconds: GraphQL requests and store calls range from under a millisecond to the store's
# timeout; Slurm's commands from milliseconds to their own 60 s timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


INVALID = "invalid"


def root_field(
    document: DocumentNode | None, operation_name: str | None, kind: OperationType | None = None
) -> str:
    """The label of an operation: its first root field, from a document that parsed and
    validated (pass None otherwise), of `kind` if given; `invalid` else, since the names of
    any other document could be anything a client wrote."""
    operation = None if document is None else get_operation_ast(document, operation_name)
    if operation is None or not operation.selection_set.selections:
        return INVALID
    if kind is not None and operation.operation is not kind:
        return INVALID
    first = operation.selection_set.selections[0]
    return first.name.value if isinstance(first, FieldNode) else INVALID


class Metrics:
    """Every metric of one gateway, in its own registry. The gauges of what the store and the
    providers hold are set when scraped (`jobgate.server.metrics_endpoint`); the store's round
    trips are read from its own count (`RoundTrips`)."""

    def __init__(
        self, round_trips: RoundTrips | None = None, bus_round_trips: RoundTrips | None = None
    ) -> None:
        round_trips = round_trips or RoundTrips()
        registry = self.registry = CollectorRegistry()
        self._served: dict[tuple[str, str], Counter] = {}
        self._timers: dict[str, Histogram] = {}
        self.requests = Counter(
            "jobgate_graphql_requests",
            "GraphQL operations served, by root field and outcome (ok, or the first error's code)",
            ["operation", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "jobgate_graphql_request_seconds",
            "Time to serve a GraphQL operation (subscriptions: to start it), by root field",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.refusals = Counter(
            "jobgate_limit_refusals",
            "Requests refused by a limit, by the setting that refused them",
            ["limit"],
            registry=registry,
        )
        self.websockets = Gauge(
            "jobgate_websocket_connections",
            "WebSocket connections open, by protocol",
            ["protocol"],
            registry=registry,
        )
        self.subscriptions = Gauge(
            "jobgate_subscriptions",
            "Subscriptions running, by root field",
            ["field"],
            registry=registry,
        )
        self.updates = Counter(
            "jobgate_job_updates",
            "Job updates by provider and what became of them: applied, skipped (a "
            "precondition did not hold) or rejected (against UCloud's rules, or not found)",
            ["provider", "result"],
            registry=registry,
        )
        self.jobs = Gauge(
            "jobgate_jobs",
            "Jobs by provider and state, as the store holds them when scraped",
            ["provider", "state"],
            registry=registry,
        )
        self.provider_calls = Counter(
            "jobgate_provider_calls",
            "Commands handed to provider adapters, by provider, command and outcome",
            ["provider", "command", "outcome"],
            registry=registry,
        )
        self.slurm_commands = Histogram(
            "jobgate_slurm_command_seconds",
            "Time Slurm's commands took, by provider, command and outcome (ok or the code)",
            ["provider", "command", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.providers_online = Gauge(
            "jobgate_provider_online",
            "Whether each provider can take commands now (a remote one: its agent is connected)",
            ["provider"],
            registry=registry,
        )
        self.retention_removed = Counter(
            "jobgate_retention_removed",
            "What retention removed: final jobs (with their updates) and update-log entries",
            ["what"],
            registry=registry,
        )
        self.retention_seconds = Histogram(
            "jobgate_retention_run_seconds",
            "Time one compaction run took, all batches",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.feed_lag = Histogram(
            "jobgate_feed_lag_seconds",
            "From an update's commit to the update feed reading it (then it goes to watchers)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.feed_catch_ups = Counter(
            "jobgate_feed_catch_ups",
            "Watchers that fell too far behind the feed and caught up from the store",
            registry=registry,
        )
        registry.register(RoundTripCollector("store", round_trips))
        registry.register(RoundTripCollector("bus", bus_round_trips or RoundTrips()))

    def count_request(self, operation: str, outcome: str, seconds: float) -> None:
        """One GraphQL operation served. The labelled children are kept: prometheus-client's
        `labels()` checks and locks on every call (8 µs each, measured), and the label values
        are bounded, so the cache is too."""
        key = (operation, outcome)
        served = self._served.get(key)
        if served is None:
            served = self._served[key] = self.requests.labels(operation, outcome)
        served.inc()
        timer = self._timers.get(operation)
        if timer is None:
            timer = self._timers[operation] = self.request_seconds.labels(operation)
        timer.observe(seconds)


class RoundTripCollector(Collector):
    """`jobgate_<of>_round_trips_total`, `..._round_trip_seconds` (a summary: sum and count)
    and `..._errors_total`, by kind of call, read from `RoundTrips` when scraped."""

    def __init__(self, of: str, round_trips: RoundTrips) -> None:
        self.of = of
        self.round_trips = round_trips

    def collect(self) -> Iterator[CounterMetricFamily | SummaryMetricFamily]:
        of, trips = self.of, self.round_trips
        calls = CounterMetricFamily(
            f"jobgate_{of}_round_trips",
            f"Round trips to the {of}, by kind of call",
            labels=["kind"],
        )
        seconds = SummaryMetricFamily(
            f"jobgate_{of}_round_trip_seconds",
            f"Time round trips to the {of} took, by kind of call",
            labels=["kind"],
        )
        errors = CounterMetricFamily(
            f"jobgate_{of}_errors",
            f"Round trips to the {of} that failed for want of it (unavailable, timed out)",
            labels=["kind"],
        )
        for kind, count in sorted(trips.by_kind.items()):
            calls.add_metric([kind], count)
            if kind in trips.seconds_by_kind:
                seconds.add_metric([kind], count, trips.seconds_by_kind[kind])
            errors.add_metric([kind], trips.errors_by_kind.get(kind, 0))
        yield calls
        yield seconds
        yield errors
