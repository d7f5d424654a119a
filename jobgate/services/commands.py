"""`CommandService`: the `providerCommands` stream and its acknowledgements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from jobgate.access import ProviderIdentity
from jobgate.domain.commands import ProviderCommand
from jobgate.errors import NotSupported
from jobgate.events.commands import CommandSignal
from jobgate.providers.remote import RemoteProvider
from jobgate.services.jobs import ProviderRegistry
from jobgate.sessions.relay import RelayDelivery
from jobgate.storage.base import JobStore

BATCH = 500


class CommandService:
    """Delivers a remote provider's stored commands to its agent, until acknowledged."""

    def __init__(
        self,
        store: JobStore,
        providers: ProviderRegistry,
        signal: CommandSignal,
        *,
        poll_interval: float,
    ) -> None:
        self.store = store
        self.providers = providers
        self.signal = signal
        self.poll_interval = poll_interval

    def _remote(self, provider: ProviderIdentity) -> RemoteProvider:
        adapter = self.providers.get(provider.provider_id)
        if not isinstance(adapter, RemoteProvider):
            raise NotSupported(
                f"provider '{provider.provider_id}' is not remote; its work does not go to an agent"
            )
        return adapter

    async def follow(
        self, provider: ProviderIdentity, after: int = 0
    ) -> AsyncIterator[ProviderCommand | RelayDelivery]:
        """Unacknowledged commands after `after`, oldest first, then new ones as they come;
        with them, requests to relay a session (never stored: for an agent connected here).

        Each command is delivered once per stream; a command not acknowledged before the stream
        ends is delivered again on the next one.
        """
        adapter = self._remote(provider)
        provider_id = provider.provider_id
        with adapter.agent_connected():
            delivered: set[int] = set()
            position = after
            while True:
                self.signal.clear(provider_id)
                pending = await self._all_pending(provider_id, after)
                for command in pending:
                    if command.seq not in delivered:
                        delivered.add(command.seq)
                        position = max(position, command.seq)
                        yield command
                for request in adapter.take_relay_requests():
                    yield RelayDelivery(request, position)
                delivered &= {command.seq for command in pending}  # forget acknowledged ones
                await self.signal.wait(provider_id, self.poll_interval)

    async def _all_pending(self, provider_id: str, after: int) -> list[ProviderCommand]:
        commands: list[ProviderCommand] = []
        while True:
            batch = await self.store.pending_commands(provider_id, after, BATCH)
            commands += batch
            if len(batch) < BATCH:
                return commands
            after = batch[-1].seq

    async def acknowledge(self, provider: ProviderIdentity, seqs: Sequence[int]) -> int:
        self._remote(provider)
        return await self.store.acknowledge_commands(provider.provider_id, seqs)
