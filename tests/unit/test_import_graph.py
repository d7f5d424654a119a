"""What each program loads: an agent on a cluster's login node needs only its client side."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

GATEWAY_ONLY = ("pymongo", "aiosqlite", "strawberry", "starlette", "uvicorn", "graphql", "redis")
GATEWAY_MODULES = ("jobgate.storage", "jobgate.schema", "jobgate.app", "jobgate.wiring")


def loaded_after(code: str) -> list[str]:
    """The modules loaded by a fresh interpreter after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    modules: list[str] = json.loads(output.splitlines()[-1])
    return modules


@pytest.mark.parametrize(
    "code",
    [
        "import jobgate.agent.runner",
        "import jobgate.cli",
        # The agent's whole start, short of connecting: settings, adapter and client.
        "from jobgate.cli import _parser\n"
        "import jobgate.agent.runner, jobgate.agent.settings, jobgate.agent.client",
    ],
)
def test_the_agent_loads_none_of_the_gateway(code: str) -> None:
    modules = loaded_after(code)
    offending = [
        name
        for name in modules
        if name.split(".")[0] in GATEWAY_ONLY
        or any(name == m or name.startswith(m + ".") for m in GATEWAY_MODULES)
    ]
    assert offending == []


def test_the_probe_sees_what_the_gateway_loads() -> None:
    # The same probe on the gateway finds them: the test above could fail.
    modules = loaded_after("import jobgate.app")
    assert "pymongo" in modules
    assert "strawberry" in modules
