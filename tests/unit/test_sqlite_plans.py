"""A user's page costs the page, not the store: SQLite's own plan for every `JobFilter` field,
every `JobOrderField` and both directions reads `jobs` through an index and never sorts more
than a bounded set (`EXPLAIN QUERY PLAN` of the very statements the store runs).

What a plan may sort, and why each is bounded whatever the store holds:
- each arm's page (at most `limit + 1` rows), as the arms are merged;
- the jobs shared with the user from other people's workspaces (the shared arm is driven by
  the user's own `job_readers` entries, not by the store);
- jobs named by `ids` or by a provider's id (as many as were named);
- a creation range of fewer than `range_sort_limit` jobs in an arm, when another order is asked
  (a wider one is walked in that order's index: asserted here too).
Counts (`totalCount`) read the arms' indexes alone where the filter asks only what they hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobgate.access import Visibility
from jobgate.domain.acl import AclEntity, AclEntry, Permission
from jobgate.domain.job import JobStatus, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.storage.base import JobFilter, JobOrder, JobQuery, OrderField
from jobgate.storage.sqlite import SqliteJobStore
from tests.factories import spec, submission

ALICE = Visibility(
    username="alice",
    managed=frozenset({"proj-a"}),
    member=frozenset({"proj-m"}),
    entities=frozenset({"user:alice"}),
)
# A range that holds every job (wider than `range_sort_limit` in every arm) and one that
# holds the newest few (narrower).
WIDE_RANGE = JobFilter(created_after=0)
NARROW_RANGE = JobFilter(created_after=38)
FILTERS: dict[str, JobFilter] = {
    "none": JobFilter(),
    "states": JobFilter(states=frozenset({JobState.RUNNING})),
    "two states": JobFilter(states=frozenset({JobState.RUNNING, JobState.IN_QUEUE})),
    "application": JobFilter(application="sleep"),
    "createdBy": JobFilter(created_by="bob"),
    "project": JobFilter(project="proj-a"),
    "provider": JobFilter(provider="local"),
    "productId": JobFilter(product_id="cpu-small"),
    "productCategory": JobFilter(product_category="cpu"),
    "createdAfter": WIDE_RANGE,
    "createdBefore": JobFilter(created_before=10**6),
    "a narrow range": NARROW_RANGE,
    "ids": JobFilter(ids=("1", "2", "3")),
    "providerGeneratedId": JobFilter(provider_generated_id="slurm-7"),
    "query": JobFilter(query="bench"),
}
# Filters that name their jobs: the plan reads them by their own index and sorts them.
NAMING = {"ids", "providerGeneratedId"}
# Filters whose count reads only the arms' indexes.
INDEX_ONLY_COUNTS = {"none", "states", "two states", "createdBy", "project", "createdAfter"}


@dataclass
class Step:
    """One line of `EXPLAIN QUERY PLAN`, with the lines under it."""

    detail: str
    children: list[Step] = field(default_factory=list)

    def walk(self) -> Iterator[Step]:
        yield self
        for child in self.children:
            yield from child.walk()


def plan_tree(rows: list[tuple[Any, ...]]) -> Step:
    root = Step("plan")
    by_id = {0: root}
    for step_id, parent, _unused, detail in rows:
        step = Step(detail)
        by_id[step_id] = step
        by_id[parent].children.append(step)
    return root


def is_arm(step: Step) -> bool:
    return step.detail.startswith(("CO-ROUTINE", "MATERIALIZE"))


def reads_shared(step: Step) -> bool:
    return any("job_readers" in inner.detail for inner in step.walk())


def sorts_in(step: Step) -> bool:
    return any(child.detail.startswith("USE TEMP B-TREE") for child in step.children)


def scans_jobs(plan: Step) -> bool:
    return any(step.detail.startswith(("SCAN jobs", "SCAN TABLE jobs")) for step in plan.walk())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteJobStore]:
    """40 jobs: alice's personal ones, proj-a's (which she manages), proj-m's (where she is a
    plain member; one of bob's there is shared with her), bob's personal ones (one shared
    with her) and carol's; a fourth of them running."""
    store = SqliteJobStore(tmp_path / "jobgate.db")
    await store.open()
    owners = [("alice", None), ("alice", "proj-a"), ("bob", "proj-a"), ("bob", None)]
    owners += [("bob", "proj-m"), ("carol", None), ("alice", "proj-m"), ("carol", "proj-c")]
    for number in range(40):
        user, project = owners[number % len(owners)]
        app = ("sleep", "echo")[number % 2]
        made = submission(spec(app, name=f"bench {number}"), user=user, project=project, at=number)
        (job,) = (await store.create_jobs(made)).jobs
        if number % 4 == 0:
            running = JobStatus(JobState.RUNNING)
            assert await store.commit_update(
                job, UpdateRequest(job.id, state=JobState.RUNNING), running, number
            )
        if number in (3, 4):  # bob's personal job and his job in proj-m
            (job,) = await store.get_jobs([job.id])
            reader = AclEntry(AclEntity.user("alice"), frozenset({Permission.READ}))
            assert await store.update_acl(job, (reader,))
    # Every arm holds more jobs of WIDE_RANGE than this, and fewer of NARROW_RANGE.
    store.range_sort_limit = 2
    try:
        yield store
    finally:
        await store.close()


async def plans_of(
    store: SqliteJobStore, monkeypatch: pytest.MonkeyPatch, call: Any, kind: str
) -> list[Step]:
    """The plans of the statements of `kind` that `call` makes the store run."""
    statements: list[tuple[str, list[object]]] = []
    fetch = store._fetch

    async def recording(sql: str, params: Any, what: str) -> list[Any]:
        if what == kind:
            statements.append((sql, list(params)))
        return await fetch(sql, params, what)

    monkeypatch.setattr(store, "_fetch", recording)
    await call()
    monkeypatch.setattr(store, "_fetch", fetch)
    assert statements, f"no {kind} statement ran"
    plans = []
    for sql, params in statements:
        rows = await store._fetch(f"EXPLAIN QUERY PLAN {sql}", params, "explain")
        plans.append(plan_tree([tuple(row) for row in rows]))
    return plans


@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
@pytest.mark.parametrize("order", list(OrderField), ids=lambda field: field.name.lower())
@pytest.mark.parametrize("name", list(FILTERS))
async def test_a_users_page_reads_indexes_and_sorts_only_a_bounded_set(
    store: SqliteJobStore,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    order: OrderField,
    descending: bool,
) -> None:
    query = JobQuery(ALICE, FILTERS[name], JobOrder(order, descending), limit=5)
    (plan,) = await plans_of(store, monkeypatch, lambda: store.find_jobs(query), "find_jobs")
    assert not scans_jobs(plan), plan
    arms = [step for step in plan.walk() if is_arm(step)]
    if name in NAMING:
        assert not arms  # one query, driven by the named jobs' own index
        (lookup,) = [step for step in plan.walk() if step.detail.startswith("SEARCH jobs")]
        assert "INTEGER PRIMARY KEY" in lookup.detail or "provider_generated_id" in lookup.detail
        return
    own = [arm for arm in arms if not reads_shared(arm)]
    shared = [arm for arm in arms if reads_shared(arm)]
    states = len(FILTERS[name].states or {None})
    # Alice's personal jobs and proj-a's: one arm each per state; what was shared: one.
    assert (len(own), len(shared)) == (2 * states, states)
    for arm in shared:
        assert any("INTEGER PRIMARY KEY" in step.detail for step in arm.walk()), arm
    sorted_range = name == "a narrow range" and order is not OrderField.CREATED_AT
    for arm in own:
        assert sorts_in(arm) == sorted_range, arm
        # The index is searched by the state and the range, not walked past other jobs.
        (search,) = [step.detail for step in arm.walk() if step.detail.startswith("SEARCH jobs")]
        if FILTERS[name].states:
            assert "state_rank=?" in search, search
        if sorted_range:
            assert "created_at>?" in search, search


@pytest.mark.parametrize("name", list(FILTERS))
async def test_a_users_count_reads_the_arms_indexes_alone_where_it_can(
    store: SqliteJobStore, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    (plan,) = await plans_of(
        store, monkeypatch, lambda: store.count_jobs(ALICE, FILTERS[name]), "count_jobs"
    )
    assert not scans_jobs(plan), plan
    if name not in INDEX_ONLY_COUNTS:
        return
    searches = [
        step.detail
        for step in plan.walk()
        if step.detail.startswith("SEARCH jobs") and "INTEGER PRIMARY KEY" not in step.detail
    ]
    assert searches
    assert all("COVERING INDEX" in detail for detail in searches), searches


async def test_a_wide_range_in_another_order_walks_that_orders_index(
    store: SqliteJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The choice the plan test relies on, seen in the statement: wide and narrow ranges of
    the same filter take different indexes in an arm of alice's personal jobs."""
    chosen = {}
    for label, job_filter in (("wide", WIDE_RANGE), ("narrow", NARROW_RANGE)):
        query = JobQuery(ALICE, job_filter, JobOrder(OrderField.NAME), limit=5)
        (plan,) = await plans_of(
            store, monkeypatch, lambda query=query: store.find_jobs(query), "find_jobs"
        )
        arm = next(arm for arm in plan.walk() if is_arm(arm) and not reads_shared(arm))
        (search,) = [s.detail for s in arm.walk() if s.detail.startswith("SEARCH jobs")]
        chosen[label] = search
    assert "jobs_personal_name" in chosen["wide"]
    assert "jobs_personal_created" in chosen["narrow"]
