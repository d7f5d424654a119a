"""`RenderedJobs` holds at most its number of values, dropping the least recently used."""

from __future__ import annotations

from typing import Any

from jobgate.schema.rendered_jobs import RenderedJobs


def job(updates: int) -> dict[str, Any]:
    """A rendered job of 3 + 2 * `updates` values (itself, its id, its list, each update's
    dict and its state)."""
    return {"id": "1", "updates": [{"state": "RUNNING"} for _ in range(updates)]}


def test_the_least_recently_used_go_first_when_the_values_are_too_many() -> None:
    kept = RenderedJobs(most_values=30, most_per_job=30)
    for name in ("a", "b", "c"):
        kept.put((name,), job(4))  # 11 values each
    assert len(kept) == 2
    assert kept.values == 22
    assert kept.get(("a",)) is None
    assert kept.get(("b",)) == job(4)  # now the most recently used
    kept.put(("d",), job(4))
    assert kept.get(("c",)) is None
    assert kept.get(("b",)) is not None
    assert kept.get(("d",)) is not None


def test_a_job_heavier_than_its_share_is_not_kept_and_a_key_put_again_replaces() -> None:
    kept = RenderedJobs(most_values=1000, most_per_job=20)
    kept.put(("big",), job(100))
    assert kept.get(("big",)) is None
    assert kept.values == 0
    kept.put(("small",), job(1))
    kept.put(("small",), job(2))
    assert kept.values == 7
    assert len(kept) == 1
