"""A fuzzer against a running gateway: operations generated from the schema for every query and
mutation, with a user's and a provider's token, valid ones and ones with one schema violation,
custom scalars as a hostile client sends them. Nothing may answer INTERNAL_SERVER_ERROR or 5xx.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest
from graphql import GraphQLObjectType, IntValueNode, StringValueNode, build_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from jobgate.schema.build import build_schema as build_jobgate_schema
from tests.gateway import ALICE
from tests.processes import ServeProcess, write_config

SDL = build_jobgate_schema().as_str()
SCHEMA = build_schema(SDL)
PROVIDER_TOKEN = "provider-secret"  # tests/processes.py's provider
EXAMPLES = 40

# As a hostile client sends them: any integer, any text.
CUSTOM_SCALARS = {
    "BigInt": st.one_of(
        st.integers().map(lambda n: IntValueNode(value=str(n))),
        st.text(max_size=30).map(lambda t: StringValueNode(value=t)),
    ),
    "DateTime": st.text(max_size=40).map(lambda t: StringValueNode(value=t)),
}


def root_fields(type_name: str) -> list[str]:
    root = SCHEMA.type_map[type_name]
    assert isinstance(root, GraphQLObjectType)
    return sorted(root.fields)


def has_arguments(type_name: str, field: str) -> bool:
    root = SCHEMA.type_map[type_name]
    assert isinstance(root, GraphQLObjectType)
    return bool(root.fields[field].args)


# Valid operations for every root field; one schema violation where there is an argument.
OPERATIONS = [
    (root, field, mode)
    for root in ("Query", "Mutation")
    for field in root_fields(root)
    for mode in (Mode.POSITIVE, Mode.NEGATIVE)
    if mode is Mode.POSITIVE or has_arguments(root, field)
]


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fuzz")
    config = write_config(
        folder / "jobgate.toml", data_dir=folder / "data", storage=f"sqlite://{folder}/jobgate.db"
    )
    serve = ServeProcess(config)
    serve.start()
    try:
        yield serve.url
    finally:
        serve.stop(signal.SIGKILL)
    output = serve.output()
    assert "Traceback" not in output, output[-3000:]


def check(response: httpx.Response, query: str) -> None:
    assert response.status_code < 500, (response.status_code, query)
    body = response.json()
    for error in body.get("errors", []):
        code = error.get("extensions", {}).get("code")
        assert code is not None, (error, query)
        assert code != "INTERNAL_SERVER_ERROR", (error, query)


@pytest.mark.parametrize("token", [ALICE, PROVIDER_TOKEN], ids=["user", "provider"])
@pytest.mark.parametrize(
    ("root", "field", "mode"),
    OPERATIONS,
    ids=[f"{t}.{f}-{'valid' if m is Mode.POSITIVE else 'one-violation'}" for t, f, m in OPERATIONS],
)
def test_no_generated_operation_is_answered_with_a_server_error(
    gateway_url: str, token: str, mode: Mode, root: str, field: str
) -> None:
    strategy = from_schema(SDL, fields=[field], custom_scalars=CUSTOM_SCALARS, mode=mode)
    headers = {"authorization": f"Bearer {token}"}

    with httpx.Client(timeout=30, headers=headers) as client:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(query=strategy)
        def fuzz(query: str) -> None:
            check(client.post(gateway_url, json={"query": query}), query)

        fuzz()
