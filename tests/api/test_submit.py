"""submitJobs: validation as data, all or nothing, duplicates and idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.documents import JOBS, SUBMIT, job_spec, submit
from tests.gateway import ALICE, Gateway, GraphQLClient

Json = dict[str, Any]


async def submit_raw(client: GraphQLClient, specs: list[Json], **input: Any) -> Json:
    data = await client.execute(SUBMIT, {"input": {"jobs": specs, **input}})
    payload: Json = data["submitJobs"]
    return payload


async def job_count(client: GraphQLClient) -> int:
    count: int = (await client.execute(JOBS))["jobs"]["totalCount"]
    return count


async def test_a_submitted_job_shows_what_was_asked_for(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    spec = job_spec("shout", name="loud one", word="hey", times=2)
    spec["timeAllocation"] = {"hours": 1, "minutes": 2}
    spec["allowDuplicateJob"] = False
    payload = await submit_raw(alice, [spec], project="proj-a")
    assert payload["userErrors"] == []
    (job,) = payload["jobs"]
    assert job["owner"] == {"createdBy": "alice", "project": "proj-a"}
    assert job["status"]["state"] == "IN_QUEUE"
    assert job["specification"]["name"] == "loud one"
    assert job["specification"]["timeAllocation"] == {"hours": 1, "minutes": 2, "seconds": 0}
    assert job["specification"]["parameters"] == [
        {"name": "word", "value": {"__typename": "TextValue", "text": "hey"}},
        {"name": "times", "value": {"__typename": "IntegerValue", "integer": "2"}},
        {"name": "mode", "value": {"__typename": "TextValue", "text": "a"}},
    ]
    assert [u["state"] for u in job["updates"]] == ["IN_QUEUE"]
    assert job["createdAt"].endswith("Z")


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        (
            job_spec("nope"),
            [(0, ["application"], "UNKNOWN_APPLICATION")],
        ),
        (
            {**job_spec("echo"), "parameters": []},
            [(0, ["parameters", "message"], "INVALID_PARAMETER")],
        ),
        (job_spec(name="bad;name"), [(0, ["name"], "INVALID_PARAMETER")]),
        ({**job_spec(), "replicas": 0}, [(0, ["replicas"], "INVALID_PARAMETER")]),
        (job_spec(product="gpu-huge"), [(0, ["product"], "UNKNOWN_PRODUCT")]),
        (job_spec("sleep", seconds="ten"), [(0, ["parameters", "seconds"], "INVALID_PARAMETER")]),
        (
            {**job_spec(), "timeAllocation": {"minutes": 61}},
            [(0, ["timeAllocation", "minutes"], "INVALID_PARAMETER")],
        ),
    ],
)
async def test_an_invalid_submit_creates_nothing_and_names_each_problem(
    gateway: Gateway, spec: Json, problems: list[tuple[int, list[str], str]]
) -> None:
    alice = gateway.client(ALICE)
    payload = await submit_raw(alice, [spec])
    assert payload["jobs"] == []
    assert [(e["index"], e["field"], e["code"]) for e in payload["userErrors"]] == problems
    assert all(e["message"] for e in payload["userErrors"])
    assert await job_count(alice) == 0


async def test_valid_and_invalid_items_mixed_create_nothing(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    specs = [job_spec(), job_spec("nope"), job_spec(), {**job_spec(name="x;"), "replicas": 0}]
    payload = await submit_raw(alice, specs)
    assert payload["jobs"] == []
    assert [(e["index"], e["field"], e["code"]) for e in payload["userErrors"]] == [
        (1, ["application"], "UNKNOWN_APPLICATION"),
        (3, ["name"], "INVALID_PARAMETER"),
        (3, ["replicas"], "INVALID_PARAMETER"),
    ]
    assert await job_count(alice) == 0


async def test_an_empty_or_oversized_submit_is_too_many_items(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    assert [e["code"] for e in (await submit_raw(alice, []))["userErrors"]] == ["TOO_MANY_ITEMS"]
    huge = await submit_raw(alice, [job_spec()] * 1001)
    assert [e["code"] for e in huge["userErrors"]] == ["TOO_MANY_ITEMS"]
    assert await job_count(alice) == 0


async def test_submitting_into_a_project_of_someone_else_is_forbidden(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    payload = await submit_raw(alice, [job_spec()], project="proj-b")
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["project"], "FORBIDDEN")]
    assert await job_count(alice) == 0


async def test_a_duplicate_of_an_active_job_is_refused_unless_allowed(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    sleeper = job_spec("sleep", seconds=30, allow_duplicate=False)
    (first,) = await submit(alice, sleeper)
    payload = await submit_raw(alice, [sleeper])
    assert payload["jobs"] == []
    assert [(e["index"], e["code"], e["jobId"]) for e in payload["userErrors"]] == [
        (0, "DUPLICATE_JOB", first)
    ]
    (second,) = await submit(alice, {**sleeper, "allowDuplicateJob": True})
    assert second != first
    different = job_spec("sleep", seconds=31, allow_duplicate=False)
    assert len(await submit(alice, different)) == 1


async def test_a_repeated_idempotency_key_returns_the_first_jobs(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    first = await submit(alice, job_spec(), job_spec(), idempotencyKey="order-1")
    again = await submit(alice, job_spec(), job_spec(), idempotencyKey="order-1")
    assert again == first
    assert await job_count(alice) == 2
    other = await submit_raw(alice, [job_spec(message="else")], idempotencyKey="order-1")
    assert [(e["field"], e["code"]) for e in other["userErrors"]] == [
        (["idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")
    ]
    assert await job_count(alice) == 2
