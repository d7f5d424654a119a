"""The seven job states of UCloud and their ordering."""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    """A job's lifecycle state. Only providers change it, through updates."""

    IN_QUEUE = "IN_QUEUE"
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"

    @property
    def is_final(self) -> bool:
        """SUCCESS, FAILURE and EXPIRED never change again."""
        return self in FINAL_STATES

    @property
    def lifecycle_rank(self) -> int:
        """Position in the contract's STATE order, used for sorting."""
        return _LIFECYCLE_ORDER.index(self)


FINAL_STATES = frozenset({JobState.SUCCESS, JobState.FAILURE, JobState.EXPIRED})
ACTIVE_STATES = frozenset(set(JobState) - FINAL_STATES)
# As stores keep them (text), in a stable order.
FINAL_STATE_VALUES = tuple(sorted(state.value for state in FINAL_STATES))

# The contract's JobOrderField.STATE order: active states first, then the final ones.
_LIFECYCLE_ORDER = (
    JobState.IN_QUEUE,
    JobState.RUNNING,
    JobState.CANCELING,
    JobState.SUSPENDED,
    JobState.SUCCESS,
    JobState.FAILURE,
    JobState.EXPIRED,
)

# States from which a job may be marked restartable (UCloud rejects allowRestart elsewhere).
RESTARTABLE_STATES = frozenset({JobState.SUCCESS, JobState.FAILURE, JobState.SUSPENDED})
