"""The audit log: one JSON line per mutation, whatever its outcome (README: "Logs and audit").

Each line says when, which request, who (a user, with the personal access token they used, or
a provider), from where (the client's address, as uvicorn sees it behind a trusted proxy), what
(the mutation), which jobs (or tokens, or commands), and the outcome: `ok`, the user errors'
codes, or the error's code. Never a token's secret, never a job's parameters.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from graphql import GraphQLError

from jobgate.access import ProviderIdentity, User
from jobgate.logs_setup import AUDIT_LOGGER, REQUEST_ID
from jobgate.schema.context import Context

log = logging.getLogger(AUDIT_LOGGER)

P = ParamSpec("P")
T = TypeVar("T")


def audited(
    action: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Resolver decorator (above `coded`): writes the mutation's audit line."""

    def decorate(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            info = kwargs.get("info")
            context = getattr(info, "context", None)
            try:
                result = await fn(*args, **kwargs)
            except GraphQLError as error:
                code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
                _write(action, context, kwargs.get("input"), None, str(code))
                raise
            _write(action, context, kwargs.get("input"), result, None)
            return result

        return wrapper

    return decorate


def _write(action: str, context: Any, given: Any, result: Any, error_code: str | None) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    line: dict[str, Any] = {
        "time": round(time.time(), 3),
        "request_id": REQUEST_ID.get(),
        "action": action,
        **_who(context),
    }
    line.update(_what(given, result))
    codes = sorted({str(e.code.value) for e in getattr(result, "user_errors", None) or []})
    if error_code is not None:
        line["outcome"] = error_code
    else:
        line["outcome"] = "ok" if not codes else "user_errors"
        if codes:
            line["user_errors"] = codes
    log.info(json.dumps(line, separators=(",", ":")))


def _who(context: Any) -> dict[str, Any]:
    if not isinstance(context, Context):
        return {}
    who: dict[str, Any] = {}
    identity = context.identity
    if isinstance(identity, User):
        who["user"] = identity.username
    elif isinstance(identity, ProviderIdentity):
        who["provider"] = identity.provider_id
    if context.access_token_id is not None:
        who["access_token"] = context.access_token_id  # its id, never its secret
    client = getattr(context.request, "client", None)
    if client is not None:
        who["client"] = client.host
    return who


def _what(given: Any, result: Any) -> dict[str, Any]:
    """The jobs (or tokens, or commands) the mutation named and those it acted on."""
    what: dict[str, Any] = {}
    jobs = [str(job.id) for job in getattr(result, "jobs", None) or []]
    jobs += [str(r.job_id) for r in getattr(result, "results", None) or []]
    if jobs:
        what["jobs"] = jobs
    asked = [str(i) for i in getattr(given, "ids", None) or []]
    asked += [str(r.job_id) for r in getattr(given, "requests", None) or []]
    asked += [str(c.job_id) for c in getattr(given, "changes", None) or []]
    asked += [str(s.job_id) for s in getattr(given, "sessions", None) or []]
    # Sessions opened: which, never their URL (it carries the session's secret).
    opened = [
        f"{s.job_id}/{s.rank}/{s.type.value}" for s in getattr(result, "sessions", None) or []
    ]
    if opened:
        what["sessions"] = opened
    if asked:
        what["asked"] = asked
    token = getattr(result, "access_token", None)
    if token is not None:
        what["token_id"] = str(token.id)
    elif hasattr(given, "id"):
        what["token_id"] = str(given.id)
    accepted = getattr(result, "accepted", None)
    if isinstance(accepted, int):
        what["accepted"] = accepted
    return what
