"""GraphQL over HTTP: the `graphql-http` audit suite against a running gateway, and every
error a client can cause answered with a client-error code, never a 500 or a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway import ALICE, Gateway, http_client

AUDIT = Path(__file__).resolve().parents[2] / "tools" / "graphql-http-audit"
GRAPHQL_RESPONSE = "application/graphql-response+json"


async def test_the_graphql_http_audit_passes_every_must_and_should(
    sqlite_gateway: Gateway,
) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js runs the audit"
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), "scripts/test installs the audit"
    url = f"http://127.0.0.1:{sqlite_gateway.port}/graphql"
    # Not subprocess.run: the gateway answering the audit runs on this event loop.
    audit = await asyncio.create_subprocess_exec(
        node, str(AUDIT / "audit.mjs"), url, ALICE, stdout=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        output, _ = await audit.communicate()
    assert audit.returncode == 0
    results = [json.loads(line) for line in output.decode().splitlines()]
    failed = [
        f"{r['name']}: {r['reason']}"
        for r in results
        if r["status"] != "ok" and r["name"].startswith(("MUST", "SHOULD"))
    ]
    counts = {
        level: sum(r["name"].startswith(level) for r in results) for level in ("MUST", "SHOULD")
    }
    print(f"graphql-http audit: {counts}, not ok: {len(failed)}", file=sys.stderr)
    assert failed == []
    assert counts["MUST"] >= 13
    assert counts["SHOULD"] >= 23


async def post(
    gateway: Gateway, body: Any, *, accept: str = GRAPHQL_RESPONSE, raw: str | None = None
) -> httpx.Response:
    headers = {
        "authorization": f"Bearer {ALICE}",
        "accept": accept,
        "content-type": "application/json",
    }
    content = raw if raw is not None else json.dumps(body)
    async with http_client() as client:
        return await client.post(
            f"http://127.0.0.1:{gateway.port}/graphql", content=content, headers=headers
        )


CLIENT_MISTAKES = [
    ("syntax error", {"query": "{"}, "GRAPHQL_PARSE_FAILED"),
    (
        "unused variable",
        {"query": "query($x: Int) { jobs { totalCount } }"},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "subscription over HTTP",
        {"query": "subscription { jobUpdates { jobId } }"},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "Int literal out of range",
        {"query": "{ jobs(first: " + "9" * 5000 + ") { totalCount } }"},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "Int variable out of range",
        {"query": "query($n: Int) { jobs(first: $n) { totalCount } }", "variables": {"n": 2**40}},
        "BAD_USER_INPUT",
    ),
    (
        "BigInt variable of 5,000 digits",
        {
            "query": "query($j: [ID!]) { jobs(filter: {ids: $j}) { totalCount } }",
            "variables": {"j": ["1" * 5000]},
        },
        None,  # a well-formed request: an id that names no job
    ),
    (
        "DateTime literal that is not one",
        {"query": '{ jobs(filter: {createdAfter: "yesterday"}) { totalCount } }'},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "DateTime variable that is not one",
        {
            "query": "query($d: DateTime) { jobs(filter: {createdAfter: $d}) { totalCount } }",
            "variables": {"d": "yesterday"},
        },
        "BAD_USER_INPUT",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "code"), CLIENT_MISTAKES, ids=[c[0] for c in CLIENT_MISTAKES]
)
async def test_a_client_mistake_is_a_coded_request_error(
    sqlite_gateway: Gateway,
    name: str,
    body: Any,
    code: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        response = await post(sqlite_gateway, body)
    payload = response.json()
    if code is None:
        assert response.status_code == 200
        assert "errors" not in payload
        return
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in payload
    assert [e["extensions"]["code"] for e in payload["errors"]] == [code]
    # At most one INFO line, never an ERROR or a traceback, for a client's mistake.
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not any(r.exc_info for r in caplog.records)


async def test_request_errors_with_plain_json_keep_200_and_drop_data(
    sqlite_gateway: Gateway,
) -> None:
    response = await post(sqlite_gateway, {"query": "{ nope }"}, accept="application/json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert "data" not in payload
    assert payload["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.parametrize(
    "raw",
    ['"a string"', "42", "[" * 100_000 + "]" * 100_000, "{not json", '{"query": 7}', "9" * 5000],
    ids=[
        "string",
        "number",
        "nested 100,000 deep",
        "not JSON",
        "query not a string",
        "huge number",
    ],
)
async def test_a_body_that_is_not_a_request_is_a_coded_400(
    sqlite_gateway: Gateway, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = await post(sqlite_gateway, None, raw=raw)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_missing_token_is_logged_as_one_info_line(
    sqlite_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with http_client() as client:
            response = await client.post(
                f"http://127.0.0.1:{sqlite_gateway.port}/graphql",
                json={"query": "{ jobs { totalCount } }"},
            )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not any(r.exc_info for r in caplog.records)
