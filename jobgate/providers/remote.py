"""`RemoteProvider`: the gateway's side of a provider whose `jobgate agent` connects out to it.

Every command becomes a stored `ProviderCommand`, kept until the agent acknowledges it, so an agent
that is offline receives what it missed when it connects. The agent runs the work through its own
local or slurm adapter and reports with `reportJobUpdates`, as any provider does.

Sessions of its jobs are relayed through the agent (`jobgate.sessions.relay`): those requests
are not stored, they go to the agents connected to this replica (`take_relay_requests`), or
are said to the other replicas, whose agents answer them (`jobgate.sessions.relay_crossing`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence

from jobgate.domain.catalog import Product
from jobgate.domain.commands import CommandKind, NewCommand
from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.domain.values import SimpleDuration
from jobgate.events.commands import CommandSignal
from jobgate.providers.background import TaskSet
from jobgate.providers.base import ProviderContext
from jobgate.sessions.address import Upstream
from jobgate.sessions.relay import RelayHub, RelayPoints
from jobgate.sessions.relay_crossing import RelayRequest
from jobgate.storage.base import JobStore

log = logging.getLogger(__name__)


class RemoteProvider:
    """Stores commands for an agent; online while at least one agent stream is open here."""

    kind = "remote"

    def __init__(
        self,
        provider_id: str,
        products: list[Product],
        *,
        store: JobStore,
        signal: CommandSignal,
        ring: Callable[[], None],
        clock: Callable[[], int],
        relays: RelayHub | None = None,
    ) -> None:
        self.id = provider_id
        self.products = products
        self.store = store
        self.signal = signal
        self._ring = ring
        self._clock = clock
        self._agents = 0
        self._context: ProviderContext | None = None
        self._relay_requests: list[RelayRequest] = []
        self._tasks = TaskSet()
        self._hub = relays
        self._relays = None if relays is None else RelayPoints(provider_id, relays, self._ask)
        if relays is not None and relays.crossing is not None:
            relays.crossing.agents_here[provider_id] = self._deliver

    @property
    def online(self) -> bool:
        return self._agents > 0

    @property
    def max_replicas(self) -> None:
        return None  # the agent's adapter refuses what it cannot run

    @property
    def workspaces(self) -> None:
        return None  # the agent resolves paths where the files are, before it starts a job

    @contextlib.contextmanager
    def agent_connected(self) -> Iterator[None]:
        """Held by an agent's command stream while it is open."""
        self._agents += 1
        if self._agents == 1:
            log.info("the agent of provider %s connected", self.id)
        try:
            yield
        finally:
            self._agents -= 1
            if self._agents == 0:
                log.info("the agent of provider %s disconnected", self.id)
                self._relay_requests.clear()  # nobody here will answer them

    async def start(self, context: ProviderContext) -> None:
        self._context = context

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        if self._relays is not None:
            await self._relays.close_all()

    # --- interactive sessions -------------------------------------------------------------------

    async def upstream(self, job: Job, rank: int, kind: SessionType) -> Upstream | None:
        """A socket here whose every connection the agent relays to the job's side (its agent
        connected here, or to a replica this one can ask)."""
        if self._hub is None or self._relays is None:
            return None
        if not self.online and self._hub.crossing is None:
            return None
        path = await self._relays.socket_for(job.id, rank, kind)
        assert self._context is not None
        app = self._context.catalog.application(job.specification.application)
        keeps = app is not None and app.interactive.keep_prefix
        return Upstream(unix_socket=path, strip_prefix=not keeps)

    async def _ask(self, request: RelayRequest) -> bool:
        if self.online:
            self._deliver(request)
            return True
        if self._hub is not None and self._hub.crossing is not None:
            return await self._hub.crossing.ask(self.id, request)
        return False

    def _deliver(self, request: RelayRequest) -> None:
        """Onto the agent streams open here (none open: another replica's agent answers)."""
        if self.online:
            self._relay_requests.append(request)
            self.signal.notify(self.id)

    def take_relay_requests(self) -> list[RelayRequest]:
        """The relay requests for this gateway's agent streams, once (see the module)."""
        taken, self._relay_requests = self._relay_requests, []
        return taken

    def job_ended(self, job_id: str) -> None:
        """Called as a job's final update is stored (`JobService.on_final`): its relay
        sockets go."""
        if self._relays is not None:
            self._tasks.spawn(self._relays.close(job_id))

    async def _store(
        self,
        kind: CommandKind,
        jobs: Sequence[Job],
        requested: Sequence[SimpleDuration | None] | None = None,
    ) -> None:
        now = self._clock()
        times = requested if requested is not None else [None] * len(jobs)
        await self.store.add_commands(
            [
                NewCommand(self.id, kind, job.id, now, time)
                for job, time in zip(jobs, times, strict=True)
            ]
        )
        self.signal.notify(self.id)
        self._ring()  # agents connected to other replicas

    async def submit(self, jobs: Sequence[Job]) -> None:
        await self._store(CommandKind.SUBMIT, jobs)
        if not self.online:
            assert self._context is not None
            # For a job still queued only: a job handed over again (the outbox could not
            # complete its entry) may have started, or ended, at the agent meanwhile.
            await self._context.report(
                [
                    UpdateRequest(
                        job.id,
                        status=f"Waiting for the agent of provider '{self.id}' to connect",
                        expected_state=JobState.IN_QUEUE,
                    )
                    for job in jobs
                ]
            )

    async def cancel(self, jobs: Sequence[Job]) -> None:
        await self._store(CommandKind.CANCEL, jobs)

    async def extend(self, requests: Sequence[tuple[Job, SimpleDuration]]) -> None:
        await self._store(
            CommandKind.EXTEND, [job for job, _ in requests], [time for _, time in requests]
        )

    async def suspend(self, jobs: Sequence[Job]) -> None:
        await self._store(CommandKind.SUSPEND, jobs)

    async def resume(self, jobs: Sequence[Job]) -> None:
        await self._store(CommandKind.RESUME, jobs)

    async def verify(self, jobs: Sequence[Job]) -> list[Job]:
        """Ask the agent (VERIFY commands); it reports the jobs its back end lost as FAILURE."""
        pending = await self.store.pending_commands(self.id)
        asked = {c.job_id for c in pending if c.kind is CommandKind.VERIFY}
        unasked = [job for job in jobs if job.id not in asked]
        if unasked:
            await self._store(CommandKind.VERIFY, unasked)
        return []

    async def backfill_logs(self, job: Job) -> None:
        """Lines of remote jobs live with the agent; the gateway has none to add."""
        assert self._context is not None
        self._context.logs.close(job.id)
