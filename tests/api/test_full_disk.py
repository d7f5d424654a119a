"""A full disk under the job folders: the local provider does not launch, says why, and leaves
no process running untracked (a real tmpfs, filled up)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.documents import job_spec, submit, wait_for_state
from tests.gateway import ALICE, gateway_settings, running_gateway

SECONDS = 4242  # a number no other test sleeps for: its processes can be found by it


MOUNT, UMOUNT = (
    shutil.which("mount") or "/usr/bin/mount",
    shutil.which("umount") or "/usr/bin/umount",
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of its own."""
    assert os.geteuid() == 0, "the test command runs as root: it mounts a tmpfs"
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run([MOUNT, "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run([UMOUNT, "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    """Write until the disk is full to the last byte."""
    descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 512, 1):  # smaller and smaller, to the last byte
            try:
                while True:
                    os.write(descriptor, b"x" * size)
            except OSError:
                pass
    finally:
        os.close(descriptor)


def sleeping_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdecimal():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", str(SECONDS).encode()]:
                found.append(int(entry.name))
    return found


async def test_a_job_on_a_full_disk_fails_with_the_cause_and_nothing_runs(
    tmp_path: Path, small_disk: Path
) -> None:
    settings = gateway_settings(small_disk, f"sqlite://{tmp_path}/jobgate.db")
    async with running_gateway(settings) as gateway:
        fill(small_disk)  # the disk fills up while the gateway runs
        alice = gateway.client(ALICE)
        (job_id,) = await submit(alice, job_spec("sleep", seconds=SECONDS))
        job = await wait_for_state(alice, job_id, "FAILURE", "SUCCESS")
    assert job["status"]["state"] == "FAILURE"
    assert "No space left on device" in job["updates"][-1]["status"]
    assert "RUNNING" not in [u["state"] for u in job["updates"]]
    assert sleeping_processes() == []
