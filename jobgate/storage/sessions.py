"""Interactive sessions as stores keep them: never the capability's secret, only its SHA-256
digest (as personal access tokens). A session lives in the store so that one opened through
one replica can be used through another."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from jobgate.domain.sessions import SessionType


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One opened session: who opened it, on which replica (`rank`) of which job, and by when
    its URL must first be used (`open_by`, ms); after that, a session's cookie lasts as long as
    the job runs."""

    id: str
    secret_digest: str
    job_id: str
    rank: int
    type: SessionType
    username: str
    created_at: int
    open_by: int


class SessionStore(Protocol):
    async def add_sessions(self, records: Sequence[SessionRecord]) -> None:
        """Store new sessions (ids are random: never taken)."""

    async def session(self, session_id: str) -> SessionRecord | None:
        """The session with this id, if it is there."""

    async def forget_sessions(self, job_ids: Sequence[str]) -> int:
        """Forget every session of these jobs (they ended); how many there were."""
