"""The local provider runs a job as its user's own Unix account where its provider has
`user_accounts`, sandboxed or not; the account travels with the job, through both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from jobgate.unix import Account
from tests.api.documents import SUBMIT, job_spec, submit, wait_for_state
from tests.gateway import ALICE, CAROL, GRACE, PROVIDER, Gateway, gateway_settings, running_gateway


def local_provider(sandbox: str) -> dict[str, Any]:
    return {
        "id": "local",
        "kind": "local",
        "token": PROVIDER,
        "sandbox": sandbox,
        "user_accounts": True,
        "unix_user_template": "jgt-{username}",
        "products": [{"name": "cpu-small", "category": "cpu", "cpu": 1}],
    }


@pytest.fixture(params=["bubblewrap", "none"])
async def accounts_gateway(
    request: pytest.FixtureRequest,
    storage_url: str,
    tmp_path: Path,
    unix_accounts: dict[str, Account],
) -> AsyncIterator[Gateway]:
    settings = gateway_settings(
        tmp_path / "data",
        storage_url,
        users=[
            {"username": "alice", "token": ALICE},
            {"username": "carol", "token": CAROL, "unix_user": "jgt-erin"},
            {"username": "Zed", "token": GRACE},
        ],
        projects=[],
        providers=[local_provider(request.param)],
    )
    async with running_gateway(settings) as gateway:
        yield gateway


async def test_a_local_job_runs_as_its_users_account(
    accounts_gateway: Gateway, tmp_path: Path, unix_accounts: dict[str, Account]
) -> None:
    alice, carol = accounts_gateway.client(ALICE), accounts_gateway.client(CAROL)
    (alices,) = await submit(alice, job_spec("whoami"))
    (carols,) = await submit(carol, job_spec("whoami"))
    for client, job_id, account in ((alice, alices, "jgt-alice"), (carol, carols, "jgt-erin")):
        done = await wait_for_state(client, job_id, "SUCCESS", timeout=30)
        assert done["unixUser"] == account
        output = tmp_path / "data" / "local" / "local" / job_id / "stdout-0.log"
        assert output.read_text() == f"{account}\n"
    workspace = tmp_path / "data" / "files" / "users" / "alice"
    assert workspace.stat().st_uid == unix_accounts["jgt-alice"].uid


async def test_the_account_is_stored_with_the_job(
    accounts_gateway: Gateway, unix_accounts: dict[str, Account]
) -> None:
    """What a restarted gateway (or an agent) reads back is the account picked at submit."""
    alice = accounts_gateway.client(ALICE)
    (job_id,) = await submit(alice, job_spec("sleep", seconds=0))
    stored = await accounts_gateway.services.store.get_jobs([job_id])
    assert [job.unix_user for job in stored] == ["jgt-alice"]


async def test_a_template_that_makes_no_valid_account_name_is_refused_at_submit(
    accounts_gateway: Gateway,
) -> None:
    zed = accounts_gateway.client(GRACE)  # "Zed": the template makes "jgt-Zed"
    data = await zed.execute(SUBMIT, {"input": {"jobs": [job_spec("whoami")]}})
    (error,) = data["submitJobs"]["userErrors"]
    assert (error["code"], error["index"], error["field"]) == ("NO_UNIX_ACCOUNT", 0, ["product"])
    assert error["message"] == "provider 'local': 'jgt-Zed' is not a valid Unix account name"
    assert data["submitJobs"]["jobs"] == []
