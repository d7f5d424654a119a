"""Submitting 1,000 jobs to the Slurm provider in one `submitJobs`, against a bare sbatch loop.

Both run in the same run against the same single-node Slurm (started here, as the tests do) and
submit to a partition that is down, so jobs stay PENDING and only submission is measured:

- bare: 1,000 sequential `sbatch --parsable` calls of a trivial script, from Python;
- jobgate: one `submitJobs` with 1,000 jobs to a `jobgate serve` process (SQLite store) whose
  `slurm` provider submits to that partition. The call returns once every job is stored and
  sbatch has accepted it; the benchmark checks that Slurm then holds all 1,000.

Reported: seconds and jobs/s for each, and jobgate's throughput as a ratio of the bare loop's
(target: at least 0.5).

    .venv/bin/python -m bench.bench_slurm_submit [--jobs 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.lifted_limits import LIFTED_LIMITS_TOML
from bench.submitting import serving, timed_submit
from tests.servers import SlurmCluster

HELD = "PartitionName=held Nodes=localhost MaxTime=INFINITE State=DOWN"

CONFIG = (
    """
[server]
data_dir = "{folder}/data"

[storage]
url = "sqlite://{folder}/jobgate.db"

[[users]]
username = "alice"
token = "alice-secret"

[[providers]]
id = "hpc"
kind = "slurm"
token = "hpc-secret"
partition = "held"
poll_interval_seconds = 5
submit_concurrency = {concurrency}

[[providers.products]]
name = "hpc-cpu"
category = "cpu"
cpu = 1
memoryInGigs = 1

[[applications]]
name = "echo"
version = "1"
command = ["echo", "{{message}}"]
parameters = [{{ name = "message", type = "text" }}]
"""
    + LIFTED_LIMITS_TOML
)


def pending_in(cluster: SlurmCluster, partition: str) -> int:
    return len(cluster.run("squeue", "-h", "-p", partition, "-t", "PD", "-o", "%i").split())


def bare_loop(cluster: SlurmCluster, folder: Path, count: int) -> float:
    script = folder / "bare.sh"
    script.write_text("#!/bin/bash\n#SBATCH --output=/dev/null\necho hello\n")
    started = time.perf_counter()
    for _ in range(count):
        cluster.run("sbatch", "--parsable", "-p", "held", str(script))
    return time.perf_counter() - started


def through_jobgate(cluster: SlurmCluster, folder: Path, count: int, concurrency: int) -> float:
    config = CONFIG.format(folder=folder, concurrency=concurrency)
    with serving(folder, config, env={"SLURM_CONF": str(cluster.conf)}) as url:
        jobs = [
            {
                "application": {"name": "echo", "version": "1"},
                "product": {"id": "hpc-cpu", "category": "cpu", "provider": "hpc"},
                "parameters": [{"name": "message", "value": {"text": f"job {n}"}}],
                "allowDuplicateJob": True,
            }
            for n in range(count)
        ]
        elapsed, _ids = timed_submit(url, jobs)
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="submit_concurrency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobgate-bench-slurm-") as tmp:
        root = Path(tmp)
        cluster = SlurmCluster(root / "slurm", extra_conf=HELD).start()
        try:
            bare, gateway = [], []
            for round_number in range(args.rounds):
                bare.append(bare_loop(cluster, root, args.jobs))
                assert pending_in(cluster, "held") == args.jobs
                cluster.cancel_all()
                folder = root / f"gateway-{round_number}"
                folder.mkdir()
                gateway.append(through_jobgate(cluster, folder, args.jobs, args.concurrency))
                assert pending_in(cluster, "held") == args.jobs, "not every job reached Slurm"
                cluster.cancel_all()
                print(
                    f"round {round_number + 1}: bare {bare[-1]:.2f} s, jobgate {gateway[-1]:.2f} s"
                )
        finally:
            cluster.stop()
    bare_s, gateway_s = statistics.median(bare), statistics.median(gateway)
    print(f"{args.jobs} jobs, median of {args.rounds} rounds:")
    print(f"  bare sbatch loop:      {bare_s:6.2f} s  {args.jobs / bare_s:7.1f} jobs/s")
    print(f"  jobgate submitJobs:    {gateway_s:6.2f} s  {args.jobs / gateway_s:7.1f} jobs/s")
    print(f"  throughput ratio (jobgate / bare): {bare_s / gateway_s:.2f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
