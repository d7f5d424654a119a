"""The embedded setup that `jobgate serve` runs without a config file: a demo user, the local
provider with three products (one with web and terminal sessions) and a small catalog of
applications."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from jobgate.settings import Settings

DEMO_USER = "demo"
DEMO_PROJECT = "demo-project"


TOKEN_FILE = "demo-token"  # noqa: S105 (a file name, not a secret)


def demo_token(data_dir: Path) -> str:
    """The demo user's token, kept in the data folder: the same across restarts, so a browser
    that remembers it keeps working. Made on first use, readable by this account alone."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token
    token = secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return token


def demo_settings(token: str | None = None) -> Settings:
    """Settings for a first look; a fresh random token unless one is given."""
    data: dict[str, Any] = {
        "users": [
            {
                "username": DEMO_USER,
                "token": token or secrets.token_urlsafe(24),
                "projects": [DEMO_PROJECT],
            }
        ],
        "providers": [
            {
                "id": "local",
                "kind": "local",
                "token": secrets.token_urlsafe(24),
                "products": [
                    {
                        "name": "cpu-small",
                        "category": "cpu",
                        "description": "One core on this host",
                        "cpu": 1,
                        "memoryInGigs": 1,
                        "support": {"logs": True, "timeExtension": True, "suspension": False},
                    },
                    {
                        "name": "cpu-large",
                        "category": "cpu",
                        "description": "Two cores on this host",
                        "cpu": 2,
                        "memoryInGigs": 4,
                        "support": {"logs": True, "timeExtension": True, "suspension": False},
                    },
                    {
                        "name": "interactive",
                        "category": "cpu",
                        "description": "One core, with the job's web page and a terminal in "
                        "the browser",
                        "cpu": 1,
                        "memoryInGigs": 1,
                        "support": {
                            "logs": True,
                            "timeExtension": True,
                            "web": True,
                            "terminal": True,
                        },
                    },
                ],
            }
        ],
        "applications": [
            {
                "name": "echo",
                "version": "1",
                "title": "Echo",
                "description": "Prints its message and exits.",
                "command": ["echo", "{message}"],
                "parameters": [{"name": "message", "type": "text", "title": "Message"}],
            },
            {
                "name": "sleep",
                "version": "1",
                "title": "Sleep",
                "description": "Waits for some seconds: a job to watch, extend and cancel.",
                "command": ["sleep", "{seconds}"],
                "parameters": [
                    {"name": "seconds", "type": "integer", "min": 0, "title": "Seconds"}
                ],
            },
            {
                "name": "fail",
                "version": "1",
                "title": "Fail",
                "description": "Exits with code 3: a program's failure is still SUCCESS.",
                "command": ["sh", "-c", "echo 'failing on purpose' >&2; exit 3"],
            },
            {
                "name": "notebook",
                "version": "1",
                "title": "Web server",
                "description": "Serves its job folder over HTTP until cancelled: open it "
                "with a WEB session.",
                "command": ["python3", "-m", "http.server", "--bind", "127.0.0.1", "{port}"],
                "interactive": {"web": True},
            },
        ],
    }
    return Settings(**data)
