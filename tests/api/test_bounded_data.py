"""Bounded data: every string a provider or user sends is bounded before it is stored or kept,
job output is kept in memory by bytes (per job and in all), and an error message never echoes
a huge value whole."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from jobgate.events.logs import LINE_OVERHEAD_BYTES, LogLine
from tests.api.documents import CANCEL, REPORT, SUBMIT, job_spec, submit, wait_for_state
from tests.gateway import ALICE, PROVIDER, Gateway, Json, gateway_settings, running_gateway

REPORT_LOGS = """
mutation($lines: [JobLogInput!]!) {
  reportJobLogs(input: {lines: $lines}) { accepted userErrors { index field code message } }
}
"""


async def report(gateway: Gateway, *updates: Json) -> list[Json]:
    data = await gateway.client(PROVIDER).execute(REPORT, {"updates": list(updates)})
    results: list[Json] = data["reportJobUpdates"]["results"]
    return results


async def test_a_provider_cannot_store_huge_strings_in_a_job(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=30))
    results = await report(
        sqlite_gateway,
        {"jobId": job_id, "outputFolder": "/o" * 3000},
        {"jobId": job_id, "outputFolder": "/out\x00side"},
        {"jobId": job_id, "providerGeneratedId": "p" * 300},
        {"jobId": job_id, "providerGeneratedId": "line\nbreak"},
        {"jobId": job_id, "status": "s" * 5000},
        {"jobId": job_id, "outputFolder": "/" + "o" * 4000, "providerGeneratedId": "p" * 256},
    )
    assert [(r["outcome"], r["code"]) for r in results] == [
        *[("REJECTED", "INVALID_PARAMETER")] * 5,
        ("APPLIED", None),
    ]
    await alice.execute(CANCEL, {"ids": [job_id]})


async def test_reported_log_lines_are_bounded(sqlite_gateway: Gateway) -> None:
    alice = sqlite_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=30))
    lines = [
        {"jobId": job_id, "stdout": "x" * (16 * 1024 + 1)},
        {"jobId": job_id, "stderr": "é" * (8 * 1024 + 1)},  # 2 bytes each in UTF-8
        {"jobId": job_id, "rank": 1, "stdout": "no such rank"},
        {"jobId": job_id, "channel": "c" * 65, "stdout": "named too long"},
        {"jobId": job_id, "stdout": "x" * (16 * 1024)},
    ]
    data = await sqlite_gateway.client(PROVIDER).execute(REPORT_LOGS, {"lines": lines})
    payload = data["reportJobLogs"]
    assert payload["accepted"] == 1
    assert [(e["index"], e["field"], e["code"]) for e in payload["userErrors"]] == [
        (0, ["stdout"], "INVALID_PARAMETER"),
        (1, ["stderr"], "INVALID_PARAMETER"),
        (2, ["rank"], "INVALID_PARAMETER"),
        (3, ["channel"], "INVALID_PARAMETER"),
    ]
    await alice.execute(CANCEL, {"ids": [job_id]})


async def submit_problems(gateway: Gateway, specs: list[Json], **extra: Any) -> list[Json]:
    data = await gateway.client(ALICE).execute(SUBMIT, {"input": {"jobs": specs, **extra}})
    assert data["submitJobs"]["jobs"] == []
    problems: list[Json] = data["submitJobs"]["userErrors"]
    return problems


async def test_user_strings_are_bounded_and_never_echoed_whole(sqlite_gateway: Gateway) -> None:
    (problem,) = await submit_problems(sqlite_gateway, [job_spec("echo")], idempotencyKey="k" * 256)
    assert (problem["code"], problem["field"]) == ("INVALID_PARAMETER", ["idempotencyKey"])
    (problem,) = await submit_problems(sqlite_gateway, [{**job_spec("echo"), "openedFile": "a\0"}])
    assert (problem["code"], problem["field"]) == ("INVALID_PARAMETER", ["openedFile"])
    huge = "p" * 200_000
    unknown = job_spec("echo")
    unknown["product"] = {**unknown["product"], "id": huge}
    (problem,) = await submit_problems(sqlite_gateway, [unknown])
    assert problem["code"] == "UNKNOWN_PRODUCT"
    assert len(problem["message"]) < 500
    assert "200000 characters" in problem["message"]


async def test_job_output_is_kept_by_bytes_per_job_and_in_all(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path / "data",
        f"sqlite://{tmp_path}/j.db",
        logs={"tail_lines": 100_000, "tail_bytes": 64 * 1024, "total_bytes": 256 * 1024},
    )
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        # 30,000 lines per job, 10 jobs: each job's lines cost 5 MB as the hub counts them.
        ids = await submit(alice, *[job_spec("count", to=30_000) for _ in range(10)])
        for job_id in ids:
            await wait_for_state(alice, job_id, "SUCCESS")
        hub = gateway.services.logs
        assert hub.size <= 256 * 1024
        kept: dict[str, list[LogLine]] = {}
        for job_id in ids:
            if hub.knows(job_id):
                kept[job_id] = [line async for line in hub.follow(job_id)]
        assert kept, "the newest output is kept"
        for lines in kept.values():
            assert sum(len(line.stdout or "") + LINE_OVERHEAD_BYTES for line in lines) <= 64 * 1024
            # The newest lines are the ones kept, in order.
            assert lines[-1].stdout == "30000"
            assert [line.seq for line in lines] == list(range(lines[0].seq, lines[-1].seq + 1))


def store_bytes(folder: Path) -> int:
    """The database file's size with everything written to it (the WAL checkpointed)."""
    database = folder / "j.db"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return database.stat().st_size


async def test_an_update_stores_what_it_changed_not_the_whole_status(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path / "data", f"sqlite://{tmp_path}/j.db")
    async with running_gateway(settings) as gateway:
        alice = gateway.client(ALICE)
        (job_id,) = await submit(alice, job_spec("sleep", seconds=60))
        folder = "/" + "f" * 4000
        (result,) = await report(gateway, {"jobId": job_id, "outputFolder": folder})
        assert result["outcome"] == "APPLIED"
        before = store_bytes(tmp_path)
        for batch in range(5):
            updates = [{"jobId": job_id, "status": f"tick {batch}.{n}"} for n in range(100)]
            results = await report(gateway, *updates)
            assert {r["outcome"] for r in results} == {"APPLIED"}
        grown = store_bytes(tmp_path) - before
        # 500 updates of a few bytes each; a copy of the 4 kB folder in each would be 2 MB.
        assert grown < 500_000, grown
        # What the job reports is the same as ever.
        query = "query($id: ID!) { job(id: $id) { output { outputFolder } updates { status } } }"
        job = (await alice.execute(query, {"id": job_id}))["job"]
        assert job["output"]["outputFolder"] == folder
        ticks = [u["status"] for u in job["updates"] if (u["status"] or "").startswith("tick")]
        assert ticks == [f"tick {b}.{n}" for b in range(5) for n in range(100)]
        await alice.execute(CANCEL, {"ids": [job_id]})
