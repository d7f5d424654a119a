"""Between events, a lean `jobUpdates` subscription waits parked in the feed, without a task
(`jobgate.streaming.lean`). Parking must lose nothing: events it cannot send from the feed's
own pass still come, it parks again after them, and whatever ends it (its client's
`complete`, its last job turning final) gives back all it holds."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import ClientConnection

from jobgate.app import JobgateGraphQL
from jobgate.streaming.lean import LeanWatch
from tests.api.documents import job_spec, latest_cursor, submit
from tests.gateway import ALICE, Gateway, Json, subscribe, until

LIVE = "subscription Live($after: String) { jobUpdates(after: $after) { cursor jobId stateAfter } }"
# `updates` is read from the store as an event is rendered: never ready in the feed's pass, so
# every event of this document resumes its watch.
READING_THE_STORE = """
subscription Reading($after: String) {
  jobUpdates(after: $after) { cursor jobId stateAfter job { updates(last: 1) { state } } }
}
"""
ONE_JOB = "subscription One($ids: [ID!]) { jobUpdates(jobIds: $ids) { cursor stateAfter } }"


def view(gateway: Gateway) -> JobgateGraphQL:
    graphql: JobgateGraphQL = gateway.app.state.graphql
    return graphql


def parked(gateway: Gateway) -> list[LeanWatch]:
    """The gateway's lean watches waiting without a task."""
    return [w for w in view(gateway).lean_watches.values() if w.operation.task is None]


def holds_nothing(gateway: Gateway) -> bool:
    return (
        not view(gateway).lean_watches
        and gateway.services.feed.subscriber_count == 0
        and gateway.services.occupancy.subscriptions_of("user:alice") == 0
    )


async def test_an_idle_watch_is_parked_and_its_clients_complete_gives_back_all_it_holds(
    sqlite_gateway: Gateway,
) -> None:
    alice = sqlite_gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with subscribe(sqlite_gateway, LIVE, after) as stream:
        await until(lambda: len(parked(sqlite_gateway)) == 1)
        (first,) = await submit(alice, job_spec(message="one"))
        events = await stream.take(3)
        assert [e["jobUpdates"]["jobId"] for e in events] == [first] * 3
        await until(lambda: len(parked(sqlite_gateway)) == 1)
        await stream.ws.send(json.dumps({"id": "1", "type": "complete"}))
        await until(lambda: holds_nothing(sqlite_gateway))
        # The id is free again, and a new operation under it streams.
        resubscribe = {"query": LIVE, "variables": {"after": events[-1]["jobUpdates"]["cursor"]}}
        await stream.ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": resubscribe}))
        await until(lambda: len(parked(sqlite_gateway)) == 1)
        (second,) = await submit(alice, job_spec(message="two"))
        assert [e["jobUpdates"]["jobId"] for e in await stream.take(3)] == [second] * 3
    await until(lambda: holds_nothing(sqlite_gateway))


async def test_a_watch_ended_before_its_resumed_task_ran_gives_back_all_it_holds(
    sqlite_gateway: Gateway,
) -> None:
    """A task cancelled before its first step never runs its `finally`: ending the watch
    cannot be left to it."""
    alice = sqlite_gateway.client(ALICE)
    async with subscribe(sqlite_gateway, LIVE, {"after": await latest_cursor(alice)}):
        await until(lambda: len(parked(sqlite_gateway)) == 1)
        (watch,) = parked(sqlite_gateway)
        watch.resume()  # as the feed does for an entry the watch declined
        watch.cancel()  # as the handler does for its client's `complete`, before the task ran
        assert holds_nothing(sqlite_gateway)
        await asyncio.sleep(0.2)
        assert holds_nothing(sqlite_gateway)


async def test_events_the_feeds_pass_cannot_send_come_in_order_and_the_watch_parks_again(
    sqlite_gateway: Gateway,
) -> None:
    alice = sqlite_gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with (
        subscribe(sqlite_gateway, READING_THE_STORE, after) as reading,
        subscribe(sqlite_gateway, LIVE, after) as live,
    ):
        await until(lambda: len(parked(sqlite_gateway)) == 2)
        assert sqlite_gateway.services.feed.grouped_count == 2
        ids = await submit(alice, *(job_spec(message=str(n)) for n in range(4)))
        by_the_task = await reading.take(12)
        from_the_pass = await live.take(12)
        await until(lambda: len(parked(sqlite_gateway)) == 2)
        # The one that left its group for each event is back in it.
        assert sqlite_gateway.services.feed.grouped_count == 2
    for events in (by_the_task, from_the_pass):
        cursors = [int(e["jobUpdates"]["cursor"]) for e in events]
        assert cursors == sorted(set(cursors))
        assert {e["jobUpdates"]["jobId"] for e in events} == set(ids)
    assert [e["jobUpdates"]["cursor"] for e in by_the_task] == [
        e["jobUpdates"]["cursor"] for e in from_the_pass
    ]
    assert all(e["jobUpdates"]["job"]["updates"] for e in by_the_task)
    await until(lambda: holds_nothing(sqlite_gateway))


async def test_watchers_of_one_document_each_get_their_own_operation_id(
    sqlite_gateway: Gateway,
) -> None:
    """Watchers of one document share one rendering per event, and one whole message among
    those with the same operation id: each still gets its own id."""
    alice = sqlite_gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with (
        subscribe(sqlite_gateway, LIVE, after) as first,
        subscribe(sqlite_gateway, LIVE, after) as second,
    ):
        again = {"query": LIVE, "variables": after}
        await second.ws.send(json.dumps({"id": "7", "type": "subscribe", "payload": again}))
        await until(lambda: len(parked(sqlite_gateway)) == 3)
        # They wait in one group of the feed, whose pass writes each its message.
        assert sqlite_gateway.services.feed.grouped_count == 3
        (job_id,) = await submit(alice, job_spec())
        on_first = await next_messages(first.ws, 3)
        on_second = await next_messages(second.ws, 6)
    assert [operation for operation, _ in on_first] == ["1"] * 3
    assert sorted(operation for operation, _ in on_second) == ["1"] * 3 + ["7"] * 3
    events = [event for _, event in on_first]
    assert [e["jobId"] for e in events] == [job_id] * 3
    for operation in ("1", "7"):
        assert [event for id_, event in on_second if id_ == operation] == events


async def next_messages(ws: ClientConnection, count: int) -> list[tuple[str, Json]]:
    """The operation id and `jobUpdates` of the next `count` `next` messages."""
    found: list[tuple[str, Json]] = []
    async with asyncio.timeout(20):
        while len(found) < count:
            message = json.loads(await ws.recv())
            if message["type"] == "next":
                found.append((message["id"], message["payload"]["data"]["jobUpdates"]))
    return found


async def test_a_parked_watch_of_a_job_completes_with_its_final_update(
    sqlite_gateway: Gateway,
) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=2))
    async with subscribe(sqlite_gateway, ONE_JOB, {"ids": [job_id]}) as stream:
        await until(lambda: len(parked(sqlite_gateway)) == 1)
        events = await stream.rest(timeout=30)
        assert stream.completed
        assert events[-1]["jobUpdates"]["stateAfter"] == "SUCCESS"
        await until(lambda: holds_nothing(sqlite_gateway))
