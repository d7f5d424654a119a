"""The per-caller limits, lifted for benchmarks that measure the gateway itself.

A benchmark drives one gateway from one or a few callers far past what a site allows one caller
by default (10,000 subscriptions of one user, hundreds of requests a second): with the defaults
it would measure the rate limits (429s, refused subscriptions) instead of the work. The
request bounds (`max_body_bytes`, `max_cost`, ...) stay as they are; `bench_hostile` keeps every
default, since the defaults are what it measures.
"""

from __future__ import annotations

LIFTED_LIMITS: dict[str, int] = {
    "requests_per_minute": 100_000_000,
    "cost_per_minute": 1_000_000_000_000,
    "max_websockets_per_caller": 1_000_000,
    "max_subscriptions_per_caller": 1_000_000,
    "max_active_jobs_per_user": 1_000_000,
    "max_active_replicas_per_user": 1_000_000,
}

# The same as a `[limits]` table, to append to a TOML config (it has no braces to escape).
LIFTED_LIMITS_TOML = "\n[limits]\n" + "".join(f"{k} = {v}\n" for k, v in LIFTED_LIMITS.items())
