"""Jobs are confined: whatever a user submits, a job cannot read the gateway's config, data or
tokens, other users' files, or reach the network, and paths stay inside the job's workspace.

Each case runs `jobgate serve` from a config file, as a site would (the file itself is one of
the things a job must not see), with the local provider's default sandbox (bubblewrap).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobgate.errors import ConfigError
from jobgate.providers.sandbox import Bubblewrap
from tests.api.documents import submit, wait_for_state
from tests.gateway import GraphQLClient
from tests.processes import ServeProcess

ALICE, BOB = "alice-confined", "bob-confined"
SUBMIT = """mutation($input: SubmitJobsInput!) {
  submitJobs(input: $input) { jobs { id } userErrors { code field message } } }"""

CONFIG = """
[server]
data_dir = "{data}"

[[users]]
username = "alice"
token = "{alice}"
projects = ["lab"]

[[users]]
username = "bob"
token = "{bob}"

[[providers]]
id = "local"
kind = "local"
token = "provider-confined"
cancel_grace_seconds = 1
read_only_paths = ["{site}"]

[[providers.products]]
name = "cpu"
category = "cpu"

[[providers.products]]
name = "cpu-net"
category = "cpu"
network = true

[[applications]]
name = "shell"
version = "1"
command = ["sh", "-c", "{{script}}"]
parameters = [{{ name = "script", type = "text" }}]

[[applications]]
name = "read"
version = "1"
command = ["cat", "--", "{{file}}"]
parameters = [{{ name = "file", type = "input_file" }}]

[[applications]]
name = "list"
version = "1"
command = ["ls", "-a", "--", "{{folder}}"]
parameters = [{{ name = "folder", type = "input_directory" }}]
"""


class Site:
    """A gateway as a site runs it: its config file in a folder jobs may read (`site`)."""

    def __init__(self, folder: Path) -> None:
        self.site = folder / "site"
        self.site.mkdir()
        (self.site / "tool.txt").write_text("site software\n")
        self.data = folder / "data"
        self.config = self.site / "jobgate.toml"
        self.config.write_text(CONFIG.format(data=self.data, alice=ALICE, bob=BOB, site=self.site))
        self.serve = ServeProcess(self.config, folder / "gateway.log")

    def workspace(self, username: str) -> Path:
        return self.data / "files" / "users" / username

    def output(self, job_id: str) -> str:
        folder = self.data / "local" / "local" / job_id
        return (folder / "stdout-0.log").read_text() + (folder / "stderr-0.log").read_text()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    # A gateway's environment may hold secrets (the README's JOBGATE_USERS): jobs never see it.
    site.serve.start(ALICE, env={"JOBGATE_TEST_SECRET": "gateway-environment-secret"})
    try:
        yield site
    finally:
        site.serve.stop()


def spec(app: str, product: str = "cpu", **parameters: Any) -> dict[str, Any]:
    values = []
    for name, value in parameters.items():
        if isinstance(value, dict):
            values.append({"name": name, "value": value})
        else:
            values.append({"name": name, "value": {"text": value}})
    return {
        "application": {"name": app, "version": "1"},
        "product": {"id": product, "category": "cpu", "provider": "local"},
        "parameters": values,
        "allowDuplicateJob": True,
    }


async def run(site: Site, client: GraphQLClient, job: dict[str, Any]) -> tuple[str, str]:
    """Run a job to its end: its final status and its whole output."""
    (job_id,) = await submit(client, job)
    final = await wait_for_state(client, job_id, "SUCCESS", "FAILURE", "EXPIRED")
    return final["updates"][-1]["status"], site.output(job_id)


async def test_a_job_cannot_read_the_gateways_config_data_environment_or_other_users_files(
    site: Site,
) -> None:
    alice = site.serve.client(ALICE)
    bob = site.serve.client(BOB)
    await run(site, bob, spec("shell", script="echo bob-private > secret.txt; cp secret.txt ~"))
    script = (
        f"cat {site.config}; ls {site.data}; cat {site.data}/jobgate.db | head -c 100; "
        f"ls {site.workspace('bob')}; cat /proc/1/environ; env; cat {site.site}/tool.txt"
    )
    _, output = await run(site, alice, spec("shell", script=script))
    for secret in (ALICE, BOB, "provider-confined", "gateway-environment-secret", "bob-private"):
        assert secret not in output
    assert "site software" in output  # what the site lets jobs read, they read


async def test_a_job_runs_unprivileged_with_a_clean_environment_of_documented_variables(
    site: Site,
) -> None:
    alice = site.serve.client(ALICE)
    _, output = await run(site, alice, spec("shell", script="id -u; env | sort"))
    uid, *variables = output.splitlines()
    expected = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == str(expected)
    names = {line.split("=", 1)[0] for line in variables}
    assert names - {"PWD", "SHLVL", "_"} == {
        "PATH",
        "HOME",
        "LANG",
        "JOBGATE_JOB_ID",
        "JOBGATE_RANK",
        "JOBGATE_REPLICAS",
        "JOBGATE_WORKSPACE",
        "JOBGATE_JOB_FOLDER",
    }
    assert f"JOBGATE_WORKSPACE={site.workspace('alice')}" in variables


async def test_a_path_that_leaves_the_workspace_is_refused_at_submit(site: Site) -> None:
    alice = site.serve.client(ALICE)
    home = site.workspace("alice")
    home.mkdir(parents=True)
    (home / "data").symlink_to(site.data)
    (home / "notes.txt").write_text("mine\n")
    for path in ("../../../../jobgate.toml", "data/jobgate.db", "/etc/hostname\0"):
        payload = (
            await alice.execute(
                SUBMIT, {"input": {"jobs": [spec("read", file={"file": {"path": path}})]}}
            )
        )["submitJobs"]
        assert payload["jobs"] == []
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("INVALID_PARAMETER", ["parameters", "file", "path"])
        ], path
    status, output = await run(site, alice, spec("read", file={"file": {"path": "/notes.txt"}}))
    assert output == "mine\n", status


async def test_a_folder_parameter_lists_only_the_jobs_own_workspace(site: Site) -> None:
    alice = site.serve.client(ALICE)
    bob = site.serve.client(BOB)
    await run(site, bob, spec("shell", script="touch ~/bobs-file"))
    assert (site.workspace("bob") / "bobs-file").exists()  # HOME is the job's workspace
    _, output = await run(site, alice, spec("list", folder={"file": {"path": "/"}}))
    assert "bobs-file" not in output
    _, output = await run(site, alice, spec("shell", script=f"ls {site.workspace('bob')}"))
    assert "bobs-file" not in output


async def test_a_read_only_path_cannot_be_written(site: Site) -> None:
    alice = site.serve.client(ALICE)
    home = site.workspace("alice")
    await run(site, alice, spec("shell", script="true"))  # the gateway makes it, the job's own
    (home / "input").mkdir()
    (home / "input" / "data.csv").write_text("1,2\n")
    read_only = {"file": {"path": "/input", "readOnly": True}}
    script = f"echo changed > {home}/input/data.csv; echo more > {home}/elsewhere.txt"
    shell = spec("shell", script=script)
    shell["resources"] = [read_only]
    await run(site, alice, shell)
    assert (home / "input" / "data.csv").read_text() == "1,2\n"
    assert (home / "elsewhere.txt").read_text() == "more\n"  # the rest of the workspace: writable


async def test_no_network_unless_the_product_allows_it(site: Site) -> None:
    alice = site.serve.client(ALICE)
    probe = f"bash -c 'echo > /dev/tcp/127.0.0.1/{site.serve.port}' && echo reached"
    _, output = await run(site, alice, spec("shell", script=probe))
    assert "reached" not in output
    _, output = await run(site, alice, spec("shell", product="cpu-net", script=probe))
    assert "reached" in output


async def test_a_project_job_works_in_the_projects_workspace(site: Site) -> None:
    alice = site.serve.client(ALICE)
    (job_id,) = await submit(
        alice, spec("shell", script="echo shared > ~/result.txt"), project="lab"
    )
    await wait_for_state(alice, job_id, "SUCCESS")
    assert (site.data / "files/projects/lab/result.txt").read_text() == "shared\n"


async def test_without_a_sandbox_the_gateway_warns_and_jobs_still_get_a_clean_environment(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path)
    site.config.write_text(
        site.config.read_text().replace(
            "read_only_paths = ", 'sandbox = "none"\nread_only_paths = '
        )
    )
    site.serve.start(ALICE, env={"JOBGATE_TEST_SECRET": "gateway-environment-secret"})
    try:
        alice = site.serve.client(ALICE)
        _, output = await run(site, alice, spec("shell", script="id -u; env"))
    finally:
        site.serve.stop()
    assert "runs jobs without a sandbox" in site.serve.output()
    assert "gateway-environment-secret" not in output
    expected = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert output.splitlines()[0] == str(expected)


def test_a_missing_bubblewrap_stops_the_start_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="apt-get install bubblewrap"):
        Bubblewrap.find(None, [], [])
