"""Signing in through the site's OpenID Connect provider: a real Keycloak (`tests/keycloak/`),
its access tokens checked by the gateway against the realm's published keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from jobgate.oidc import OidcVerifier, TokenRejected
from jobgate.settings import OidcSettings
from tests.api.documents import (
    CANCEL,
    REPORT,
    SUBMIT,
    get_job,
    job_spec,
    latest_cursor,
    submit,
    wait_for_state,
)
from tests.gateway import (
    ALICE,
    BATCH_PROVIDER,
    Gateway,
    GraphQLClient,
    gateway_settings,
    running_gateway,
    subscribe,
)
from tests.servers import Keycloak, free_port

ME = "{ jobs(first: 10) { nodes { id owner { createdBy project } } } }"
FEED = "subscription($after: String) { jobUpdates(after: $after) { cursor jobId } }"


def oidc_settings(keycloak: Keycloak, **overrides: Any) -> dict[str, Any]:
    """`[auth.oidc]` for the test realm; no clock leeway, so expiry is exact."""
    return {
        "issuer": keycloak.issuer,
        "audience": "jobgate",
        "leeway_seconds": 0,
        "jwks_refresh_seconds": 1,
        **overrides,
    }


@pytest.fixture
async def gateway(keycloak: Keycloak, storage_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = gateway_settings(
        tmp_path / "data", storage_url, auth={"oidc": oidc_settings(keycloak)}
    )
    async with running_gateway(settings) as running:
        yield running


def refusal(body: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of a request refused for its credentials."""
    (error,) = body["errors"]
    return error["extensions"]["code"], error["message"]


class RealmKey:
    """An RSA key of the tests' own, given to the realm as its signing key: tokens that the
    realm would never issue (not valid yet, another issuer) can then be signed with a key the
    gateway must trust, so that only the rule under test refuses them."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.kid: str | None = None

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        assert self.kid is not None
        return jwt.encode(claims, self.pem, algorithm="RS256", headers={"kid": self.kid, **header})


@pytest.fixture(scope="module")
def realm_key(keycloak: Keycloak) -> RealmKey:
    """The realm signs with this key from now on (the highest priority): a key rotation."""
    key = RealmKey()
    keycloak.add_signing_key(key.pem, priority=1000 + int(time.time()) % 1000)
    token = keycloak.token("erin", "erin-password")
    key.kid = jwt.get_unverified_header(token)["kid"]
    # Keycloak names its keys; the new token must be signed by ours.
    jwt.decode(token, key.private.public_key(), algorithms=["RS256"], audience="jobgate")
    return key


def claims(keycloak: Keycloak, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": keycloak.issuer,
        "aud": "jobgate",
        "azp": "jobgate-cli",
        "sub": str(uuid.uuid4()),
        "preferred_username": "erin",
        "groups": ["/proj-a"],
        "iat": now,
        "exp": now + 300,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_a_signed_in_user_works_in_the_projects_of_their_groups(
    gateway: Gateway, keycloak: Keycloak
) -> None:
    erin = gateway.client(keycloak.token("erin", "erin-password"))  # groups: /proj-a
    frank = gateway.client(keycloak.token("frank", "frank-password"))  # no groups
    alice = gateway.client(ALICE)  # a static user, proj-a's PI, beside them

    (alices,) = await submit(alice, job_spec(), project="proj-a")
    (own,) = await submit(erin, job_spec(), project="proj-a")

    # A member by her groups: her own jobs of the project; its PI sees hers too.
    assert [n["id"] for n in (await erin.execute(ME))["jobs"]["nodes"]] == [own]
    seen = (await alice.execute(ME))["jobs"]["nodes"]
    assert {n["id"] for n in seen} == {alices, own}
    assert {n["owner"]["createdBy"] for n in seen} == {"alice", "erin"}
    assert (await frank.execute(ME))["jobs"]["nodes"] == []
    body = await frank.raw(SUBMIT, {"input": {"jobs": [job_spec()], "project": "proj-a"}})
    assert body.get("errors") or body["data"]["submitJobs"]["userErrors"], body
    (personal,) = await submit(frank, job_spec())
    assert [n["id"] for n in (await frank.execute(ME))["jobs"]["nodes"]] == [personal]


async def test_a_signed_in_users_access_token_carries_the_projects_of_their_groups(
    gateway: Gateway, keycloak: Keycloak
) -> None:
    erin = gateway.client(keycloak.token("erin", "erin-password"))  # groups: /proj-a
    made = await erin.execute(
        'mutation { createAccessToken(input: {name: "laptop"}) { token userErrors { code } } }'
    )
    script = gateway.client(made["createAccessToken"]["token"])
    me = await script.execute("{ me { username projects { projectId role groups } } }")
    assert me["me"] == {
        "username": "erin",
        "projects": [{"projectId": "proj-a", "role": "USER", "groups": ["all"]}],
    }
    (job_id,) = await submit(script, job_spec(), project="proj-a")
    assert [n["id"] for n in (await erin.execute(ME))["jobs"]["nodes"]] == [job_id]


async def test_tokens_that_must_not_pass_are_refused_with_a_reason(
    gateway: Gateway, keycloak: Keycloak, realm_key: RealmKey
) -> None:
    now = int(time.time())
    good = keycloak.token("erin", "erin-password")
    header, payload, signature = good.split(".")
    padded = payload + "=" * (-len(payload) % 4)
    tampered_claims = {**json.loads(base64.urlsafe_b64decode(padded)), "groups": ["/proj-b"]}
    public_pem = realm_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The classic confusion: an HS256 "signature" whose secret is the issuer's public key.
    confused_input = (
        f"{segment({'alg': 'HS256', 'kid': realm_key.kid})}.{segment(claims(keycloak))}"
    )
    confused_mac = hmac.new(public_pem, confused_input.encode(), hashlib.sha256).digest()
    confused = f"{confused_input}.{base64.urlsafe_b64encode(confused_mac).rstrip(b'=').decode()}"
    cases = [
        ("it has expired", realm_key.sign(claims(keycloak, iat=now - 600, exp=now - 300))),
        ("it is not valid yet", realm_key.sign(claims(keycloak, nbf=now + 300))),
        (
            "it is not meant for this gateway (audience)",
            keycloak.token("erin", "erin-password", client="other-app"),
        ),
        (
            "it was not issued by this gateway's identity provider",
            realm_key.sign(claims(keycloak, iss="https://idp.example.org/realms/hpc")),
        ),
        ("its signature does not verify", f"{header}.{segment(tampered_claims)}.{signature}"),
        (
            "its signing algorithm is not accepted",
            f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims(keycloak))}.",
        ),
        ("its signing algorithm is not accepted", confused),
        (
            "its signing key is not one of the issuer's",
            jwt.encode(claims(keycloak), RealmKey().pem, algorithm="RS256", headers={"kid": "x"}),
        ),
        ("it lacks a required claim (exp, iss)", realm_key.sign(claims(keycloak, exp=None))),
        (
            "its preferred_username claim is not a valid username",
            realm_key.sign(claims(keycloak, preferred_username="../root")),
        ),
        ("it is not a well-formed JWT", "not-a-jwt"),
    ]
    for reason, token in cases:
        body = await gateway.client(token).raw(ME)
        code, message = refusal(body)
        assert code == "UNAUTHENTICATED", (reason, body)
        assert message == f"the bearer token is not valid: {reason}", body
        assert token not in json.dumps(body)
    # The same key with proper claims passes: each refusal above is its rule's alone.
    accepted = await gateway.client(realm_key.sign(claims(keycloak))).execute(ME)
    assert accepted["jobs"]["nodes"] == []


async def test_the_realm_rotates_its_key_while_the_gateway_runs(
    keycloak: Keycloak, tmp_path: Path
) -> None:
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", auth={"oidc": oidc_settings(keycloak)}
    )
    async with running_gateway(settings) as gateway:
        before = keycloak.token("erin", "erin-password")
        assert "errors" not in await gateway.client(before).raw(ME)
        rotated = RealmKey()
        keycloak.add_signing_key(rotated.pem, priority=5000 + int(time.time()) % 1000)
        after = keycloak.token("erin", "erin-password")
        assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
        await asyncio.sleep(1.1)  # jwks_refresh_seconds: the gateway may fetch the keys again
        assert "errors" not in await gateway.client(after).raw(ME)
        assert "errors" not in await gateway.client(before).raw(ME)  # the old key still counts


async def test_made_up_key_ids_fetch_the_issuers_keys_at_most_once_per_interval(
    keycloak: Keycloak, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobgate.oidc")
    verifier = OidcVerifier(OidcSettings(**oidc_settings(keycloak, jwks_refresh_seconds=60)))
    await verifier.open()
    try:
        forger = RealmKey()
        for n in range(50):
            token = jwt.encode(
                claims(keycloak), forger.pem, algorithm="RS256", headers={"kid": f"forged-{n}"}
            )
            with pytest.raises(TokenRejected, match="not one of the issuer's"):
                await verifier.verify(token)
        fetches = [r for r in caplog.records if "signing keys from" in r.getMessage()]
        assert len(fetches) == 1  # at open; none of the 50 made it fetch again
        assert (await verifier.verify(keycloak.token("erin", "erin-password"))).username == "erin"
    finally:
        await verifier.close()


async def events_until_closed(ws: ClientConnection, seen: list[str], timeout: float) -> int | None:
    """Add the cursor of every event to `seen` until the server closes; its close code."""
    try:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if message["type"] in ("next", "data"):
                seen.append(message["payload"]["data"]["jobUpdates"]["cursor"])
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code


async def stored_cursors(client: GraphQLClient, job_id: str) -> list[str]:
    job = await get_job(client, job_id)
    assert job is not None
    return [update["cursor"] for update in job["updates"]]


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_subscription_ends_with_its_token_and_resumes_with_a_new_one(
    keycloak: Keycloak, tmp_path: Path, protocol: str
) -> None:
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", auth={"oidc": oidc_settings(keycloak)}
    )
    async with running_gateway(settings) as gateway:
        erin = gateway.client(keycloak.token("erin", "erin-password"))
        provider = gateway.client(BATCH_PROVIDER)
        start = await latest_cursor(erin)
        waiting = job_spec("sleep", provider="batch", product="cpu-batch", seconds=600)
        (job,) = await submit(erin, waiting)

        async def report(status: str) -> None:
            await provider.execute(REPORT, {"updates": [{"jobId": job, "status": status}]})

        short = keycloak.token("erin", "erin-password", client="jobgate-short")  # 8 s
        expires_at = jwt.decode(short, options={"verify_signature": False})["exp"]
        seen: list[str] = []
        async with subscribe(
            gateway, FEED, {"after": start}, token=short, protocol=protocol
        ) as sub:
            await report("before expiry")
            code = await events_until_closed(sub.ws, seen, timeout=20)
        closed_at = time.time()
        assert code == 4403
        assert expires_at - 1 <= closed_at <= expires_at + 3, (expires_at, closed_at)

        await report("while signed out")
        fresh = keycloak.token("erin", "erin-password")
        async with subscribe(
            gateway, FEED, {"after": seen[-1]}, token=fresh, protocol=protocol
        ) as sub:
            await report("after signing in again")
            stored = await stored_cursors(erin, job)
            while len(seen) < len(stored):
                seen.append((await sub.next(10))["jobUpdates"]["cursor"])
        assert seen == stored  # each once, in order, across the expiry
        assert len(stored) >= 4  # submitted, three reports (and RUNNING, if it started)
        await erin.execute(CANCEL, {"ids": [job]})


async def test_an_identity_provider_that_cannot_be_reached_says_try_again_not_sign_in_again(
    tmp_path: Path,
) -> None:
    """Nothing listens where the issuer should be: a token cannot be checked. That is no fault
    of the token (UNAUTHENTICATED would send the user to sign in again, to no avail): it is a
    code of its own, which says to try again, as STORE_UNAVAILABLE does."""
    issuer = f"http://127.0.0.1:{free_port()}/realms/hpc"
    oidc = {"issuer": issuer, "audience": "jobgate", "jwks_refresh_seconds": 1}
    settings = gateway_settings(
        tmp_path / "data", f"sqlite://{tmp_path}/jobgate.db", auth={"oidc": oidc}
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode(
        {"iss": issuer, "aud": "jobgate", "preferred_username": "erin", "exp": now + 300},
        key,
        algorithm="RS256",
        headers={"kid": "some-key"},
    )
    async with running_gateway(settings) as gateway:
        body = await gateway.client(token).raw("{ jobs(first: 1) { nodes { id } } }")
        assert refusal(body) == (
            "IDENTITY_PROVIDER_UNAVAILABLE",
            "the identity provider cannot be reached to check the token; try again",
        )
        # Static tokens do not need it.
        assert (await gateway.client(ALICE).execute("{ latestUpdateCursor }"))["latestUpdateCursor"]


async def test_the_unix_user_claim_names_the_account_jobs_run_as(
    keycloak: Keycloak, storage_url: str, tmp_path: Path, unix_accounts: dict[str, Any]
) -> None:
    """erin's realm attribute `unix_user` reaches the token as a claim; her jobs (and her
    access token's) run as that account; frank has none and is refused at submit."""
    local = {
        "id": "local",
        "kind": "local",
        "token": "local-provider-secret",
        "user_accounts": True,
        "products": [{"name": "cpu-small", "category": "cpu"}],
    }
    settings = gateway_settings(
        tmp_path / "data",
        storage_url,
        auth={"oidc": oidc_settings(keycloak, unix_user_claim="unix_user")},
        providers=[local],
    )
    async with running_gateway(settings) as gateway:
        erin = gateway.client(keycloak.token("erin", "erin-password"))
        frank = gateway.client(keycloak.token("frank", "frank-password"))
        assert (await erin.execute("{ me { unixUser } }"))["me"] == {"unixUser": "jgt-erin"}
        made = await erin.execute(
            'mutation { createAccessToken(input: {name: "cron"}) { token userErrors { code } } }'
        )
        script = gateway.client(made["createAccessToken"]["token"])
        for client in (erin, script):
            (job_id,) = await submit(client, job_spec("whoami"))
            done = await wait_for_state(client, job_id, "SUCCESS", timeout=30)
            assert done["unixUser"] == "jgt-erin"
            output = tmp_path / "data" / "local" / "local" / job_id / "stdout-0.log"
            assert output.read_text() == "jgt-erin\n"

        data = await frank.execute(SUBMIT, {"input": {"jobs": [job_spec("whoami")]}})
        (error,) = data["submitJobs"]["userErrors"]
        assert error["code"] == "NO_UNIX_ACCOUNT"
        assert (await frank.execute("{ me { unixUser } }"))["me"] == {"unixUser": None}
