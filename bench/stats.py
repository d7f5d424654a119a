"""Figures the benchmarks compute from their samples."""

from __future__ import annotations


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank `fraction` quantile of `values` (NaN for none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
