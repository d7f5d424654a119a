"""The batch script a job becomes: `#SBATCH` options, then one `srun` of the application.
Each task learns its rank from Slurm's `SLURM_PROCID`.

Every piece of user text (the job's name, each argument) is quoted with `shlex.quote`, so the
shell that runs the script sees it as one literal word. `srun` starts one task per replica and
writes each rank's output to its own files, `stdout-<rank>.log` and `stderr-<rank>.log`.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jobgate.domain.catalog import Product
from jobgate.domain.job import Job
from jobgate.domain.values import SimpleDuration
from jobgate.providers.sandbox import JOB_PATH

# Slurm job names are shown in squeue's fixed-width columns; keep them plain and short.
_UNSAFE_NAME = re.compile(r"[^\w.-]+")


@dataclass(frozen=True, slots=True)
class ScriptOptions:
    """Where a provider sends its jobs."""

    partition: str | None = None
    account: str | None = None


def comment_for(provider_id: str, job_id: str) -> str:
    """The `--comment` that ties a Slurm job to its jobgate job, found again after a crash."""
    return f"jobgate:{provider_id}:{job_id}"


def time_limit_minutes(duration: SimpleDuration) -> int:
    """Slurm counts time limits in whole minutes: round up, at least one."""
    return max(1, math.ceil(duration.total_seconds / 60))


def job_name(job: Job) -> str:
    name = _UNSAFE_NAME.sub("-", job.specification.name or "")[:64].strip("-")
    return name or f"jobgate-{job.id}"


def batch_script(
    job: Job,
    argv: Sequence[str],
    workdir: Path,
    workspace: Path,
    product: Product | None,
    provider_id: str,
    options: ScriptOptions,
) -> str:
    """The whole script for `sbatch --parsable`.

    The job starts from sbatch's environment, which is clean (`commands.slurm_environment`):
    nothing of the gateway's own (its tokens) reaches it; PATH, HOME (the workspace) and LANG
    are set here.
    """
    spec = job.specification
    lines = [
        "#!/bin/bash",
        f"# jobgate job {job.id}, generated; the application's arguments are quoted literals.",
        f"#SBATCH --job-name={shlex.quote(job_name(job))}",
        f"#SBATCH --comment={comment_for(provider_id, job.id)}",
        f"#SBATCH --chdir={shlex.quote(str(workdir))}",
        f"#SBATCH --output={shlex.quote(str(workdir / 'batch.out'))}",
        f"#SBATCH --error={shlex.quote(str(workdir / 'batch.err'))}",
        f"#SBATCH --ntasks={spec.replicas}",
    ]
    if options.partition:
        lines.append(f"#SBATCH --partition={shlex.quote(options.partition)}")
    if options.account:
        lines.append(f"#SBATCH --account={shlex.quote(options.account)}")
    if spec.time_allocation is not None:
        lines.append(f"#SBATCH --time={time_limit_minutes(spec.time_allocation)}")
    if product is not None and product.cpu:
        lines.append(f"#SBATCH --cpus-per-task={product.cpu}")
    if product is not None and product.memory_in_gigs:
        lines.append(f"#SBATCH --mem-per-cpu={_memory_per_cpu(product)}M")
    if product is not None and product.gpu:
        lines.append(f"#SBATCH --gpus-per-task={product.gpu}")
    lines += [
        "",
        f"export PATH={shlex.quote(JOB_PATH)} LANG=C.UTF-8 HOME={shlex.quote(str(workspace))}",
        f"export JOBGATE_JOB_ID={shlex.quote(job.id)}",
        f"export JOBGATE_REPLICAS={spec.replicas}",
        f"export JOBGATE_WORKSPACE={shlex.quote(str(workspace))}",
        "exec srun --kill-on-bad-exit=0 --output=stdout-%t.log --error=stderr-%t.log \\",
        "    " + " ".join(shlex.quote(argument) for argument in argv),
        "",
    ]
    return "\n".join(lines)


def _memory_per_cpu(product: Product) -> int:
    memory_mb = (product.memory_in_gigs or 0) * 1024
    return max(1, memory_mb // max(1, product.cpu or 1))
