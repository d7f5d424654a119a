"""UCloud's update rules, in one place.

`apply_update` decides what one provider update does to a job's status; the service stores the
result. The rules, in UCloud's order:

1. `expectedState` must equal the current state, else the update is skipped.
2. With `expectedDifferentState`, an update whose `state` equals the current state is skipped.
3. A final job accepts no state update (final states stay final).
4. `newTimeAllocation` replaces the allocation; `allowRestart`, `outputFolder` and the
   provider's id are set; a `RUNNING` state sets `startedAt` to the server's time.

Skipped updates are not stored. Invalid ones are rejected before any rule runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from jobgate.domain.job import JobStatus, UpdateRequest
from jobgate.domain.paths import PATH_MAX_LENGTH
from jobgate.domain.states import RESTARTABLE_STATES, JobState
from jobgate.errors import UserErrorCode


@dataclass(frozen=True, slots=True)
class Applied:
    status: JobStatus


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    code: UserErrorCode
    message: str


Decision = Applied | Skipped | Rejected

STATUS_MAX_LENGTH = 4000
# Slurm's ids are a few digits, Kubernetes' names at most 253 characters.
PROVIDER_ID_MAX_LENGTH = 256
_T = TypeVar("_T")


def check_update(request: UpdateRequest) -> Rejected | None:
    """Reject updates that are invalid whatever the job's state."""
    if request.allow_restart and request.state not in RESTARTABLE_STATES:
        return Rejected(
            UserErrorCode.INVALID_PARAMETER,
            "allowRestart is accepted only with state SUCCESS, FAILURE or SUSPENDED",
        )
    if request.new_time_allocation is not None:
        problems = request.new_time_allocation.problems("newTimeAllocation")
        if problems:
            return Rejected(UserErrorCode.INVALID_PARAMETER, problems[0][1])
    if request.status is not None and len(request.status) > STATUS_MAX_LENGTH:
        return Rejected(
            UserErrorCode.INVALID_PARAMETER,
            f"status may have at most {STATUS_MAX_LENGTH} characters",
        )
    if request.output_folder is not None and (
        "\0" in request.output_folder or len(request.output_folder.encode()) > PATH_MAX_LENGTH
    ):
        return Rejected(
            UserErrorCode.INVALID_PARAMETER,
            f"outputFolder must be a path of at most {PATH_MAX_LENGTH} bytes, without NUL",
        )
    if request.provider_generated_id is not None and (
        len(request.provider_generated_id) > PROVIDER_ID_MAX_LENGTH
        or not request.provider_generated_id.isprintable()
    ):
        return Rejected(
            UserErrorCode.INVALID_PARAMETER,
            f"providerGeneratedId may have at most {PROVIDER_ID_MAX_LENGTH} printable characters",
        )
    changes = (
        request.state,
        request.status,
        request.output_folder,
        request.new_time_allocation,
        request.allow_restart,
        request.provider_generated_id,
    )
    if all(change is None for change in changes):
        return Rejected(UserErrorCode.INVALID_PARAMETER, "the update changes nothing")
    return None


def apply_update(current: JobStatus, request: UpdateRequest, now_ms: int) -> Decision:
    """What `request` does to a job whose status is `current`, at server time `now_ms`."""
    rejected = check_update(request)
    if rejected is not None:
        return rejected
    if request.expected_state is not None and current.state != request.expected_state:
        return Skipped(f"expected state {request.expected_state}, but the job is {current.state}")
    if (
        request.expected_different_state
        and request.state is not None
        and current.state == request.state
    ):
        return Skipped(f"the job is already {current.state}")
    if current.state.is_final and request.state is not None:
        return Skipped(f"the job is final ({current.state}) and cannot change state")

    return Applied(
        JobStatus(
            state=request.state if request.state is not None else current.state,
            started_at=now_ms if request.state is JobState.RUNNING else current.started_at,
            allow_restart=_or(request.allow_restart, current.allow_restart),
            time_allocation=_or(request.new_time_allocation, current.time_allocation),
            output_folder=_or(request.output_folder, current.output_folder),
            provider_generated_id=_or(request.provider_generated_id, current.provider_generated_id),
        )
    )


def _or(new: _T | None, old: _T) -> _T:
    return old if new is None else new
