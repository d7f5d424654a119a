"""jobUpdates: history, resume after a cursor, live updates and what a watcher may see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobgate.cursors import encode_position
from tests.api.documents import CANCEL, WATCH, job_spec, latest_cursor, submit, wait_for_state
from tests.api.scraping import samples, value
from tests.factories import submission
from tests.gateway import (
    ALICE,
    BOB,
    CAROL,
    Gateway,
    GraphQLError,
    gateway_settings,
    running_gateway,
    subscribe,
)

# Every test here runs on both paths a jobUpdates subscription can take: the lean one and
# Strawberry's own (server.lean_subscriptions = false).
PATHS = [True, False]


@pytest.fixture(params=PATHS, ids=["lean", "strawberry"])
async def gateway(
    request: pytest.FixtureRequest, storage_url: str, tmp_path: Path
) -> AsyncIterator[Gateway]:
    server = {"data_dir": str(tmp_path / "data"), "lean_subscriptions": request.param}
    settings = gateway_settings(tmp_path / "data", storage_url, server=server)
    async with running_gateway(settings) as running:
        assert running.app.state.graphql.watch_renderers.planner.enabled is request.param
        yield running


@pytest.fixture(params=PATHS, ids=["lean", "strawberry"])
async def sqlite_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Gateway]:
    server = {"data_dir": str(tmp_path / "data"), "lean_subscriptions": request.param}
    settings = gateway_settings(tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", server=server)
    async with running_gateway(settings) as running:
        assert running.app.state.graphql.watch_renderers.planner.enabled is request.param
        yield running


async def test_with_job_ids_the_whole_history_comes_then_the_stream_completes(
    gateway: Gateway,
) -> None:
    alice = gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec())
    await wait_for_state(alice, job_id, "SUCCESS")
    async with subscribe(gateway, WATCH, {"ids": [job_id]}) as stream:
        events = await stream.rest()
    assert [e["jobUpdates"]["update"]["state"] for e in events] == [
        "IN_QUEUE",
        "RUNNING",
        "SUCCESS",
    ]
    assert stream.completed
    # Replayed events carry the job as it is now.
    assert {e["jobUpdates"]["job"]["status"]["state"] for e in events} == {"SUCCESS"}


async def test_resuming_after_a_cursor_gives_exactly_what_came_after(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    ids = await submit(alice, job_spec(message="1"), job_spec(message="2"))
    for job_id in ids:
        await wait_for_state(alice, job_id, "SUCCESS")
    async with subscribe(gateway, WATCH, {"ids": ids}) as stream:
        everything = await stream.rest()
    cursors = [int(e["jobUpdates"]["cursor"]) for e in everything]
    assert len(set(cursors)) == 6, cursors
    assert cursors == sorted(cursors)
    middle = everything[2]["jobUpdates"]["cursor"]
    async with subscribe(gateway, WATCH, {"ids": ids, "after": middle}) as stream:
        resumed = await stream.rest()
    assert [e["jobUpdates"]["cursor"] for e in resumed] == [
        e["jobUpdates"]["cursor"] for e in everything[3:]
    ]


async def test_list_then_subscribe_after_the_latest_cursor_misses_nothing(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    (before,) = await submit(alice, job_spec(message="before"))
    await wait_for_state(alice, before, "SUCCESS")
    latest = (await alice.execute("{ latestUpdateCursor }"))["latestUpdateCursor"]
    async with subscribe(gateway, WATCH, {"after": latest}) as stream:
        (after,) = await submit(alice, job_spec(message="after"))
        events = await stream.take(3)
    assert [e["jobUpdates"]["jobId"] for e in events] == [after] * 3
    assert [e["jobUpdates"]["stateAfter"] for e in events] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert all(int(e["jobUpdates"]["cursor"]) > int(latest) for e in events)


async def test_without_job_ids_a_watcher_sees_only_jobs_it_may_read(gateway: Gateway) -> None:
    alice, bob = gateway.client(ALICE), gateway.client(BOB)
    after = {"after": await latest_cursor(alice)}
    async with (
        subscribe(gateway, WATCH, after, token=CAROL) as carol_stream,
        subscribe(gateway, WATCH, after, token=BOB) as bob_stream,
    ):
        (secret,) = await submit(alice, job_spec(message="personal"))
        (shared,) = await submit(
            gateway.client(CAROL), job_spec(message="project"), project="proj-a"
        )
        (bobs,) = await submit(bob, job_spec(message="bob"))
        carol_events = await carol_stream.take(3)
        bob_events = await bob_stream.take(3)
        with pytest.raises(TimeoutError):
            await carol_stream.next(timeout=1.0)
    assert {e["jobUpdates"]["jobId"] for e in carol_events} == {shared}
    assert {e["jobUpdates"]["jobId"] for e in bob_events} == {bobs}
    assert secret not in {e["jobUpdates"]["jobId"] for e in carol_events + bob_events}


async def test_the_legacy_graphql_ws_protocol_works_too(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with subscribe(sqlite_gateway, WATCH, after, protocol="graphql-ws") as stream:
        (job_id,) = await submit(alice, job_spec())
        events = await stream.take(3)
    assert [e["jobUpdates"]["stateAfter"] for e in events] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert {e["jobUpdates"]["jobId"] for e in events} == {job_id}


async def test_a_bad_cursor_is_an_invalid_cursor_error(sqlite_gateway: Gateway) -> None:
    with pytest.raises(GraphQLError) as bad:
        async with subscribe(sqlite_gateway, WATCH, {"after": "yesterday"}) as stream:
            await stream.next()
    assert bad.value.codes == ["INVALID_CURSOR"]


async def test_many_concurrent_jobs_reach_a_watcher_in_cursor_order(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    async with subscribe(gateway, WATCH, {"after": await latest_cursor(alice)}) as stream:
        ids = await submit(alice, *(job_spec(message=str(n)) for n in range(10)))
        events = await stream.take(30, timeout=30)
    cursors = [int(e["jobUpdates"]["cursor"]) for e in events]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == 30
    for job_id in ids:
        states = [
            e["jobUpdates"]["stateAfter"] for e in events if e["jobUpdates"]["jobId"] == job_id
        ]
        assert states == ["IN_QUEUE", "RUNNING", "SUCCESS"]


# `updates` is read from the store as each event is rendered: the lean path cannot send such an
# event from the feed's own pass, so every one goes through the watcher's queue.
WATCH_WAITING = WATCH.replace("job { id", "job { updates(last: 1) { cursor } id")


async def test_a_watcher_that_falls_behind_catches_up_from_the_store(
    sqlite_gateway: Gateway,
) -> None:
    feed = sqlite_gateway.services.feed
    feed.max_queued = 2  # new subscriptions get a tiny queue
    alice = sqlite_gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with subscribe(sqlite_gateway, WATCH_WAITING, after) as stream:
        await asyncio.sleep(0.2)
        ids = await submit(alice, *(job_spec(message=str(n)) for n in range(8)))
        for job_id in ids:
            await wait_for_state(alice, job_id, "SUCCESS")
        events = await stream.take(24, timeout=30)
    cursors = [int(e["jobUpdates"]["cursor"]) for e in events]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == 24
    assert {e["jobUpdates"]["jobId"] for e in events} == set(ids)
    await alice.execute(CANCEL, {"ids": ids})
    assert value(await samples(sqlite_gateway), "jobgate_feed_catch_ups_total") >= 1


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize(
    ("document", "variables", "code"),
    [
        ("subscription { jobUpdates { cursor nope } }", {}, "GRAPHQL_VALIDATION_FAILED"),
        (WATCH, {"after": 5}, "BAD_USER_INPUT"),
    ],
)
async def test_a_subscription_refused_before_it_runs_says_why_with_a_code(
    sqlite_gateway: Gateway, protocol: str, document: str, variables: dict[str, object], code: str
) -> None:
    with pytest.raises(GraphQLError) as refused:
        async with subscribe(sqlite_gateway, document, variables, protocol=protocol) as stream:
            await stream.next()
    assert refused.value.codes == [code]


async def test_the_latest_cursor_is_the_stores_newest_even_while_the_feed_trails(
    tmp_path: Path,
) -> None:
    """`latestUpdateCursor` is where "list, then subscribe after it" starts. The update feed
    reads the store when rung and polls; on a busy machine it trailed, the cursor was older
    than updates a listing had just shown, and the subscription repeated them."""
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", feed={"poll_interval_seconds": 60}
    )
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        await latest_cursor(alice)  # the feed is up
        store = gateway.services.store
        await store.create_jobs(submission())  # behind the feed's back: no doorbell rings
        newest = await store.latest_seq()
        assert await latest_cursor(alice) == encode_position(newest)
