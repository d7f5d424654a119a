"""Slurm states and batch scripts, without a cluster."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from jobgate.domain.catalog import Product
from jobgate.domain.job import Job, JobSpecification, JobStatus
from jobgate.domain.states import JobState
from jobgate.domain.values import NameAndVersion, ProductReference, ResourceOwner, SimpleDuration
from jobgate.providers.slurm.script import ScriptOptions, batch_script, time_limit_minutes
from jobgate.providers.slurm.states import ExitCode, translate


@pytest.mark.parametrize(
    ("slurm_state", "reason", "exit_code", "state", "status"),
    [
        ("PENDING", "Priority", None, JobState.IN_QUEUE, "Waiting in Slurm's queue (Priority)"),
        ("RUNNING", "None", None, JobState.RUNNING, "Running on Slurm"),
        ("COMPLETING", "None", None, JobState.RUNNING, "Running on Slurm"),
        ("COMPLETED", "None", "0:0", JobState.SUCCESS, "The program exited with code 0"),
        ("FAILED", "NonZeroExitCode", "3:0", JobState.SUCCESS, "The program exited with code 3"),
        (
            "FAILED",
            "JobLaunchFailure",
            "0:9",
            JobState.FAILURE,
            "Slurm could not launch the job (JobLaunchFailure)",
        ),
        ("CANCELLED", "None", "0:15", JobState.SUCCESS, "The job was cancelled"),
        ("CANCELLED by 0", None, "0:0", JobState.SUCCESS, "The job was cancelled"),
        ("TIMEOUT", "TimeLimit", "0:0", JobState.EXPIRED, "The job's time allocation ran out"),
        ("NODE_FAIL", None, None, JobState.FAILURE, "A node of the job failed"),
        ("BOOT_FAIL", None, None, JobState.FAILURE, "A node of the job failed to boot"),
        ("SUSPENDED", None, None, JobState.SUSPENDED, "Suspended by Slurm"),
    ],
)
def test_slurm_states_map_onto_job_states_the_ucloud_way(
    slurm_state: str, reason: str | None, exit_code: str | None, state: JobState, status: str
) -> None:
    translation = translate(slurm_state, reason, ExitCode.parse(exit_code))
    assert (translation.state, translation.status) == (state, status)


def test_time_limits_are_whole_minutes_rounded_up() -> None:
    assert time_limit_minutes(SimpleDuration(seconds=1)) == 1
    assert time_limit_minutes(SimpleDuration(minutes=1)) == 1
    assert time_limit_minutes(SimpleDuration(minutes=1, seconds=1)) == 2
    assert time_limit_minutes(SimpleDuration(hours=2)) == 120


def test_the_script_quotes_every_argument_and_the_name() -> None:
    job = Job(
        id="42",
        owner=ResourceOwner("alice", None),
        specification=JobSpecification(
            NameAndVersion("echo", "1"),
            ProductReference("hpc-cpu", "cpu", "hpc"),
            name="x; rm -rf /",
            replicas=3,
            time_allocation=SimpleDuration(minutes=90),
        ),
        status=JobStatus(),
        created_at=0,
    )
    product = Product("hpc-cpu", "cpu", "hpc", cpu=2, memory_in_gigs=4)
    argv = ["echo", "$(touch pwned)", "it's"]
    script = batch_script(
        job, argv, Path("/w/42"), Path("/home/ada"), product, "hpc", ScriptOptions("debug", "a")
    )
    lines = script.splitlines()
    assert "#SBATCH --job-name=x-rm--rf" in lines
    assert "#SBATCH --ntasks=3" in lines
    assert "#SBATCH --time=90" in lines
    assert "#SBATCH --cpus-per-task=2" in lines
    assert "#SBATCH --mem-per-cpu=2048M" in lines
    assert "#SBATCH --partition=debug" in lines
    assert "#SBATCH --account=a" in lines
    assert "#SBATCH --comment=jobgate:hpc:42" in lines
    srun = next(n for n, line in enumerate(lines) if line.startswith("exec srun"))
    command = lines[srun + 1]
    assert shlex.split(command) == argv
