"""`SubscriberClient`: the Go client that holds the subscriptions, driven over its stdin.

Built from `go/client` (Go is on these machines; `go build` caches, so only the first run
compiles). One line per command, one line per answer (see `go/client/main.go`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

GO_MODULE = Path(__file__).parent / "go"
BUILT = Path(tempfile.gettempdir()) / "jobgate-bench-fanout"


def tool(name: str) -> str:
    """The full path of a program this benchmark needs (Go, Node.js, npm)."""
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"the fan-out benchmark needs `{name}` on PATH")
    return found


def go_binary(command: str) -> Path:
    """`go/<command>` built (again, if its source changed) into a temporary folder."""
    BUILT.mkdir(exist_ok=True)
    target = BUILT / command
    subprocess.run(
        [tool("go"), "build", "-o", str(target), f"./{command}"], cwd=GO_MODULE, check=True
    )
    return target


@dataclass(frozen=True)
class Trigger:
    """The request that makes a server broadcast one message; `{n}` in `body` is the round."""

    url: str
    method: str = "GET"
    body: str = ""
    authorization: str = ""


@dataclass(frozen=True)
class Latencies:
    """One round: when the first, the median, the 99th percentile and the last subscriber had
    the message, in ms after the trigger was sent."""

    first: float
    p50: float
    p99: float
    last: float


class SubscriberClient:
    """Subscriptions to `ws_url`, each sending `token` (`{i}`: the subscriber's index) and the
    document `query`."""

    def __init__(self, ws_url: str, token: str, query: str, trigger: Trigger) -> None:
        command = [
            str(go_binary("client")),
            f"-url={ws_url}",
            f"-token={token}",
            f"-query={query}",
            f"-trigger-url={trigger.url}",
            f"-trigger-method={trigger.method}",
            f"-trigger-body={trigger.body}",
            f"-trigger-auth={trigger.authorization}",
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.count = 0

    def _ask(self, line: str) -> str:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline().rstrip("\n")
        if not answer or answer.startswith("error "):
            raise RuntimeError(f"the client, asked {line!r}: {answer or 'no answer'}")
        return answer

    def connect(self, count: int) -> None:
        """Open `count` more subscriptions, each acknowledged."""
        self.count = int(self._ask(f"connect {count}").split()[1])

    def round(self, n: int) -> Latencies:
        """Trigger broadcast `n` and wait until every subscriber has it."""
        return Latencies(**json.loads(self._ask(f"round {n}")))

    def sample(self) -> str:
        """The last `next` message the first subscriber received."""
        return self._ask("sample")

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write("quit\n")
        self._process.stdin.flush()
        self._process.wait(60)
