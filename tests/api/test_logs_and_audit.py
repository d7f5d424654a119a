"""`jobgate serve`'s own log as JSON lines with request ids, and its audit log: a line per
mutation saying who, from where, what, which jobs and the outcome, never a token."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from tests.api.documents import CANCEL, REPORT, SUBMIT, job_spec, submit
from tests.gateway import ALICE, BOB, PROVIDER, http_client
from tests.processes import ServeProcess, write_config


def start(tmp_path: Path) -> ServeProcess:
    audit = tmp_path / "audit.jsonl"
    logging = f'\n[logging]\nformat = "json"\naudit_file = "{audit}"\n'
    config = write_config(
        tmp_path / "jobgate.toml", data_dir=tmp_path / "data", storage="", extra=logging
    )
    return ServeProcess(config)


def audit_lines(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


async def test_every_mutation_leaves_an_audit_line_and_no_token(tmp_path: Path) -> None:
    serve = start(tmp_path)
    alice = serve.start()
    bob = serve.client(BOB)
    provider = serve.client(PROVIDER)
    try:
        (job_id,) = await submit(alice, job_spec("sleep", seconds=300))
        refused = await bob.execute(CANCEL, {"ids": [job_id]})  # not his: NOT_FOUND
        assert refused["cancelJobs"]["userErrors"][0]["code"] == "NOT_FOUND"
        await provider.execute(REPORT, {"updates": [{"jobId": job_id, "status": "checked"}]})
        await alice.execute(CANCEL, {"ids": [job_id]})
        # A provider may not submit: the whole mutation fails, with its code.
        forbidden = await provider.raw(SUBMIT, {"input": {"jobs": [job_spec()]}})
        assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        serve.stop(signal.SIGTERM)
    lines = audit_lines(tmp_path)
    actions = [(line["action"], line.get("user") or line.get("provider")) for line in lines]
    assert actions == [
        ("submitJobs", "alice"),
        ("cancelJobs", "bob"),
        ("reportJobUpdates", "local"),
        ("cancelJobs", "alice"),
        ("submitJobs", "local"),
    ]
    submitted, bobs, reported, cancelled, refused = lines
    assert refused["outcome"] == "FORBIDDEN"
    assert submitted["jobs"] == [job_id]
    assert submitted["outcome"] == "ok"
    assert bobs["asked"] == [job_id]
    assert "jobs" not in bobs
    assert (bobs["outcome"], bobs["user_errors"]) == ("user_errors", ["NOT_FOUND"])
    assert reported["jobs"] == [job_id]
    assert cancelled["jobs"] == [job_id]
    for line in lines:
        assert line["client"] == "127.0.0.1"
        assert isinstance(line["request_id"], str)
    text = (tmp_path / "audit.jsonl").read_text()
    for secret in (ALICE, BOB, PROVIDER):
        assert secret not in text


async def test_the_log_is_json_lines_and_a_requests_lines_carry_its_id(tmp_path: Path) -> None:
    serve = start(tmp_path)
    serve.start()
    try:
        async with http_client() as client:
            # A body that is no JSON: refused, and logged, within the request.
            answer = await client.post(
                serve.url,
                content=b"{not json",
                headers={"Authorization": f"Bearer {ALICE}", "Content-Type": "application/json",
                         "X-Request-Id": "proxy-id-42"},
            )  # fmt: skip
        assert answer.status_code == 400
        assert answer.headers["x-request-id"] == "proxy-id-42"
        async with http_client() as client:
            mine = await client.get(f"http://127.0.0.1:{serve.port}/livez")
        assert len(mine.headers["x-request-id"]) == 16  # one of its own
    finally:
        serve.stop(signal.SIGTERM)
    records = [json.loads(line) for line in serve.output().splitlines() if line.strip()]
    assert records, "the gateway logged nothing"
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    refused = [r for r in records if r["message"].startswith("refused (400)")]
    assert refused, [r["message"] for r in records]
    assert {r["request_id"] for r in refused} == {"proxy-id-42"}
