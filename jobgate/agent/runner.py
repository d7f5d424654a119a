"""`Agent`: receives a remote provider's commands and carries them out through a local adapter.

It connects out to the gateway (so a cluster behind a firewall needs no inbound port), subscribes
to `providerCommands` over graphql-transport-ws, runs each command through its `local` or `slurm`
adapter, notes it in its journal and acknowledges it. Updates go back with `reportJobUpdates`;
the adapters use `expectedState`/`expectedDifferentState`, so a repeated report changes nothing.
When the connection drops it reconnects with exponential backoff; the gateway kept every command
it had not acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from jobgate.agent import decode
from jobgate.agent.client import GatewayClient, GatewayRefused, GatewayUnavailable, failure_of
from jobgate.agent.journal import CommandJournal
from jobgate.agent.relay import SESSION_FIELDS, relay
from jobgate.agent.settings import AgentSettings, LocalAdapterSettings
from jobgate.domain.catalog import Catalog, Product
from jobgate.domain.commands import CommandKind
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.states import ACTIVE_STATES, JobState
from jobgate.errors import JobgateError, ProviderNotReady
from jobgate.events.logs import JobLogHub, LogLine
from jobgate.providers.background import no_longer_known
from jobgate.providers.base import ProviderAdapter, ProviderContext
from jobgate.providers.factory import local_adapter, slurm_adapter

log = logging.getLogger(__name__)

COMMANDS = f"""
subscription Commands {{
  providerCommands {{ id cursor kind requestedTime {decode.DURATION} job {{ {decode.JOB_FIELDS} }} }}
}}
"""
# The same, from a gateway that relays sessions through its agents.
COMMANDS_WITH_SESSIONS = COMMANDS.replace(
    "providerCommands {", f"providerCommands {{ {SESSION_FIELDS}"
)
REPORT = """
mutation Report($updates: [JobUpdateInput!]!) {
  reportJobUpdates(input: {updates: $updates}) { results { jobId outcome code message } }
}
"""
REPORT_LOGS = """
mutation Logs($lines: [JobLogInput!]!) {
  reportJobLogs(input: {lines: $lines}) { accepted userErrors { code message jobId } }
}
"""
ACKNOWLEDGE = """
mutation Ack($ids: [ID!]!) { acknowledgeProviderCommands(input: {ids: $ids}) { acknowledged } }
"""
ACTIVE_JOBS = f"""
query Active($states: [JobState!], $after: String) {{
  jobs(filter: {{states: $states}}, first: 200, after: $after) {{
    nodes {{ {decode.JOB_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
# Acknowledgements wait this long for more commands to go with them in one call.
ACK_DELAY = 0.05
ACK_BATCH = 200
# Commands that arrive within this long of each other are carried out as one backlog.
LOOK_AHEAD_SECONDS = 0.02
# Output lines go to the gateway in batches this often; at most this many wait while it is away.
LOG_FLUSH_SECONDS = 0.2
MAX_BUFFERED_LINES = 10_000


def command_in(payload: dict[str, Any]) -> dict[str, Any]:
    """The command a `next` message of `providerCommands` carries. An event can carry errors
    instead (the gateway's store did not answer while it read the command): they raise, as
    `failure_of` says (a passing one reconnects; commands not acknowledged come again)."""
    errors = payload.get("errors")
    if errors:
        raise failure_of(errors, "providerCommands")
    command: dict[str, Any] = payload["data"]["providerCommands"]
    return command


class AgentAdapter(ProviderAdapter, Protocol):
    def tracks(self, job_id: str) -> bool:
        """Whether the adapter already follows this job (so a repeated SUBMIT is ignored)."""


class Agent:
    def __init__(self, settings: AgentSettings, gateway_url: str, token: str) -> None:
        self.settings = settings
        self.client = GatewayClient(gateway_url, token)
        self.token = token
        self.journal = CommandJournal(settings.folder / "agent-journal.txt")
        self.adapter: AgentAdapter | None = None
        self.provider_id = ""
        self._backoff = 0.5
        self._relays: set[asyncio.Task[None]] = set()  # sessions' connections, relayed
        self.sessions = False  # whether the gateway relays sessions through this agent
        self.logs = JobLogHub()
        self.logs.listeners.append(self._buffer_line)
        self._lines: deque[LogLine] = deque(maxlen=MAX_BUFFERED_LINES)
        self._log_lock = asyncio.Lock()

    # --- the gateway's side of the adapter ----------------------------------------------------

    async def report(self, updates: Sequence[UpdateRequest]) -> None:
        """Send updates; raises `GatewayUnavailable` (the adapters retry) while it is away.

        Output lines go first: a final update ends the job's log streams at the gateway.
        """
        await self._flush_logs()
        for start in range(0, len(updates), 500):
            chunk = updates[start : start + 500]
            data = await self.client.execute(REPORT, {"updates": [_update_input(u) for u in chunk]})
            for result in data["reportJobUpdates"]["results"]:
                if result["outcome"] == "REJECTED":
                    log.warning(
                        "the gateway rejected an update of job %s: %s %s",
                        result["jobId"],
                        result["code"],
                        result["message"],
                    )

    def _buffer_line(self, line: LogLine) -> None:
        if len(self._lines) == self._lines.maxlen:
            log.warning("the gateway is away too long; dropping the oldest buffered output line")
        self._lines.append(line)

    async def _flush_logs(self) -> None:
        async with self._log_lock:
            while self._lines:
                batch = [self._lines[i] for i in range(min(len(self._lines), 1000))]
                data = await self.client.execute(
                    REPORT_LOGS, {"lines": [_log_input(line) for line in batch]}
                )
                for _ in batch:
                    self._lines.popleft()
                for problem in data["reportJobLogs"]["userErrors"]:
                    log.warning(
                        "the gateway refused a log line of job %s: %s",
                        problem["jobId"],
                        problem["message"],
                    )

    async def _forward_logs(self) -> None:
        while True:
            await asyncio.sleep(LOG_FLUSH_SECONDS)
            try:
                await self._flush_logs()
            except GatewayUnavailable:
                continue  # kept; sent once the gateway is back
            except GatewayRefused as error:
                log.warning("the gateway refused output lines: %s", error.message)
                self._lines.clear()

    async def active_jobs(self) -> list[Job]:
        jobs: list[Job] = []
        after: str | None = None
        states = [state.value for state in ACTIVE_STATES]
        while True:
            data = await self.client.execute(ACTIVE_JOBS, {"states": states, "after": after})
            page = data["jobs"]
            jobs += [decode.job(node) for node in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                return jobs
            after = page["pageInfo"]["endCursor"]

    # --- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, start the adapter, then follow commands for ever, reconnecting as needed."""
        catalog, products = await self._catalog_when_reachable()
        self.adapter = self._build_adapter(products)
        await self.adapter.start(
            ProviderContext(
                report=self.report,
                active_jobs=self.active_jobs,
                catalog=catalog,
                data_dir=self.settings.folder,
                logs=self.logs,
            )
        )
        forwarder = asyncio.create_task(self._forward_logs())
        log.info("agent of provider %s started (%s adapter)", self.provider_id, self.adapter.kind)
        try:
            while True:
                try:
                    await self._session()
                except (
                    OSError,
                    WebSocketException,
                    GatewayUnavailable,
                    ProviderNotReady,
                    TimeoutError,
                ) as error:
                    log.warning(
                        "lost the gateway (%s); reconnecting", error or type(error).__name__
                    )
                await self._wait_to_reconnect()
        finally:
            forwarder.cancel()
            await self.adapter.stop()
            await self.client.close()

    async def _catalog_when_reachable(self) -> tuple[Catalog, list[Product]]:
        """The catalog, asked again with backoff until the gateway answers."""
        while True:
            try:
                return await self._load_catalog()
            except GatewayUnavailable as error:
                log.warning("%s; retrying", error.message)
                await self._wait_to_reconnect()

    async def _wait_to_reconnect(self) -> None:
        delay = self._backoff * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not secrecy)
        await asyncio.sleep(delay)
        self._backoff = min(self._backoff * 2, self.settings.reconnect_max_seconds)

    async def _load_catalog(self) -> tuple[Catalog, list[Product]]:
        self.sessions = decode.serves_sessions(await self.client.execute(decode.SERVES_SESSIONS))
        data = await self.client.execute(
            decode.CATALOG_WITH_SESSIONS if self.sessions else decode.CATALOG
        )
        mine = data["myProvider"]
        if mine is None:
            raise GatewayRefused("the token is not a provider's token", ["FORBIDDEN"])
        if mine["kind"] != "remote":
            raise GatewayRefused(
                f"provider '{mine['id']}' is not configured as kind = \"remote\" at the gateway",
                ["NOT_SUPPORTED"],
            )
        self.provider_id = mine["id"]
        products = decode.products(mine["products"])
        return Catalog(decode.applications(data["applications"]), products), products

    def _build_adapter(self, products: list[Product]) -> AgentAdapter:
        adapter = self.settings.adapter
        if isinstance(adapter, LocalAdapterSettings):
            private = [] if self.settings.source_file is None else [self.settings.source_file]
            return local_adapter(self.provider_id, products, adapter, private=private)
        return slurm_adapter(
            self.provider_id, products, adapter, workdir=self.settings.folder / "slurm"
        )

    async def _session(self) -> None:
        """One connection: subscribe, then carry out commands as they arrive."""
        async with connect(
            self.client.ws_url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            open_timeout=10,
        ) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"Authorization": f"Bearer {self.token}"},
                    }
                )
            )
            async with asyncio.timeout(10):
                ack = json.loads(await ws.recv())
            if ack["type"] != "connection_ack":
                raise GatewayRefused(
                    f"the gateway refused the connection: {ack}", ["UNAUTHENTICATED"]
                )
            await ws.send(
                json.dumps(
                    {
                        "id": "commands",
                        "type": "subscribe",
                        "payload": {"query": COMMANDS_WITH_SESSIONS if self.sessions else COMMANDS},
                    }
                )
            )
            log.info("connected to the gateway; waiting for commands")
            self._backoff = 0.5
            await self._follow(ws)

    async def _follow(self, ws: ClientConnection) -> None:
        unacknowledged: list[str] = []
        while True:
            try:
                timeout = ACK_DELAY if unacknowledged else None
                async with asyncio.timeout(timeout):
                    raw = await ws.recv()
            except TimeoutError:
                await self._acknowledge(unacknowledged)
                continue
            commands: list[dict[str, Any]] = []
            while True:
                message = json.loads(raw)
                match message["type"]:
                    case "next":
                        commands.append(command_in(message["payload"]))
                    case "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    case "error":
                        # A passing failure: reconnect and try again.
                        raise failure_of(message["payload"], "providerCommands")
                    case "complete":
                        await self._carry_out_all(commands, unacknowledged)
                        return
                if len(commands) >= ACK_BATCH:
                    break
                try:
                    # What else has come already (a backlog after a stall or a reconnect) is
                    # carried out with it: a job cancelled in it is never started.
                    async with asyncio.timeout(LOOK_AHEAD_SECONDS):
                        raw = await ws.recv()
                except TimeoutError:
                    break
            await self._carry_out_all(commands, unacknowledged)
            if len(unacknowledged) >= ACK_BATCH:
                await self._acknowledge(unacknowledged)

    async def _carry_out_all(
        self, commands: list[dict[str, Any]], unacknowledged: list[str]
    ) -> None:
        relays = [c for c in commands if c["kind"] == CommandKind.OPEN_SESSION.value]
        for command in relays:  # not stored at the gateway: nothing to journal or acknowledge
            self._relay(command)
        commands = [c for c in commands if c["kind"] != CommandKind.OPEN_SESSION.value]
        cancelled = {c["job"]["id"] for c in commands if c["kind"] == CommandKind.CANCEL.value}
        for command in commands:
            await self._carry_out(command, skip_submit=command["job"]["id"] in cancelled)
            unacknowledged.append(command["id"])

    def _relay(self, command: dict[str, Any]) -> None:
        """Relay one connection of a session, beside the commands (it lasts as long as the
        browser's connection does)."""
        job = decode.job(command["job"])
        task = asyncio.create_task(
            relay(self.adapter, job, command["session"], self.client.url, self.token)
        )
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def _acknowledge(self, ids: list[str]) -> None:
        if ids:
            await self.client.execute(ACKNOWLEDGE, {"ids": ids})
            ids.clear()

    async def _carry_out(self, command: dict[str, Any], *, skip_submit: bool = False) -> None:
        """Carry out one command, once; a SUBMIT of a job cancelled by a later command of the
        same backlog (`skip_submit`) is not started: that CANCEL settles it."""
        seq = int(command["id"])
        if seq in self.journal:
            return  # done before the last connection dropped; only its acknowledgement was lost
        assert self.adapter is not None
        kind = CommandKind(command["kind"])
        job = decode.job(command["job"])
        try:
            if not (skip_submit and kind is CommandKind.SUBMIT):
                await self._dispatch(kind, job, command)
        except JobgateError as error:
            if isinstance(error, GatewayUnavailable | ProviderNotReady):
                raise  # not done: carried out again once the connection is made again
            log.warning("%s of job %s failed: %s", kind, job.id, error.message)
            await self.report(
                [
                    UpdateRequest(
                        job.id,
                        status=f"The provider could not {kind.lower()} the job: {error.message}",
                    )
                ]
            )
        self.journal.record(seq)

    async def _dispatch(self, kind: CommandKind, job: Job, command: dict[str, Any]) -> None:
        adapter = self.adapter
        assert adapter is not None
        match kind:
            case CommandKind.SUBMIT:
                if job.status.state is JobState.IN_QUEUE and not adapter.tracks(job.id):
                    await adapter.submit([job])
            case CommandKind.CANCEL:
                if not job.status.state.is_final:
                    await adapter.cancel([job])
            case CommandKind.EXTEND:
                requested = decode.duration(command["requestedTime"])
                if requested is not None and not job.status.state.is_final:
                    await adapter.extend([(job, requested)])
            case CommandKind.SUSPEND:
                await adapter.suspend([job])
            case CommandKind.RESUME:
                await adapter.resume([job])
            case CommandKind.VERIFY:
                if job.status.state.is_final:
                    return
                lost = await adapter.verify([job])
                if lost:
                    await self.report([no_longer_known(self.provider_id, j) for j in lost])


def _log_input(line: LogLine) -> dict[str, Any]:
    return {
        "jobId": line.job_id,
        "rank": line.rank,
        "stdout": line.stdout,
        "stderr": line.stderr,
        "channel": line.channel,
    }


def _update_input(update: UpdateRequest) -> dict[str, Any]:
    """`JobUpdateInput` for an update, leaving out what does not change."""
    fields: dict[str, Any] = {
        "jobId": update.job_id,
        "state": None if update.state is None else update.state.value,
        "status": update.status,
        "outputFolder": update.output_folder,
        "expectedState": None if update.expected_state is None else update.expected_state.value,
        "expectedDifferentState": update.expected_different_state,
        "allowRestart": update.allow_restart,
        "providerGeneratedId": update.provider_generated_id,
    }
    if update.new_time_allocation is not None:
        time = update.new_time_allocation
        fields["newTimeAllocation"] = {
            "hours": time.hours,
            "minutes": time.minutes,
            "seconds": time.seconds,
        }
    return {key: value for key, value in fields.items() if value is not None}
