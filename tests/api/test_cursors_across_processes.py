"""A `jobs` cursor issued by one gateway process is honoured by another: a replica, or the same
gateway after a restart, whatever Python's hash seed."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.api.documents import JOBS, job_spec, submit, wait_for_state
from tests.processes import ServeProcess, write_config


async def test_a_filtered_cursor_works_in_a_process_with_another_hash_seed(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path / "jobgate.toml",
        data_dir=tmp_path / "data",
        storage=f"sqlite://{tmp_path}/jobgate.db",
    )
    serve = ServeProcess(config)
    job_filter = {"states": ["SUCCESS", "FAILURE", "EXPIRED"]}
    try:
        alice = serve.start(env={"PYTHONHASHSEED": "1"})
        ids = await submit(alice, *[job_spec(message=f"job {n}") for n in range(3)])
        for job_id in ids:
            await wait_for_state(alice, job_id, "SUCCESS")
        first = await alice.execute(JOBS, {"filter": job_filter, "first": 1})
        cursor = first["jobs"]["pageInfo"]["endCursor"]

        serve.stop()
        alice = serve.start(env={"PYTHONHASHSEED": "2"})
        rest = await alice.execute(JOBS, {"filter": job_filter, "first": 10, "after": cursor})
    finally:
        serve.stop(signal.SIGKILL)

    seen = [first["jobs"]["nodes"][0]["id"]] + [n["id"] for n in rest["jobs"]["nodes"]]
    assert seen == sorted(ids, key=int, reverse=True)
