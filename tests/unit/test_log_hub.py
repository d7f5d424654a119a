"""The log hub's bounds: a bounded tail per job, a bounded number of jobs, no silent loss."""

from __future__ import annotations

import pytest

from jobgate.events.logs import JobLogHub, LogLagging


async def test_a_watcher_that_falls_out_of_the_tail_is_told() -> None:
    hub = JobLogHub(tail_lines=3)
    hub.open("1")
    for n in range(3):
        hub.append("1", 0, "stdout", str(n))
    lines = hub.follow("1")
    assert (await anext(lines)).stdout == "0"
    for n in range(3, 10):  # the watcher reads nothing while seven more lines come
        hub.append("1", 0, "stdout", str(n))
    assert [(await anext(lines)).stdout for _ in range(2)] == ["1", "2"]
    with pytest.raises(LogLagging):
        await anext(lines)


async def test_closed_logs_beyond_the_limit_are_forgotten_oldest_first() -> None:
    hub = JobLogHub(max_jobs=2)
    for job_id in ("1", "2", "3"):
        hub.open(job_id)
        hub.append(job_id, 0, "stderr", "x")
    hub.close("2")
    hub.close("1")
    hub.close("3")
    assert [hub.knows(j) for j in ("1", "2", "3")] == [True, False, True]


async def test_a_closed_log_streams_what_it_kept_and_ends() -> None:
    hub = JobLogHub()
    hub.open("7")
    hub.append("7", 1, "stdout", "a")
    hub.append("7", 1, "stderr", "b")
    hub.close("7")
    lines = [line async for line in hub.follow("7")]
    assert [(x.seq, x.rank, x.channel, x.stdout, x.stderr) for x in lines] == [
        (1, 1, "stdout", "a", None),
        (2, 1, "stderr", None, "b"),
    ]
