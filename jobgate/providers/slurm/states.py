"""Slurm's job states translated into JobState, the way UCloud's Slurm integration does.

A program's own non-zero exit is still SUCCESS, with the exit code in the status message; FAILURE
is for the infrastructure (a node or its boot failed, the job could not be launched).
"""

from __future__ import annotations

from dataclasses import dataclass

from jobgate.domain.states import JobState

QUEUED = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "RESV_DEL_HOLD",
        "SPECIAL_EXIT",
    }
)
RUNNING = frozenset({"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"})
SUSPENDED = frozenset({"SUSPENDED", "STOPPED"})
# Reasons Slurm gives when it could not start the batch script at all.
LAUNCH_FAILURES = frozenset({"JobLaunchFailure", "launch_failed_requeued_held", "BadConstraints"})


@dataclass(frozen=True, slots=True)
class ExitCode:
    """Slurm's `ExitCode=<code>:<signal>`."""

    code: int
    signal: int

    @classmethod
    def parse(cls, text: str | None) -> ExitCode | None:
        if not text or ":" not in text:
            return None
        code, _, signal = text.partition(":")
        try:
            return cls(int(code), int(signal))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Translation:
    state: JobState
    status: str


def translate(
    slurm_state: str, reason: str | None = None, exit_code: ExitCode | None = None
) -> Translation:
    """The JobState and status message for a Slurm state (as squeue/scontrol/sacct print it)."""
    # sacct prints "CANCELLED by 0"; scontrol may add flags after a '+'.
    state = slurm_state.split()[0].split("+")[0].upper() if slurm_state.strip() else "UNKNOWN"
    if state in QUEUED:
        why = f" ({reason})" if reason and reason not in ("None", "(null)") else ""
        return Translation(JobState.IN_QUEUE, f"Waiting in Slurm's queue{why}")
    if state in RUNNING:
        return Translation(JobState.RUNNING, "Running on Slurm")
    if state in SUSPENDED:
        return Translation(JobState.SUSPENDED, "Suspended by Slurm")
    if state == "COMPLETED":
        return Translation(JobState.SUCCESS, "The program exited with code 0")
    if state == "FAILED":
        if reason in LAUNCH_FAILURES:
            return Translation(JobState.FAILURE, f"Slurm could not launch the job ({reason})")
        if exit_code is not None and exit_code.signal and not exit_code.code:
            return Translation(
                JobState.SUCCESS, f"The program was ended by signal {exit_code.signal}"
            )
        code = "unknown" if exit_code is None else str(exit_code.code)
        return Translation(JobState.SUCCESS, f"The program exited with code {code}")
    if state == "CANCELLED":
        return Translation(JobState.SUCCESS, "The job was cancelled")
    if state in ("TIMEOUT", "DEADLINE"):
        return Translation(JobState.EXPIRED, "The job's time allocation ran out")
    if state == "OUT_OF_MEMORY":
        return Translation(JobState.SUCCESS, "The program ran out of memory")
    if state == "NODE_FAIL":
        return Translation(JobState.FAILURE, "A node of the job failed")
    if state == "BOOT_FAIL":
        return Translation(JobState.FAILURE, "A node of the job failed to boot")
    if state == "PREEMPTED":
        return Translation(JobState.FAILURE, "Slurm preempted the job")
    return Translation(JobState.FAILURE, f"Slurm reports the job as {state}")
