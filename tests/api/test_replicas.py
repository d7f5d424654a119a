"""Two gateway replicas on one MongoDB, with Redis as the bus: real processes, real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.documents import REPORT, WATCH, job_spec, latest_cursor, submit, wait_for_state
from tests.gateway import PROVIDER, subscribe
from tests.processes import ServeProcess, write_config
from tests.servers import RedisServer, fresh_database

# Long enough that only the bus can deliver within the tests' waits: no help from polling.
SLOW_POLL = 60.0


@pytest.fixture
async def replicas(
    tmp_path: Path, mongo_server: str, redis_server: RedisServer
) -> AsyncIterator[tuple[ServeProcess, ServeProcess]]:
    storage = fresh_database(mongo_server)
    started = []
    for name in ("a", "b"):
        config = write_config(
            tmp_path / f"{name}.toml",
            data_dir=tmp_path / f"data-{name}",
            storage=storage,
            bus=redis_server.url,
            poll=SLOW_POLL,
        )
        replica = ServeProcess(config)
        replica.start()
        started.append(replica)
    try:
        yield started[0], started[1]
    finally:
        for replica in started:
            replica.stop()


async def test_a_watcher_on_one_replica_sees_every_update_applied_through_another(
    replicas: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = replicas
    alice_b, provider_b = b.client(), b.client(PROVIDER)
    after = {"after": await latest_cursor(a.client())}
    async with subscribe(a, WATCH, after) as stream:
        ids = await submit(alice_b, *(job_spec(message=str(n)) for n in range(3)))
        (sleeper,) = await submit(alice_b, job_spec("sleep", seconds=120))
        await wait_for_state(alice_b, sleeper, "RUNNING")
        notes = [{"jobId": sleeper, "status": f"note {n}"} for n in range(5)]
        results = await provider_b.execute(REPORT, {"updates": notes})
        assert {r["outcome"] for r in results["reportJobUpdates"]["results"]} == {"APPLIED"}
        events = await stream.take(3 * 3 + 2 + 5, timeout=15)
    cursors = [int(e["jobUpdates"]["cursor"]) for e in events]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == len(cursors)
    for job_id in ids:
        states = [
            e["jobUpdates"]["stateAfter"] for e in events if e["jobUpdates"]["jobId"] == job_id
        ]
        assert states == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    statuses = [
        e["jobUpdates"]["update"]["status"] for e in events if e["jobUpdates"]["jobId"] == sleeper
    ]
    assert statuses[-5:] == [f"note {n}" for n in range(5)]


async def test_watchers_keep_their_stream_through_a_redis_restart_and_catch_up(
    replicas: tuple[ServeProcess, ServeProcess], redis_server: RedisServer
) -> None:
    a, b = replicas
    alice_b = b.client()
    after = {"after": await latest_cursor(a.client())}
    async with subscribe(a, WATCH, after) as stream:
        (before,) = await submit(alice_b, job_spec(message="before"))
        first = await stream.take(3, timeout=15)
        assert {e["jobUpdates"]["jobId"] for e in first} == {before}

        redis_server.stop()
        (during,) = await submit(alice_b, job_spec(message="during"))
        await wait_for_state(alice_b, during, "SUCCESS")
        redis_server.start()

        caught_up = await stream.take(3, timeout=20)
    assert [e["jobUpdates"]["jobId"] for e in caught_up] == [during] * 3
    assert [e["jobUpdates"]["stateAfter"] for e in caught_up] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert "lost the connection to Redis" in a.output()
    assert "reconnected to Redis" in a.output()
    assert "cannot ring the event bus" in b.output()
