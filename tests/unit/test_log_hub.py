"""The log hub's bounds: a bounded tail per job, a bounded number of jobs, no silent loss."""

from __future__ import annotations

import asyncio

import pytest

from jobgate.events.logs import LINE_OVERHEAD_BYTES, JobLogHub, LogLagging


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


async def test_every_follower_gets_every_line_as_it_comes_even_a_slow_one() -> None:
    hub = JobLogHub()
    hub.open("1")
    received: dict[str, list[int]] = {"slow": [], "fast": []}
    slow_has_both = asyncio.Event()

    async def follow(name: str, pause: float) -> None:
        async for line in hub.follow("1"):
            received[name].append(line.seq)
            if received["slow"] == [1, 2]:
                slow_has_both.set()
            await asyncio.sleep(pause)  # sending the line to a slow client

    followers = [
        asyncio.ensure_future(follow("slow", 0.3)),
        asyncio.ensure_future(follow("fast", 0.0)),
    ]
    hub.append("1", 0, "stdout", "one")
    await asyncio.sleep(0.1)
    hub.append("1", 0, "stdout", "two")  # while the slow follower is still sending "one"
    async with asyncio.timeout(3):  # long before the job ends
        await slow_has_both.wait()
    assert received["fast"] == [1, 2]
    hub.close("1")
    await asyncio.gather(*followers)


def kept(hub: JobLogHub, job_id: str) -> list[str]:
    return [line.stdout or "" for line in hub._logs[job_id].tail]


async def test_a_job_keeps_at_most_tail_bytes_of_its_newest_lines() -> None:
    line = LINE_OVERHEAD_BYTES + 100
    hub = JobLogHub(tail_bytes=3 * line)
    hub.open("1")
    for n in range(10):
        hub.append("1", 0, "stdout", f"{n}" * 100)
    assert kept(hub, "1") == ["7" * 100, "8" * 100, "9" * 100]
    assert hub.size == 3 * line
    # Multi-byte text counts its UTF-8 bytes, and one line is always kept.
    hub.append("1", 0, "stdout", "é" * 400)
    assert kept(hub, "1") == ["é" * 400]
    assert hub.size == LINE_OVERHEAD_BYTES + 800


async def test_past_total_bytes_finished_jobs_go_first_then_the_writers_oldest_lines() -> None:
    line = LINE_OVERHEAD_BYTES + 100
    hub = JobLogHub(total_bytes=4 * line)
    for job_id in ("done", "running"):
        hub.open(job_id)
        hub.append(job_id, 0, "stdout", "a" * 100)
    hub.close("done")
    for _ in range(3):
        hub.append("running", 0, "stdout", "b" * 100)
    assert not hub.knows("done")  # the finished job's tail made room first
    assert hub.size == 4 * line
    hub.append("running", 0, "stdout", "c" * 100)
    assert kept(hub, "running") == ["b" * 100] * 3 + ["c" * 100]
    assert hub.size == 4 * line
