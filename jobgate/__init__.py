"""jobgate: one GraphQL API for running compute jobs on local, Slurm and remote providers."""

__version__ = "0.1.0"
