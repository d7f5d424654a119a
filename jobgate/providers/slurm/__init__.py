"""The `slurm` provider adapter: jobs as Slurm batch jobs, driven through Slurm's commands."""

from jobgate.providers.slurm.adapter import SlurmProvider

__all__ = ["SlurmProvider"]
