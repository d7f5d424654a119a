"""SQL fragments for the SQLite store: visibility, filters and keyset pagination."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from jobgate.access import Visibility
from jobgate.domain.states import JobState
from jobgate.storage.base import JobFilter, JobOrder, OrderField, PageKey, job_number

SqlParams = list[object]


class Branch(NamedTuple):
    """One disjoint part of what a user sees: its condition on `jobs`, and what to read it
    from (`jobs`, or `jobs NOT INDEXED` where the condition names the rows by number, so that
    no index of a filter's column is walked instead)."""

    clause: str
    params: SqlParams
    source: str = "jobs"


ORDER_COLUMNS = {
    OrderField.CREATED_AT: "created_at",
    OrderField.NAME: "name_key",
    OrderField.CREATED_BY: "created_by",
    OrderField.STATE: "state_rank",
}


def placeholders(count: int) -> str:
    return ",".join("?" * count)


def visibility_sql(visibility: Visibility, table: str = "jobs") -> tuple[str, SqlParams]:
    """`Visibility.allows` in SQL (`jobgate.access` owns the rule)."""
    if visibility.everything:
        return "1=1", []
    if visibility.provider is not None:
        return f"{table}.provider = ?", [visibility.provider]
    branches = visibility_branches(visibility, table)
    assert branches is not None
    return (
        "(" + " OR ".join(f"({branch.clause})" for branch in branches) + ")",
        [param for branch in branches for param in branch.params],
    )


def visibility_branches(visibility: Visibility, table: str = "jobs") -> list[Branch] | None:
    """A user's visibility as disjoint conditions, each of which an index serves in creation
    order: their personal jobs; each project they manage; and the jobs shared with them (their
    own in projects where they are a plain member among them), read from `job_readers`.
    None for other callers."""
    if visibility.everything or visibility.provider is not None or visibility.username is None:
        return None
    branches = [
        Branch(f"{table}.created_by = ? AND {table}.project IS NULL", [visibility.username])
    ]
    branches += [
        Branch(f"{table}.project = ?", [project]) for project in sorted(visibility.managed)
    ]
    entities = sorted(visibility.entities)
    if entities:
        member = sorted(visibility.member)
        among = placeholders(len(member))
        in_member = f" OR {table}.project IN ({among})" if member else ""
        # Only the entries of personal jobs and of projects they are a plain member of: the
        # creator's own entry on every job of a project they manage (as many as their jobs)
        # is read by its own arm. Read from `job_readers_scope`, they are the candidates
        # (`+` and NOT INDEXED keep SQLite from walking every personal job, or every job of
        # a filter's creator, in order instead).
        scope = f"project IS NULL OR project IN ({among})" if member else "project IS NULL"
        branches.append(
            Branch(
                f"{table}.num IN (SELECT job_num FROM job_readers"
                f" WHERE entity IN ({placeholders(len(entities))}) AND ({scope}))"
                f" AND ((+{table}.project IS NULL AND {table}.created_by != ?){in_member})",
                [*entities, *member, visibility.username, *member],
                f"{table} NOT INDEXED",
            )
        )
    return branches


def user_arms(visibility: Visibility, job_filter: JobFilter) -> list[Branch] | None:
    """How a user's page or count is read: by these arms, each from its own index (then the
    `states` filter is in the arms, and `filter_sql` gets the rest); None for one query (not
    a user, or a filter that names its few jobs: ids, a provider's id)."""
    branches = visibility_branches(visibility)
    named = job_filter.ids is not None or job_filter.provider_generated_id is not None
    if branches is None or named:
        return None
    return arms_by_state(branches, job_filter.states)


def jobs_source(job_filter: JobFilter) -> str:
    """What one query reads: `jobs`, or by number alone where ids name the jobs (offered
    another index, SQLite walks every job of a project to find the few named)."""
    return "jobs NOT INDEXED" if job_filter.ids is not None else "jobs"


def arms_by_state(branches: list[Branch], states: frozenset[JobState] | None) -> list[Branch]:
    """A user's arms (`visibility_branches`), each split by state for a `states` filter, so
    that each is read from an index with its state before the order's column
    (`jobs_*_state_*`); the `states` filter is then in the arms, not in `filter_sql`'s."""
    if states is None:
        return branches
    ranks = sorted(state.lifecycle_rank for state in states)
    return [
        Branch(f"{clause} AND jobs.state_rank = ?", [*params, rank], source)
        for clause, params, source in branches
        for rank in ranks
    ]


def filter_sql(
    job_filter: JobFilter, table: str = "jobs", *, in_arms: bool = False, walk: bool = False
) -> tuple[str, SqlParams]:
    """The filter's conditions. `in_arms`: for a user's arms (`visibility_branches`), each
    read in order from its own index, so the provider's index (whose every job may match) is
    not offered to SQLite, which would sort all its matches instead. `walk`: the creation
    range is not offered either, so the arm walks its order's index past it."""
    clauses: list[str] = []
    params: SqlParams = []

    def equals(column: str, value: object) -> None:
        if value is not None:
            unindexed = "+" if in_arms and column == "provider" else ""
            clauses.append(f"{unindexed}{table}.{column} = ?")
            params.append(value)

    equals("application", job_filter.application)
    equals("created_by", job_filter.created_by)
    equals("project", job_filter.project)
    equals("provider", job_filter.provider)
    equals("product_id", job_filter.product_id)
    equals("product_category", job_filter.product_category)
    equals("provider_generated_id", job_filter.provider_generated_id)
    if job_filter.states is not None:
        states = sorted(job_filter.states)
        clauses.append(f"{table}.state IN ({placeholders(len(states))})")
        params.extend(states)
    created_at = f"+{table}.created_at" if walk else f"{table}.created_at"
    if job_filter.created_after is not None:
        clauses.append(f"{created_at} >= ?")
        params.append(job_filter.created_after)
    if job_filter.created_before is not None:
        clauses.append(f"{created_at} <= ?")
        params.append(job_filter.created_before)
    if job_filter.ids is not None:
        numbers = ids_to_numbers(job_filter.ids)
        clauses.append(f"{table}.num IN ({placeholders(len(numbers))})" if numbers else "0=1")
        params.extend(numbers)
    if job_filter.query:
        needle = job_filter.query.lower()
        clauses.append(
            f"(instr(lower(coalesce({table}.name, '')), ?) > 0"
            f" OR instr(lower({table}.application), ?) > 0"
            f" OR instr(CAST({table}.num AS TEXT), ?) > 0)"
        )
        params.extend([needle, needle, needle])
    return " AND ".join(clauses) or "1=1", params


def page_sql(order: JobOrder, after: PageKey | None) -> tuple[str, str, SqlParams]:
    """(where clause, order by clause, params) for keyset pagination with the job number as tiebreak."""
    column = ORDER_COLUMNS[order.field]
    direction = "DESC" if order.descending else "ASC"
    order_by = f"jobs.{column} {direction}, jobs.num {direction}"
    if after is None:
        return "1=1", order_by, []
    op = "<" if order.descending else ">"
    where = f"(jobs.{column} {op} ? OR (jobs.{column} = ? AND jobs.num {op} ?))"
    return where, order_by, [after.value, after.value, after.job_number]


def ids_to_numbers(job_ids: Sequence[str]) -> list[int]:
    return [n for n in (job_number(job_id) for job_id in job_ids) if n is not None]
