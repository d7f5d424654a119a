"""UCloud's update rules, one test (or more) per rule."""

from __future__ import annotations

import pytest

from jobgate.domain.job import JobStatus, UpdateRequest
from jobgate.domain.rules import Applied, Rejected, Skipped, apply_update
from jobgate.domain.states import FINAL_STATES, JobState
from jobgate.domain.values import SimpleDuration
from jobgate.errors import UserErrorCode

NOW = 1_700_000_000_000


def update(**fields: object) -> UpdateRequest:
    return UpdateRequest("1", **fields)  # type: ignore[arg-type]


def applied(status: JobStatus, request: UpdateRequest) -> JobStatus:
    decision = apply_update(status, request, NOW)
    assert isinstance(decision, Applied), decision
    return decision.status


def test_expected_state_must_match_the_current_state() -> None:
    queued = JobStatus(JobState.IN_QUEUE)
    request = update(state=JobState.SUCCESS, expected_state=JobState.RUNNING)
    assert isinstance(apply_update(queued, request, NOW), Skipped)
    running = JobStatus(JobState.RUNNING)
    assert applied(running, request).state is JobState.SUCCESS


def test_expected_different_state_skips_a_repeated_transition() -> None:
    running = JobStatus(JobState.RUNNING, started_at=5)
    again = update(state=JobState.RUNNING, expected_different_state=True)
    assert isinstance(apply_update(running, again, NOW), Skipped)
    onwards = update(state=JobState.SUCCESS, expected_different_state=True)
    assert applied(running, onwards).state is JobState.SUCCESS


def test_without_expected_different_state_a_repeated_running_restarts_the_clock() -> None:
    running = JobStatus(JobState.RUNNING, started_at=5)
    assert applied(running, update(state=JobState.RUNNING)).started_at == NOW


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
@pytest.mark.parametrize("target", list(JobState))
def test_final_states_stay_final(final: JobState, target: JobState) -> None:
    decision = apply_update(JobStatus(final), update(state=target), NOW)
    assert isinstance(decision, Skipped)


def test_a_final_job_still_takes_a_status_message_and_output_folder() -> None:
    done = JobStatus(JobState.SUCCESS)
    after = applied(done, update(status="results copied", output_folder="/out"))
    assert after.state is JobState.SUCCESS
    assert after.output_folder == "/out"


def test_running_sets_started_at_to_the_server_time_and_expires_at_follows() -> None:
    queued = JobStatus(JobState.IN_QUEUE, time_allocation=SimpleDuration(1, 0, 0))
    after = applied(queued, update(state=JobState.RUNNING))
    assert after.started_at == NOW
    assert after.expires_at == NOW + 3_600_000


def test_expires_at_is_unknown_without_an_allocation() -> None:
    after = applied(JobStatus(JobState.IN_QUEUE), update(state=JobState.RUNNING))
    assert after.expires_at is None


def test_other_states_leave_started_at_alone() -> None:
    running = JobStatus(JobState.RUNNING, started_at=5)
    assert applied(running, update(state=JobState.SUCCESS)).started_at == 5


def test_new_time_allocation_replaces_the_allocation() -> None:
    running = JobStatus(JobState.RUNNING, started_at=0, time_allocation=SimpleDuration(0, 10, 0))
    after = applied(running, update(new_time_allocation=SimpleDuration(0, 30, 0)))
    assert after.time_allocation == SimpleDuration(0, 30, 0)
    assert after.expires_at == 30 * 60_000


@pytest.mark.parametrize("state", [JobState.SUCCESS, JobState.FAILURE, JobState.SUSPENDED])
def test_allow_restart_is_accepted_with_success_failure_or_suspended(state: JobState) -> None:
    running = JobStatus(JobState.RUNNING)
    assert applied(running, update(state=state, allow_restart=True)).allow_restart


@pytest.mark.parametrize("state", [None, JobState.RUNNING, JobState.EXPIRED, JobState.IN_QUEUE])
def test_allow_restart_is_rejected_otherwise(state: JobState | None) -> None:
    decision = apply_update(
        JobStatus(JobState.RUNNING), update(state=state, allow_restart=True), NOW
    )
    assert isinstance(decision, Rejected)
    assert decision.code is UserErrorCode.INVALID_PARAMETER


def test_an_update_that_changes_nothing_is_rejected() -> None:
    decision = apply_update(JobStatus(), update(expected_state=JobState.IN_QUEUE), NOW)
    assert isinstance(decision, Rejected)


def test_an_invalid_new_time_allocation_is_rejected() -> None:
    bad = update(new_time_allocation=SimpleDuration(0, 75, 0))
    assert isinstance(apply_update(JobStatus(), bad, NOW), Rejected)
    zero = update(new_time_allocation=SimpleDuration(0, 0, 0))
    assert isinstance(apply_update(JobStatus(), zero, NOW), Rejected)


def test_provider_generated_id_and_output_folder_are_recorded() -> None:
    after = applied(JobStatus(), update(provider_generated_id="slurm-42", output_folder="/o"))
    assert (after.provider_generated_id, after.output_folder) == ("slurm-42", "/o")


def test_the_lifecycle_order_puts_active_states_first() -> None:
    ranks = sorted(JobState, key=lambda s: s.lifecycle_rank)
    assert ranks[:4] == [
        JobState.IN_QUEUE,
        JobState.RUNNING,
        JobState.CANCELING,
        JobState.SUSPENDED,
    ]
    assert set(ranks[4:]) == FINAL_STATES
