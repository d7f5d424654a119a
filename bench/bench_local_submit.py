"""Submitting 1,000 jobs to the local provider in one `submitJobs`, against the bare back end.

Both run in the same run on the same disk:

- bare: what holding 1,000 jobs durably on this host costs at the least, written straight in
  Python: one SQLite transaction that inserts a row per job (`executemany`, the same columns and
  JSON documents jobgate stores) and the job's folder with its marker file, the local
  provider's own work on taking a job;
- jobgate: one `submitJobs` with 1,000 jobs to a `jobgate serve` process (SQLite store, local
  provider running one job at a time, so the others wait for a slot and only taking them is
  measured). The call returns once every job is stored and the provider has taken it; the
  benchmark then checks that every job's folder exists.

Reported: seconds and jobs/s for each, and jobgate's throughput as a ratio of the bare loop's.

    .venv/bin/python -m bench.bench_local_submit [--jobs 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.lifted_limits import LIFTED_LIMITS_TOML
from bench.submitting import TOKEN, serving, timed_submit

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
id = "local"
kind = "local"
sandbox = "none"
max_concurrent_jobs = 1

[[providers.products]]
name = "cpu-small"
category = "cpu"
cpu = 1
memoryInGigs = 1

[[applications]]
name = "sleep"
version = "1"
command = ["sleep", "{{seconds}}"]
parameters = [{{ name = "seconds", type = "text" }}]
"""
    + LIFTED_LIMITS_TOML
)

CANCEL = """
mutation Cancel($input: JobIdsInput!) {
  cancelJobs(input: $input) { userErrors { code message } }
}
"""


def bare_loop(folder: Path, count: int) -> float:
    """One transaction of `count` job rows and `count` job folders: the floor."""
    folder.mkdir()
    db = sqlite3.connect(folder / "bare.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(
        "CREATE TABLE jobs (num INTEGER PRIMARY KEY, created_by TEXT, provider TEXT,"
        " state TEXT, created_at INTEGER, spec TEXT, status TEXT)"
    )
    started = time.perf_counter()
    now = int(time.time() * 1000)
    rows = [
        (
            "alice",
            "local",
            "IN_QUEUE",
            now,
            json.dumps({"application": {"name": "sleep", "version": "1"}, "n": n}),
            json.dumps({"state": "IN_QUEUE"}),
        )
        for n in range(count)
    ]
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO jobs (created_by, provider, state, created_at, spec, status)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("COMMIT")
    for n in range(1, count + 1):
        job_folder = folder / "jobs" / str(n)
        job_folder.mkdir(parents=True)
        (job_folder / "given").touch()
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def through_jobgate(folder: Path, count: int) -> float:
    folder.mkdir()
    with serving(folder, CONFIG.format(folder=folder)) as url:
        jobs = [
            {
                "application": {"name": "sleep", "version": "1"},
                "product": {"id": "cpu-small", "category": "cpu", "provider": "local"},
                "parameters": [{"name": "seconds", "value": {"text": "600"}}],
                "allowDuplicateJob": True,
            }
            for _ in range(count)
        ]
        elapsed, ids = timed_submit(url, jobs)
        taken = folder / "data" / "local" / "local"
        missing = [job_id for job_id in ids if not (taken / job_id).is_dir()]
        assert not missing, f"{len(missing)} jobs were not taken by the provider"
        # The one running job's supervisor outlives the gateway by design: cancel them all.
        with httpx.Client(timeout=600) as http:
            response = http.post(
                url,
                json={"query": CANCEL, "variables": {"input": {"ids": ids}}},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        assert response.json()["data"]["cancelJobs"]["userErrors"] == [], response.text
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobgate-bench-local-") as tmp:
        root = Path(tmp)
        bare, gateway = [], []
        for round_number in range(args.rounds):
            bare.append(bare_loop(root / f"bare-{round_number}", args.jobs))
            gateway.append(through_jobgate(root / f"gateway-{round_number}", args.jobs))
            print(f"round {round_number + 1}: bare {bare[-1]:.3f} s, jobgate {gateway[-1]:.3f} s")
    bare_s, gateway_s = statistics.median(bare), statistics.median(gateway)
    print(f"{args.jobs} jobs, median of {args.rounds} rounds:")
    print(f"  bare back end:         {bare_s:6.3f} s  {args.jobs / bare_s:8.1f} jobs/s")
    print(f"  jobgate submitJobs:    {gateway_s:6.3f} s  {args.jobs / gateway_s:8.1f} jobs/s")
    print(f"  throughput ratio (jobgate / bare): {bare_s / gateway_s:.2f}")


if __name__ == "__main__":
    main()
