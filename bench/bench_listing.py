"""Benchmark: does a `jobs` page cost the page, or the store? (issue 14, goal 3)

Seeds two SQLite stores through the store's own API, one with 1,000 jobs and one with 100,000
(the same mix: three users, personal and project jobs, a tenth running), then times one page of
100 (`find_jobs`, as `jobs(first: 100)` asks it) for each filter and each order, as the user
`alice` (a member of `proj-a`, which she manages), and reports the ratio large/small: 1.0 is
flat, 100 is a scan. The store level alone: the GraphQL layer above it costs the same per page
whatever the store holds (`bench_jobs_query` measures it).

    .venv/bin/python -m bench.bench_listing [--large 100000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from jobgate.access import Visibility, initial_acl
from jobgate.domain.job import JobSpecification, JobStatus, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.domain.values import NameAndVersion, ProductReference, ResourceOwner, TextValue
from jobgate.storage.base import JobFilter, JobOrder, JobQuery, NewSubmission, OrderField
from jobgate.storage.sqlite import SqliteJobStore

START = 1_700_000_000_000
OWNERS = [
    ResourceOwner("alice", None),
    ResourceOwner("alice", "proj-a"),
    ResourceOwner("bob", "proj-a"),
    ResourceOwner("carol", None),
    ResourceOwner("carol", "proj-c"),
]
ALICE = Visibility(
    username="alice",
    managed=frozenset({"proj-a"}),
    entities=frozenset({"user:alice"}),
)
FILTERS = {
    "none": JobFilter(),
    "states: RUNNING": JobFilter(states=frozenset({JobState.RUNNING})),
    "application": JobFilter(application="sleep"),
    "createdBy": JobFilter(created_by="bob"),
    "project": JobFilter(project="proj-a"),
    "provider": JobFilter(provider="local"),
    "productId": JobFilter(product_id="cpu-small"),
    "productCategory": JobFilter(product_category="cpu"),
    "createdAfter": JobFilter(created_after=START),
    "createdBefore": JobFilter(created_before=START + 10**12),
    "createdAfter (newest)": None,  # the newest 1,000 jobs of each store: made per store
    "ids (100)": None,  # the page's own ids: made per store
    "providerGeneratedId": JobFilter(provider_generated_id="slurm-42"),
    "query": JobFilter(query="benchmark"),
}


def spec(app: str, number: int) -> JobSpecification:
    return JobSpecification(
        application=NameAndVersion(app, "1"),
        product=ProductReference("cpu-small", "cpu", "local"),
        # Names in no relation to the application or the state: a filter on either then finds
        # its jobs spread over the name order, as a real mix would.
        name=f"benchmark {number * 7919 % 1009:04d}",
        parameters=(("message", TextValue("hello")),),
    )


async def opened(db: Path, count: int) -> SqliteJobStore:
    """The store at `db`, seeded with `count` jobs unless it is there already (`--folder`)."""
    if await asyncio.to_thread(db.exists):
        store = SqliteJobStore(db)
        await store.open()
        return store
    return await seed(db, count)


async def seed(db: Path, count: int) -> SqliteJobStore:
    """`count` jobs in batches of 200 (each of one owner, in turn), a tenth of them running."""
    store = SqliteJobStore(db)
    await store.open()
    made = 0
    while made < count:
        owner = OWNERS[(made // 200) % len(OWNERS)]
        # Applications alternate in threes, so that the running tenth has both.
        apps = [("echo", "sleep")[(made + i) // 3 % 2] for i in range(200)]
        created = await store.create_jobs(
            NewSubmission(
                owner,
                [spec(app, made + i) for i, app in enumerate(apps)],
                created_at=START + made,
                acl=initial_acl(owner),
            )
        )
        for job in created.jobs[::10]:
            running = JobStatus(JobState.RUNNING, started_at=START)
            await store.commit_update(
                job, UpdateRequest(job.id, state=JobState.RUNNING), running, START + made
            )
        made += len(created.jobs)
    return store


async def page_time(store: SqliteJobStore, query: JobQuery, repeat: int) -> float:
    """The median time of one page, in milliseconds."""
    await store.find_jobs(query)  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await store.find_jobs(query)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def run(small: int, large: int, repeat: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = keep or Path(scratch)
        started = time.perf_counter()
        stores = {n: await opened(folder / f"jobs-{n}.db", n) for n in (small, large)}
        print(f"seeded {small:,} and {large:,} jobs in {time.perf_counter() - started:.1f} s")
        print(f"one page of 100 as alice, median of {repeat} (ms); ratio = {large:,} / {small:,}")
        print(f"  {'filter':22} {'order':15} {small:>10,} {large:>10,} {'ratio':>7}")
        ratios = []
        for name, job_filter in FILTERS.items():
            for field in OrderField:
                for descending in (True, False):
                    figures, rows = [], []
                    for size, store in stores.items():
                        chosen = job_filter
                        if name == "createdAfter (newest)":
                            chosen = JobFilter(created_after=START + size - 1000)
                        elif chosen is None:
                            page = await store.find_jobs(JobQuery(ALICE, limit=100))
                            chosen = JobFilter(ids=tuple(job.id for job in page.jobs))
                        order = JobOrder(field, descending)
                        query = JobQuery(ALICE, chosen, order, limit=100)
                        figures.append(await page_time(store, query, repeat))
                        rows.append(len((await store.find_jobs(query)).jobs))
                    ratio = figures[1] / figures[0]
                    ratios.append(ratio)
                    label = f"{field.name.lower()} {'desc' if descending else 'asc'}"
                    # A small store may not fill the page (60 running jobs of alice's 600):
                    # then the large one's page has more jobs to read, and the ratio shows it.
                    shown = "" if rows[0] == rows[1] else f"  ({rows[0]} and {rows[1]} jobs)"
                    print(
                        f"  {name:22} {label:15} {figures[0]:10.2f} {figures[1]:10.2f}"
                        f" {ratio:7.1f}{shown}"
                    )
        print(
            f"worst ratio {max(ratios):.1f}; within 1.2: {sum(r <= 1.2 for r in ratios)}"
            f" of {len(ratios)}"
        )
        for store in stores.values():
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--folder", type=Path, help="keep the seeded stores here, and reuse them next time"
    )
    args = parser.parse_args()
    asyncio.run(run(args.small, args.large, args.repeat, args.folder))


if __name__ == "__main__":
    main()
