"""Personal access tokens: a signed-in user makes one (its secret shown once), uses it as they
would their sign-in, lists and revokes it; stores keep its digest only; it expires."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest

from jobgate.storage.mongo import MongoJobStore
from jobgate.storage.sqlite import SqliteJobStore
from tests.api.documents import JOB, WATCH, job_spec, submit
from tests.gateway import ALICE, BOB, Gateway, GraphQLClient, subscribe

CREATE = """
mutation($name: String!, $days: Int) {
  createAccessToken(input: {name: $name, expiresInDays: $days}) {
    token accessToken { id name createdAt expiresAt lastUsedAt }
    userErrors { field code message }
  }
}
"""
CREATE_DEFAULT = """
mutation($name: String!) {
  createAccessToken(input: {name: $name}) { token accessToken { id expiresAt } userErrors { code } }
}
"""
REVOKE = """
mutation($id: ID!) {
  revokeAccessToken(input: {id: $id}) { revoked userErrors { field code message } }
}
"""
MINE = "{ myAccessTokens { id name createdAt expiresAt lastUsedAt } }"
ME = "{ me { username projects { projectId role } } }"
DAY_MS = 86_400_000


async def make(client: GraphQLClient, name: str = "ci", days: int | None = 30) -> dict[str, Any]:
    payload: dict[str, Any] = (await client.execute(CREATE, {"name": name, "days": days}))[
        "createAccessToken"
    ]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


def refusal(body: dict[str, Any]) -> tuple[str, str]:
    (error,) = body["errors"]
    return error["extensions"]["code"], error["message"]


async def test_a_token_stands_for_its_user_until_revoked(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    made = await make(alice, "nightly builds")
    secret = made["token"]
    assert secret.startswith("jgp_")
    token = made["accessToken"]
    assert token["name"] == "nightly builds"
    assert token["lastUsedAt"] is None
    script = gateway.client(secret)
    assert (await script.execute(ME))["me"] == {
        "username": "alice",
        "projects": [{"projectId": "proj-a", "role": "PI"}],
    }
    (job_id,) = await submit(script, job_spec(message="from a script"), project="proj-a")
    job = (await alice.execute(JOB, {"id": job_id}))["job"]
    assert job["owner"] == {"createdBy": "alice", "project": "proj-a"}
    async with subscribe(gateway, WATCH, {"ids": [job_id]}, token=secret) as stream:
        assert (await stream.next())["jobUpdates"]["jobId"] == job_id
    # Listed, with its last use; its secret is never shown again.
    listing = await alice.raw(MINE)
    assert secret.removeprefix(f"jgp_{token['id']}_") not in json.dumps(listing)
    (listed,) = listing["data"]["myAccessTokens"]
    assert listed["id"] == token["id"]
    assert listed["lastUsedAt"] is not None
    # A token cannot make another: one would outlive the other's revocation.
    body = await script.raw(CREATE, {"name": "child", "days": 1})
    assert refusal(body)[0] == "FORBIDDEN"
    # Bob cannot revoke it; alice can, once.
    bob = await gateway.client(BOB).execute(REVOKE, {"id": token["id"]})
    assert bob["revokeAccessToken"]["revoked"] is False
    assert [e["code"] for e in bob["revokeAccessToken"]["userErrors"]] == ["NOT_FOUND"]
    revoked = await alice.execute(REVOKE, {"id": token["id"]})
    assert revoked["revokeAccessToken"] == {"revoked": True, "userErrors": []}
    assert refusal(await script.raw(ME)) == (
        "UNAUTHENTICATED",
        "the bearer token is not valid",
    )
    again = await alice.execute(REVOKE, {"id": token["id"]})
    assert again["revokeAccessToken"]["revoked"] is False
    assert (await alice.execute(MINE))["myAccessTokens"] == []


async def test_stores_keep_a_digest_of_the_secret_never_the_secret(
    gateway: Gateway,
) -> None:
    made = await make(gateway.client(ALICE))
    token_id = made["accessToken"]["id"]
    secret = made["token"].removeprefix(f"jgp_{token_id}_")
    store = gateway.services.store
    record = await store.access_token(token_id)
    assert record is not None
    assert record.secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    # Nothing stored holds the secret: the SQLite file (and its log), MongoDB's document.
    if isinstance(store, SqliteJobStore):
        files = await asyncio.to_thread(lambda: list(store.path.parent.glob(f"{store.path.name}*")))
        assert files
        for path in files:
            assert secret.encode() not in await asyncio.to_thread(path.read_bytes), path
    else:
        assert isinstance(store, MongoJobStore)
        doc = await store._tokens.find_one({"_id": token_id})
        assert doc is not None
        assert secret not in json.dumps(doc, default=str)


async def test_a_token_expires_and_a_made_up_one_never_passes(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    made = await make(alice, days=1)
    token = made["accessToken"]
    assert token["expiresAt"] is not None
    forever = await make(alice, "forever", days=None)
    assert forever["accessToken"]["expiresAt"] is None
    default = (await alice.execute(CREATE_DEFAULT, {"name": "default"}))["createAccessToken"]
    assert default["userErrors"] == []
    script = gateway.client(made["token"])
    assert (await script.execute(ME))["me"]["username"] == "alice"
    tokens = gateway.services.access_tokens
    real_clock = tokens.clock
    tokens.clock = lambda: real_clock() + 2 * DAY_MS  # two days on
    try:
        assert refusal(await script.raw(ME)) == (
            "UNAUTHENTICATED",
            "the bearer token is not valid: it has expired",
        )
        still = gateway.client(forever["token"])
        assert (await still.execute(ME))["me"]["username"] == "alice"
    finally:
        tokens.clock = real_clock
    made_up = gateway.client(f"jgp_{token['id']}_{'A' * 43}")
    assert refusal(await made_up.raw(ME))[0] == "UNAUTHENTICATED"
    assert refusal(await gateway.client("jgp_nonsense").raw(ME))[0] == "UNAUTHENTICATED"


async def test_what_cannot_be_a_token_is_refused_with_its_field(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    for name, days, field in (
        ("", 30, ["name"]),
        ("x" * 101, 30, ["name"]),
        ("ok", 0, ["expiresInDays"]),
        ("ok", 367, ["expiresInDays"]),
    ):
        payload = (await alice.execute(CREATE, {"name": name, "days": days}))["createAccessToken"]
        assert payload["token"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("INVALID_PARAMETER", field)
        ]
    assert (await alice.execute(MINE))["myAccessTokens"] == []


async def test_a_subscriptions_token_is_checked_once_per_connection(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A personal access token's check is a read of the store: connection_init's token used to
    # be checked twice (for the connection's place among its caller's, then again).
    secret = (await make(gateway.client(ALICE)))["token"]
    store = gateway.services.store
    reads: list[str] = []
    read = store.access_token

    async def counted(token_id: str) -> Any:
        reads.append(token_id)
        return await read(token_id)

    monkeypatch.setattr(store, "access_token", counted)
    (job_id,) = await submit(gateway.client(ALICE), job_spec(message="watched"))
    async with subscribe(gateway, WATCH, {"ids": [job_id]}, token=secret) as stream:
        assert (await stream.next())["jobUpdates"]["jobId"] == job_id
    assert len(reads) == 1
