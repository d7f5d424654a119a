"""What adapters and their hosts (the gateway, an agent) share: background tasks, reports that
must not be lost, and the updates they send."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from jobgate.domain.job import Job, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.errors import JobgateError
from jobgate.providers.base import ProviderContext

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 10.0
T = TypeVar("T")


class TaskSet:
    """Background tasks an adapter owns; `cancel_all` ends them when the adapter stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # A context of its own: background work outlives the request that started it, and must
        # not inherit its store deadline (`JobStore.deadline`).
        task = asyncio.create_task(work, context=contextvars.Context())
        self._tasks.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def until_available(call: Callable[[], Awaitable[T]], provider_id: str, what: str) -> T:
    """`call()`, retried with backoff while the gateway (or its store) is unavailable."""
    delay = 0.2
    while True:
        try:
            return await call()
        except JobgateError as error:
            log.warning("provider %s cannot %s yet: %s", provider_id, what, error.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)


async def report_until_stored(
    context: ProviderContext, provider_id: str, updates: Sequence[UpdateRequest]
) -> None:
    """Report updates, retrying while the gateway (or its store) is unavailable, so no outcome
    is lost. Updates carry expectations, so a repeat changes nothing."""
    await until_available(lambda: context.report(updates), provider_id, "report updates")


def state_change(job_id: str, state: JobState, status: str) -> UpdateRequest:
    """An update to `state` that applies once: a repeat (after a retry, a restart or a
    redelivered command) finds the job already there and is skipped."""
    return UpdateRequest(job_id, state=state, status=status, expected_different_state=True)


def no_longer_known(provider_id: str, job: Job) -> UpdateRequest:
    """The verify outcome for a job its back end has lost: FAILURE, unless the job moved on
    since it was checked (the update expects the state it had then)."""
    return UpdateRequest(
        job.id,
        state=JobState.FAILURE,
        status=f"Provider '{provider_id}' no longer knows this job",
        expected_state=job.status.state,
    )
