"""Provider commands: the work the gateway stores for a remote provider until its agent
acknowledges it. Each names one job; EXTEND also carries the time to add."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from jobgate.domain.values import SimpleDuration


class CommandKind(enum.StrEnum):
    SUBMIT = "SUBMIT"
    CANCEL = "CANCEL"
    EXTEND = "EXTEND"
    SUSPEND = "SUSPEND"
    RESUME = "RESUME"
    VERIFY = "VERIFY"
    # Relay a connection of a session (`jobgate.sessions.relay`): never stored, never acknowledged.
    OPEN_SESSION = "OPEN_SESSION"


@dataclass(frozen=True, slots=True)
class NewCommand:
    provider: str
    kind: CommandKind
    job_id: str
    created_at: int
    requested_time: SimpleDuration | None = None


@dataclass(frozen=True, slots=True)
class ProviderCommand:
    """A stored command. `seq` orders a provider's commands and is its cursor."""

    seq: int
    provider: str
    kind: CommandKind
    job_id: str
    created_at: int
    requested_time: SimpleDuration | None = None
