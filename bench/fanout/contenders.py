"""The servers the fan-out benchmark compares, each started on a loopback port and stopped by
its PID: jobgate, the graphql-js peer and the two floors (bare broadcasters in Python and Go).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.fanout.client import Trigger, go_binary, tool
from bench.lifted_limits import LIFTED_LIMITS_TOML
from bench.proc import running
from tests.processes import JOBGATE
from tests.servers import free_port

PEER = Path(__file__).parent / "peer"
TOKEN, PROVIDER_TOKEN = "bench-user", "bench-provider"
# Member i's token (with `--distinct-callers`); the Go client fills in `{i}` for subscriber i.
MEMBER_TOKEN = "bench-member-{i}"
# What a dashboard's watcher asks of every update.
SUBSCRIPTION = (
    "subscription { jobUpdates { cursor jobId stateAfter update { timestamp state status } } }"
)
REPORT = """mutation($u: [JobUpdateInput!]!) {
  reportJobUpdates(input: {updates: $u}) { results { outcome } } }"""
SUBMIT = """mutation { submitJobs(input: {project: "lab", jobs: [{
  application: {name: "sleep", version: "1"},
  product: {id: "cpu", category: "cpu", provider: "local"},
  parameters: [{name: "seconds", value: {integer: 3600}}]}]}) { jobs { id } } }"""
SHARE = """mutation($id: ID!) { updateJobAcl(input: {changes: [{jobId: $id, added: [{
  entity: {projectGroup: {projectId: "lab", group: "all"}}, permissions: [READ]}]}]}) {
  userErrors { code message } } }"""

CONFIG = (
    f"""
[server]
data_dir = "{{data}}"
graphiql = false
[logging]
# Each broadcast's reportJobUpdates is audited: into the data folder, not the report.
audit_file = "{{data}}/audit.jsonl"
[[users]]
username = "bench"
token = "{TOKEN}"
projects = ["lab"]
[[providers]]
id = "local"
kind = "local"
token = "{PROVIDER_TOKEN}"
[[providers.products]]
name = "cpu"
category = "cpu"
[[applications]]
name = "sleep"
version = "1"
command = ["sleep", "{{{{seconds}}}}"]
parameters = [{{{{ name = "seconds", type = "integer" }}}}]
"""
    + LIFTED_LIMITS_TOML
    # The whole gateway's bound (10,000 by default): 10,000 subscribers and the trigger.
    + "max_connections = 12000\n"
)


@dataclass(frozen=True)
class Contender:
    """A server up for the benchmark: where to subscribe, as whom, and how to make it
    broadcast."""

    name: str
    pid: int
    ws_url: str
    trigger: Trigger
    token: str = TOKEN


def member_tokens_config(count: int) -> str:
    """`count` more users, members of the job's project (tokens `bench-member-{i}`), to append
    to the config (its braces doubled: it is formatted). The project's PI is the benchmark's
    user, who shares the job with them."""
    if not count:
        return ""
    members = "".join(
        f'[[users]]\nusername = "member-{n}"\ntoken = "{MEMBER_TOKEN.format(i=n)}"\n'
        'projects = ["lab"]\n'
        for n in range(count)
    )
    project = '[[projects]]\nid = "lab"\npis = ["bench"]\n'
    return (project + members).replace("{", "{{").replace("}", "}}")


@contextlib.contextmanager
def gateway_process(config_text: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`jobgate serve` with this config (its `{data}` filled in) in a temporary folder: its
    port and process, stopped on leaving."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "jobgate.toml"
        config.write_text(config_text.format(data=Path(folder) / "data"))
        port = free_port()
        command = [str(JOBGATE), "serve", "--config", str(config), "--port", str(port)]
        with running([*command, "--log-level", "warning"], port) as server:
            yield port, server


@contextlib.contextmanager
def jobgate(members: int = 0, config: str = CONFIG) -> Iterator[Contender]:
    """`jobgate serve` (SQLite, memory bus) with one running job; a broadcast is one
    `reportJobUpdates` of it. With `members`, users `member-0`... of the job's project, and
    subscriber i subscribes as `member-i`."""
    with gateway_process(config + member_tokens_config(members)) as (port, server):
        url = f"http://127.0.0.1:{port}/graphql"
        created = httpx.post(
            url, json={"query": SUBMIT}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        job_id = created.json()["data"]["submitJobs"]["jobs"][0]["id"]
        if members:
            # Every member may read it: each through the project's group "all", each with a view
            # of their own (no two subscribers share one).
            shared = httpx.post(
                url,
                json={"query": SHARE, "variables": {"id": job_id}},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert not shared.json()["data"]["updateJobAcl"]["userErrors"], shared.text
        body = {"query": REPORT, "variables": {"u": [{"jobId": job_id, "status": "tick {n}"}]}}
        trigger = Trigger(url, "POST", json.dumps(body), f"Bearer {PROVIDER_TOKEN}")
        token = MEMBER_TOKEN if members else TOKEN
        yield Contender("jobgate", server.pid, f"ws://127.0.0.1:{port}/graphql", trigger, token)


@contextlib.contextmanager
def peer(message: str) -> Iterator[Contender]:
    """The graphql-js peer (`peer/server.mjs`); a broadcast publishes the event that
    `message` (a `next` message of jobgate's) carries."""
    if not (PEER / "node_modules").exists():
        subprocess.run([tool("npm"), "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True)
    event = json.loads(message)["payload"]["data"]["jobUpdates"]
    port = free_port()
    with running([tool("node"), str(PEER / "server.mjs"), str(port)], port) as server:
        trigger = Trigger(f"http://127.0.0.1:{port}/publish", "POST", json.dumps(event))
        yield Contender("graphql-js", server.pid, f"ws://127.0.0.1:{port}/graphql", trigger)


@contextlib.contextmanager
def floor(language: str, message: str) -> Iterator[Contender]:
    """A bare broadcaster (`floor.py` or `go/floor`) writing `message` to every subscriber."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        file.write(message)
        file.flush()
        port = free_port()
        if language == "python":
            command = [sys.executable, "-m", "bench.fanout.floor", f"--port={port}"]
        else:
            command = [str(go_binary("floor")), f"-listen=127.0.0.1:{port}"]
        with running([*command, f"--message={file.name}"], port) as server:
            trigger = Trigger(f"http://127.0.0.1:{port}/publish")
            yield Contender(
                f"floor ({language})", server.pid, f"ws://127.0.0.1:{port}/graphql", trigger
            )
