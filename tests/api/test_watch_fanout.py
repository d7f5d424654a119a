"""jobUpdates over graphql-transport-ws takes jobgate's lean path (one rendering per event for
every watcher asking the same thing); these check that nobody can tell, except by its speed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from jobgate.access import Identity
from jobgate.services.watch import UpdateEvent
from jobgate.streaming.render import EventRenderer
from tests.api.documents import JOB_FIELDS, job_spec, latest_cursor, submit, wait_for_state
from tests.gateway import ALICE, BOB, CAROL, Gateway, Json, subscribe, until

# Everything a frontend might select, `updates` aside: a live event's `updates` are read when
# it is rendered, so two renderings a moment apart may differ. Replays of final jobs may have it.
UPDATE_FIELDS = "cursor jobId stateAfter update { cursor state status timestamp }"
LIVE = f"""
subscription Live($after: String) {{
  jobUpdates(after: $after) {{ {UPDATE_FIELDS} job {{ {JOB_FIELDS.split("  updates")[0]} }} }}
}}
"""
HISTORY = f"""
subscription History($ids: [ID!]) {{
  jobUpdates(jobIds: $ids) {{ {UPDATE_FIELDS} job {{ {JOB_FIELDS} }} }}
}}
"""
MINE = """
subscription Mine($after: String) { jobUpdates(after: $after) { jobId job { permissions { myself } } } }
"""
OWNERSHIP = """
subscription Ownership($after: String) {
  jobUpdates(after: $after) { jobId stateAfter job { id owner { createdBy project } } }
}
"""
READING_THE_STORE = """
subscription Reading($after: String) {
  jobUpdates(after: $after) { jobId stateAfter job { updates(last: 1) { state } } }
}
"""
THROUGH_A_FRAGMENT = """
subscription Fragment($after: String) { ...Updates }
fragment Updates on Subscription { jobUpdates(after: $after) { jobId stateAfter } }
"""


async def test_both_websocket_protocols_deliver_the_same_events(gateway: Gateway) -> None:
    """graphql-ws runs on Strawberry's own path: the lean path must send the same data."""
    alice = gateway.client(ALICE)
    (finished,) = await submit(alice, job_spec(message="history"))
    await wait_for_state(alice, finished, "SUCCESS")
    after = {"after": await latest_cursor(alice)}
    async with (
        subscribe(gateway, LIVE, after) as lean,
        subscribe(gateway, LIVE, after, protocol="graphql-ws") as strawberry,
        subscribe(gateway, HISTORY, {"ids": [finished]}) as lean_history,
        subscribe(gateway, HISTORY, {"ids": [finished]}, protocol="graphql-ws") as history,
    ):
        (live,) = await submit(alice, job_spec(message="live"), project="proj-a")
        lean_events, strawberry_events = await lean.take(3), await strawberry.take(3)
        lean_replay, replay = await lean_history.rest(), await history.rest()
    assert [e["jobUpdates"]["jobId"] for e in lean_events] == [live] * 3
    assert lean_events == strawberry_events
    assert len(lean_replay) == 3
    assert lean_replay[0]["jobUpdates"]["job"]["updates"]
    assert lean_replay == replay
    assert lean_history.completed
    assert history.completed


async def test_watchers_with_one_document_still_see_their_own_permissions(
    gateway: Gateway,
) -> None:
    alice = gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with (
        subscribe(gateway, MINE, after) as owner,
        subscribe(gateway, MINE, after, token=CAROL) as member,
        subscribe(gateway, MINE, after) as owner_again,
    ):
        (shared,) = await submit(gateway.client(CAROL), job_spec(), project="proj-a")
        seen = [await stream.take(3) for stream in (owner, member, owner_again)]
    for events in seen:
        assert [e["jobUpdates"]["jobId"] for e in events] == [shared] * 3
    mine, carols, mine_again = (
        [e["jobUpdates"]["job"]["permissions"]["myself"] for e in s] for s in seen
    )
    assert mine == mine_again == [["ADMIN", "READ", "EDIT"]] * 3
    assert carols == [["READ", "EDIT"]] * 3


async def test_callers_sharing_a_rendering_still_get_only_the_jobs_they_may_read(
    gateway: Gateway,
) -> None:
    """No field of OWNERSHIP depends on the caller, so Alice (the project's PI) and Carol (who
    made the job) share its renderings; Bob, outside the project, asks the same and must still
    get nothing."""
    alice = gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with (
        subscribe(gateway, OWNERSHIP, after) as owner,
        subscribe(gateway, OWNERSHIP, after, token=CAROL) as member,
        subscribe(gateway, OWNERSHIP, after, token=BOB) as outsider,
    ):
        (shared,) = await submit(gateway.client(CAROL), job_spec(), project="proj-a")
        seen_by_owner, seen_by_member = await owner.take(3), await member.take(3)
        with pytest.raises(TimeoutError):
            await outsider.next(timeout=1.0)
    assert seen_by_owner == seen_by_member
    assert [e["jobUpdates"]["stateAfter"] for e in seen_by_owner] == [
        "IN_QUEUE",
        "RUNNING",
        "SUCCESS",
    ]
    assert seen_by_owner[0]["jobUpdates"]["job"] == {
        "id": shared,
        "owner": {"createdBy": "carol", "project": "proj-a"},
    }


async def test_a_watcher_that_stops_leaves_the_others_streaming(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    feed = gateway.services.feed
    after = {"after": await latest_cursor(alice)}
    async with (
        subscribe(gateway, MINE, after) as staying,
        subscribe(gateway, MINE, after) as leaving,
    ):
        await until(lambda: feed.subscriber_count == 2)
        (first,) = await submit(alice, job_spec(message="one"))
        assert (await leaving.next())["jobUpdates"]["jobId"] == first
        await leaving.ws.send(json.dumps({"id": "1", "type": "complete"}))
        await until(lambda: feed.subscriber_count == 1)
        events = await staying.take(3)
        (second,) = await submit(alice, job_spec(message="two"))
        events += await staying.take(3)
        assert [e["jobUpdates"]["jobId"] for e in events] == [first] * 3 + [second] * 3
        # The stopped one hears nothing more for its id (keep-alives aside).
        with pytest.raises(TimeoutError):
            await _next_message_for(leaving.ws, "1", timeout=1.0)
    await until(lambda: feed.subscriber_count == 0)


async def test_a_subscription_the_lean_path_does_not_take_still_streams(
    sqlite_gateway: Gateway,
) -> None:
    alice = sqlite_gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with subscribe(sqlite_gateway, THROUGH_A_FRAGMENT, after) as stream:
        (job_id,) = await submit(alice, job_spec())
        events = await stream.take(3)
    assert [e["jobUpdates"]["stateAfter"] for e in events] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert {e["jobUpdates"]["jobId"] for e in events} == {job_id}


async def test_watchers_whose_rendering_reads_the_store_share_one_per_event(
    sqlite_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`job { updates }` is read from the store as each event is rendered: such an event cannot
    go out from the feed's own pass, but the rendering that pass starts is the one every
    watcher of the document then waits for, not one of several."""
    renderings: list[int] = []
    rendering = EventRenderer._rendering

    def counted(renderer: EventRenderer, event: UpdateEvent, identity: Identity) -> Any:
        renderings.append(event.update.seq)
        return rendering(renderer, event, identity)

    monkeypatch.setattr(EventRenderer, "_rendering", counted)
    alice = sqlite_gateway.client(ALICE)
    after = {"after": await latest_cursor(alice)}
    async with contextlib.AsyncExitStack() as stack:
        watchers = [
            await stack.enter_async_context(subscribe(sqlite_gateway, READING_THE_STORE, after))
            for _ in range(3)
        ]
        await until(lambda: sqlite_gateway.services.feed.subscriber_count == 3)
        (job_id,) = await submit(alice, job_spec())
        seen = [await watcher.take(3) for watcher in watchers]
    assert all(events == seen[0] for events in seen)
    assert [e["jobUpdates"]["jobId"] for e in seen[0]] == [job_id] * 3
    assert len(renderings) == len(set(renderings)) == 3


async def _next_message_for(ws: ClientConnection, operation_id: str, timeout: float) -> Json:
    async with asyncio.timeout(timeout):
        while True:
            message: Json = json.loads(await ws.recv())
            if message.get("id") == operation_id:
                return message
