"""Benchmark: interactive sessions through the gateway against straight to the job.

`jobgate serve` (sessions enabled) runs three jobs of the same small web app (the session
tests' standard-library server): one on the host's network, reached straight on its port and
through the gateway's WEB proxy; one sandboxed, reached through the proxy and the bridge in its
sandbox; one of a remote provider, sandboxed by its agent (`jobgate agent`, on this host), which
relays the session.
One client on the same machine measures, in one run:

- a small page: requests per second and p99 latency, `--concurrency` requests at a time;
- a 100 MB download: MB/s;
- a terminal keystroke's round trip (a key sent, its echo back): straight to the bridge's
  terminal socket, through the gateway's terminal WebSocket, and relayed by the agent.

Reported as figures and as ratios against the straight path measured in the same run.

    .venv/bin/python -m bench.bench_sessions [--requests 2000] [--megabytes 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench.lifted_limits import LIFTED_LIMITS_TOML
from jobgate.sessions.bridge import DATA, FRAME
from tests.agent.setup import EDGE, AgentProcess, write_agent_config
from tests.processes import ServeProcess, write_config
from tests.sessions.test_web_sessions_in_chromium import JOB_SERVER, OPEN

APPS = f"""
[sessions]
enabled = true

[[providers.products]]
name = "host-network"
category = "cpu"
network = true
support = {{ web = true }}

[[providers.products]]
name = "sandboxed"
category = "cpu"
support = {{ web = true, terminal = true }}

[[applications]]
name = "web"
version = "1"
command = ["python3", "-c", {json.dumps(JOB_SERVER)}, "{{port}}"]
interactive = {{ web = true }}

# A remote provider: its agent (a process of its own, on this host) relays its jobs' sessions.
[[providers]]
id = "edge"
kind = "remote"
token = "{EDGE}"

[[providers.products]]
name = "relayed"
category = "cpu"
support = {{ web = true, terminal = true }}
"""
TOKEN = "alice-secret"
SUBMIT = """
mutation($product: String!, $provider: String!) {
  submitJobs(input: {jobs: [{application: {name: "web", version: "1"},
    product: {id: $product, category: "cpu", provider: $provider}, parameters: []}]}) {
    jobs { id }
  }
}
"""
STATE = "query($id: ID!) { job(id: $id) { status { state } } }"
CANCEL = "mutation($ids: [ID!]!) { cancelJobs(input: {ids: $ids}) { jobs { id } } }"


class Api:
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client, self.url = client, url

    async def call(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(
            self.url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        data: dict[str, Any] = response.json()["data"]
        return data

    async def running_job(self, product: str, provider: str = "local") -> str:
        variables = {"product": product, "provider": provider}
        job_id: str = (await self.call(SUBMIT, variables))["submitJobs"]["jobs"][0]["id"]
        for _ in range(600):  # a remote one waits for its agent to connect
            state = (await self.call(STATE, {"id": job_id}))["job"]["status"]["state"]
            if state == "RUNNING":
                return job_id
            await asyncio.sleep(0.05)
        raise RuntimeError(f"job {job_id} did not start")

    async def session(self, job_id: str, kind: str) -> tuple[str, str]:
        """(the session's folder URL, its cookie), as a browser has them after the first use."""
        sessions = {"sessions": [{"jobId": job_id, "rank": 0, "type": kind}]}
        data = await self.call(OPEN, {"input": sessions})
        url: str = data["openInteractiveSessions"]["sessions"][0]["url"]
        first = await self.client.get(url)
        return url.split("?")[0], first.headers["set-cookie"].split(";")[0]


async def until_served(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    for _ in range(200):
        if (await client.get(url, headers=headers)).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} is not served")


async def small_pages(
    url: str, headers: dict[str, str], requests: int, concurrency: int
) -> tuple[float, float]:
    """(requests per second, p99 in ms) for GET `url`, `concurrency` at a time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        for _ in range(50):  # warm-up: connections and pools
            (await client.get(url, headers=headers)).raise_for_status()
        latencies: list[float] = []
        queue = iter(range(requests))

        async def worker() -> None:
            for _ in queue:
                started = time.perf_counter()
                response = await client.get(url, headers=headers)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    return requests / seconds, p99


async def download(url: str, headers: dict[str, str]) -> float:
    """MB/s for one GET of `url`, read as it streams."""
    async with httpx.AsyncClient(timeout=120) as client:
        started = time.perf_counter()
        size = 0
        async with client.stream("GET", url, headers=headers) as response:
            response.raise_for_status()
            async for chunk in response.aiter_raw():
                size += len(chunk)
        return size / 1e6 / (time.perf_counter() - started)


async def keystrokes_straight(socket_path: Path, rounds: int) -> float:
    """Median round trip (ms) of one key to the bridge's terminal and its echo back."""
    reader, writer = await asyncio.open_unix_connection(socket_path)
    times = []
    try:
        await asyncio.sleep(0.5)  # the shell's prompt
        await _drain(reader)
        for _ in range(rounds):
            started = time.perf_counter()
            writer.write(FRAME.pack(DATA, 1) + b"x")
            await writer.drain()
            await _read_frame(reader)
            times.append(time.perf_counter() - started)
    finally:
        writer.close()
    return statistics.median(times) * 1000


async def keystrokes_through(url: str, cookie: str, rounds: int) -> float:
    """The same, through the gateway's terminal WebSocket."""
    times = []
    async with connect(url, additional_headers={"Cookie": cookie}) as socket:
        await asyncio.sleep(0.5)
        while True:  # the prompt
            try:
                async with asyncio.timeout(0.3):
                    await socket.recv()
            except TimeoutError:
                break
        for _ in range(rounds):
            started = time.perf_counter()
            await socket.send(b"x")
            await socket.recv()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def _drain(reader: asyncio.StreamReader) -> None:
    while True:
        try:
            async with asyncio.timeout(0.3):
                await _read_frame(reader)
        except TimeoutError:
            return


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    _kind, size = FRAME.unpack(await reader.readexactly(FRAME.size))
    return await reader.readexactly(size)


async def run(requests: int, concurrency: int, megabytes: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = write_config(
            Path(folder) / "jobgate.toml",
            data_dir=Path(folder) / "data",
            storage="",
            extra=APPS + "\n" + LIFTED_LIMITS_TOML,
        )
        gateway = ServeProcess(config)
        try:
            gateway.start()
        except TimeoutError:
            print(gateway.output()[-3000:])
            raise
        agent = AgentProcess(write_agent_config(Path(folder), "local"), gateway.url)
        agent.start()
        started: list[str] = []
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                api = Api(client, gateway.url)
                host_job = await api.running_job("host-network")
                boxed_job = await api.running_job("sandboxed")
                relayed_job = await api.running_job("relayed", "edge")
                started += [host_job, boxed_job, relayed_job]
                launch = json.loads(
                    (Path(folder) / "data/local/local" / host_job / "launch.json").read_text()
                )
                straight = f"http://127.0.0.1:{launch['interactive']['ports'][0]}/"
                host_url, host_cookie = await api.session(host_job, "WEB")
                boxed_url, boxed_cookie = await api.session(boxed_job, "WEB")
                terminal_url, terminal_cookie = await api.session(boxed_job, "TERMINAL")
                relayed_url, relayed_cookie = await api.session(relayed_job, "WEB")
                relayed_terminal, relayed_terminal_cookie = await api.session(
                    relayed_job, "TERMINAL"
                )
                await until_served(client, straight, {})
                await until_served(client, host_url, {"Cookie": host_cookie})
                await until_served(client, boxed_url, {"Cookie": boxed_cookie})
                await until_served(client, relayed_url, {"Cookie": relayed_cookie})

            paths = {
                "straight to the job": (straight, {}),
                "gateway proxy": (host_url, {"Cookie": host_cookie}),
                "gateway proxy + bridge": (boxed_url, {"Cookie": boxed_cookie}),
                "relayed by the agent": (relayed_url, {"Cookie": relayed_cookie}),
            }
            print(f"small page, {requests} requests, {concurrency} at a time:")
            base_rps = 0.0
            for name, (url, headers) in paths.items():
                rps, p99 = await small_pages(url, headers, requests, concurrency)
                base_rps = base_rps or rps
                print(
                    f"  {name:24} {rps:8.0f} req/s  p99 {p99:6.1f} ms  ratio {rps / base_rps:.3f}"
                )
            print(f"download of {megabytes} MB:")
            base_rate = 0.0
            for name, (url, headers) in paths.items():
                rate = await download(f"{url}bytes/{megabytes * 1_000_000}", headers)
                base_rate = base_rate or rate
                print(f"  {name:24} {rate:8.0f} MB/s  ratio {rate / base_rate:.3f}")
            socket_path = (
                Path(folder) / "data/local/local" / boxed_job / "work/interactive/terminal-0.sock"
            )
            straight_ms = await keystrokes_straight(socket_path, rounds)
            ws_url = terminal_url.replace("http://", "ws://") + "socket"
            through_ms = await keystrokes_through(ws_url, terminal_cookie, rounds)
            relayed_ws = relayed_terminal.replace("http://", "ws://") + "socket"
            relayed_ms = await keystrokes_through(relayed_ws, relayed_terminal_cookie, rounds)
            print(f"terminal keystroke round trip (median of {rounds}):")
            print(f"  straight to the bridge   {straight_ms:6.2f} ms")
            for name, ms in (
                ("through the gateway", through_ms),
                ("relayed by the agent", relayed_ms),
            ):
                print(
                    f"  {name:24} {ms:6.2f} ms  "
                    f"(+{ms - straight_ms:.2f} ms, ratio {ms / straight_ms:.2f})"
                )
        except httpx.HTTPStatusError:
            noted = [line for line in gateway.output().splitlines() if "session" in line]
            print("\n".join(noted[-10:]))
            raise
        finally:
            # Jobs outlive their gateway (by design): ended here, or they would serve on.
            async with httpx.AsyncClient(timeout=30) as client:
                await Api(client, gateway.url).call(CANCEL, {"ids": started})
            await asyncio.sleep(3)  # the agent's job too, before the agent goes
            agent.stop()
            gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(run(options.requests, options.concurrency, options.megabytes, options.rounds))


if __name__ == "__main__":
    main()
