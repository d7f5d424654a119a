"""jobLogs: a job's output lines, the kept tail first, then live, until the job ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.documents import job_spec, submit, wait_for_state
from tests.gateway import (
    ALICE,
    BOB,
    PROVIDER,
    Gateway,
    GraphQLError,
    gateway_settings,
    running_gateway,
    subscribe,
)

LOGS = """
subscription Logs($id: ID!, $after: String) {
  jobLogs(jobId: $id, after: $after) { cursor jobId rank timestamp stdout stderr channel }
}
"""


def lines(events: list[dict[str, Any]]) -> list[tuple[int, str, str | None]]:
    return [
        (
            e["jobLogs"]["rank"],
            e["jobLogs"]["channel"],
            e["jobLogs"]["stdout"] or e["jobLogs"]["stderr"],
        )
        for e in events
    ]


async def test_a_running_jobs_lines_stream_live_and_the_stream_ends_with_the_job(
    sqlite_gateway: Gateway,
) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("chatty", pause=2))
    await wait_for_state(alice, job_id, "RUNNING")
    async with subscribe(sqlite_gateway, LOGS, {"id": job_id}) as stream:
        events = await stream.rest(timeout=15)
    assert stream.completed
    assert sorted(lines(events)) == [
        (0, "stderr", "two"),
        (0, "stdout", "one"),
        (0, "stdout", "three"),
    ]
    stdout = [line for _, channel, line in lines(events) if channel == "stdout"]
    assert stdout == ["one", "three"]
    cursors = [int(e["jobLogs"]["cursor"]) for e in events]
    assert cursors == sorted(cursors)
    assert {e["jobLogs"]["jobId"] for e in events} == {job_id}
    job = await wait_for_state(alice, job_id, "SUCCESS")
    assert job["status"]["isFinal"]


async def test_an_ended_jobs_kept_lines_come_and_the_stream_completes(
    sqlite_gateway: Gateway,
) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, {**job_spec("count", to=5), "replicas": 2})
    await wait_for_state(alice, job_id, "SUCCESS")
    async with subscribe(sqlite_gateway, LOGS, {"id": job_id}) as stream:
        events = await stream.rest()
    for rank in (0, 1):
        assert [text for r, _, text in lines(events) if r == rank] == ["1", "2", "3", "4", "5"]
    third = events[2]["jobLogs"]["cursor"]
    async with subscribe(sqlite_gateway, LOGS, {"id": job_id, "after": third}) as stream:
        later = await stream.rest()
    assert [e["jobLogs"]["cursor"] for e in later] == [e["jobLogs"]["cursor"] for e in events[3:]]


async def test_only_a_bounded_tail_is_kept(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", logs={"tail_lines": 50}
    )
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (job_id,) = await submit(alice, job_spec("count", to=200))
        await wait_for_state(alice, job_id, "SUCCESS")
        async with subscribe(gateway, LOGS, {"id": job_id}) as stream:
            events = await stream.rest()
    assert [text for _, _, text in lines(events)] == [str(n) for n in range(151, 201)]
    assert events[0]["jobLogs"]["cursor"] == "151"


async def test_logs_of_a_job_that_ended_before_a_restart_come_from_its_files(
    tmp_path: Path,
) -> None:
    settings = gateway_settings(tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db")
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (job_id,) = await submit(alice, job_spec("count", to=3))
        await wait_for_state(alice, job_id, "SUCCESS")
    async with (
        running_gateway(settings) as restarted,
        subscribe(restarted, LOGS, {"id": job_id}) as stream,
    ):
        events = await stream.rest()
    assert lines(events) == [(0, "stdout", "1"), (0, "stdout", "2"), (0, "stdout", "3")]


async def test_a_product_without_log_support_gets_not_supported(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("count", product="cpu-basic", to=3))
    with pytest.raises(GraphQLError) as refused:
        async with subscribe(sqlite_gateway, LOGS, {"id": job_id}) as stream:
            await stream.next()
    assert refused.value.codes == ["NOT_SUPPORTED"]


async def test_another_users_job_logs_are_not_found(sqlite_gateway: Gateway) -> None:
    (job_id,) = await submit(sqlite_gateway.client(BOB), job_spec("count", to=3))
    with pytest.raises(GraphQLError) as refused:
        async with subscribe(sqlite_gateway, LOGS, {"id": job_id}, token=ALICE) as stream:
            await stream.next()
    assert refused.value.codes == ["NOT_FOUND"]


REPORT_LOGS = """
mutation($lines: [JobLogInput!]!) {
  reportJobLogs(input: {lines: $lines}) { accepted userErrors { index code jobId } }
}
"""


async def test_providers_report_lines_of_their_own_jobs_with_log_support(
    sqlite_gateway: Gateway,
) -> None:
    alice = sqlite_gateway.client(ALICE)
    mine, no_logs = await submit(
        alice,
        {**job_spec("sleep", seconds=30), "replicas": 2},  # rank 1 is one of its own
        job_spec("sleep", product="cpu-basic", seconds=30),
    )
    (theirs,) = await submit(alice, job_spec("sleep", provider="other", product="cpu-other"))
    await wait_for_state(alice, mine, "RUNNING")
    lines_in = [
        {"jobId": mine, "rank": 1, "stdout": "reported", "channel": "progress"},
        {"jobId": theirs, "stdout": "not mine"},
        {"jobId": "999999", "stderr": "nobody's"},
        {"jobId": no_logs, "stdout": "no logs here"},
    ]
    data = await sqlite_gateway.client(PROVIDER).execute(REPORT_LOGS, {"lines": lines_in})
    payload = data["reportJobLogs"]
    assert payload["accepted"] == 1
    assert [(e["index"], e["code"]) for e in payload["userErrors"]] == [
        (1, "NOT_FOUND"),  # another provider's job: answered as a missing one
        (2, "NOT_FOUND"),
        (3, "NOT_SUPPORTED"),
    ]
    await alice.execute(
        "mutation($ids: [ID!]!) { cancelJobs(input: {ids: $ids}) { jobs { id } } }",
        {"ids": [mine, no_logs, theirs]},
    )
    async with subscribe(sqlite_gateway, LOGS, {"id": mine}) as stream:
        events = await stream.rest(timeout=15)
    assert (1, "progress", "reported") in lines(events)
