"""How jobgate writes its log: text lines or JSON lines (python-json-logger), each line of an
HTTP request carrying that request's id, and the audit log's own file (README: "Logs and
audit").

The request id is the caller's `X-Request-Id` when it is a short plain token (a proxy's, so one
id follows a request through both logs), else a new one; every response carries it back.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from contextvars import ContextVar
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: ContextVar[str | None] = ContextVar("jobgate_request_id", default=None)
HEADER = "x-request-id"
# What a request id may be: a proxy's ids (UUIDs, hex, nginx's $request_id) fit; log
# injection (newlines, quotes) and unbounded sizes do not.
ACCEPTED_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
AUDIT_LOGGER = "jobgate.audit"


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request it was logged in (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


# A session's capability in a URL (`?jobgate-session=<id>.<secret>`, see
# `jobgate.sessions.capability`): the access log keeps the id and never the secret.
CAPABILITY_IN_URL = re.compile(r"(jobgate-session=[^.&\s]*)\.[^&\s]*")


class RedactCapabilities(logging.Filter):
    """Takes the secret of an interactive session's URL out of every record (uvicorn's access
    log writes each request's path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and "jobgate-session=" in arg for arg in record.args
        ):
            record.args = tuple(
                CAPABILITY_IN_URL.sub(r"\1.<secret>", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message`, and `[request <id>]` on the lines of a request."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return line if request_id is None else f"{line} [request {request_id}]"


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"levelname": "level", "name": "logger", "asctime": "time"},
        timestamp="time",
    )


def configure_logging(
    level: int, *, json_lines: bool = False, audit_file: Path | None = None
) -> None:
    """The root logger writes to standard error, as text or JSON lines; the audit log goes to
    `audit_file` (JSON lines) when given, else along with the rest."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactCapabilities())
    handler.setFormatter(json_formatter() if json_lines else TextFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.setLevel(logging.INFO)
    if audit_file is not None:
        audit_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(audit_file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter("%(message)s"))  # each record is one JSON object
        audit.addHandler(to_file)
        audit.propagate = False


class RequestIds:
    """ASGI middleware: each HTTP request runs with its id (`REQUEST_ID`) and answers with it
    in `X-Request-Id`. WebSockets pass by: a subscriber's connection keeps no frame here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.encode(), b"").decode("latin-1")
        request_id = given if ACCEPTED_ID.fullmatch(given) else secrets.token_hex(8)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(HEADER, request_id)
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
