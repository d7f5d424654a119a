"""GraphQL enums. Domain enums are registered here, once, before any type uses them."""

from __future__ import annotations

import enum

import strawberry

from jobgate.domain.catalog import ParameterType
from jobgate.domain.commands import CommandKind
from jobgate.domain.sessions import SessionType
from jobgate.domain.states import JobState
from jobgate.errors import UserErrorCode
from jobgate.services.jobs import UpdateOutcome
from jobgate.storage.base import OrderField

strawberry.enum(
    JobState,
    description="The lifecycle of a job. SUCCESS, FAILURE and EXPIRED are final: a final job "
    "never changes state again. SUCCESS: ended without an infrastructure fault (a program's "
    "non-zero exit and a user's cancel are SUCCESS). FAILURE: ended by an infrastructure or "
    "scheduler fault. EXPIRED: its time allocation ran out. Only providers change a job's "
    "state, through updates.",
)
strawberry.enum(ParameterType, name="ApplicationParameterType")
strawberry.enum(SessionType, name="InteractiveSessionType")
strawberry.enum(CommandKind, name="ProviderCommandKind")
strawberry.enum(UserErrorCode, name="UserErrorCode")
strawberry.enum(
    UpdateOutcome,
    name="JobUpdateOutcome",
    description="APPLIED: stored and broadcast. SKIPPED: a precondition (expectedState, "
    "expectedDifferentState, final state) did not hold; nothing stored. REJECTED: not allowed "
    "or invalid.",
)
strawberry.enum(
    OrderField,
    name="JobOrderField",
    description="STATE orders by lifecycle: IN_QUEUE, RUNNING, CANCELING, SUSPENDED, SUCCESS, "
    "FAILURE, EXPIRED.",
)


@strawberry.enum
class Permission(enum.Enum):
    READ = "READ"
    EDIT = "EDIT"
    ADMIN = "ADMIN"
    PROVIDER = "PROVIDER"


@strawberry.enum
class OrderDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


__all__ = [
    "CommandKind",
    "JobState",
    "OrderDirection",
    "OrderField",
    "ParameterType",
    "Permission",
    "SessionType",
    "UpdateOutcome",
    "UserErrorCode",
]
