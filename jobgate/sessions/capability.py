"""The capability of an interactive session (an unguessable secret for one session alone), and
the addresses that carry it.

A session's URL carries `<id>.<secret>`: the id finds the record, the secret proves the bearer
was given the URL. Stores keep the secret's SHA-256 only (256 random bits: a fast digest is as
good as a slow one); the check compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from jobgate.domain.sessions import SessionType
from jobgate.sessions.address import session_path
from jobgate.storage.sessions import SessionRecord

# How long a fresh session's URL may wait before its first use (then its cookie carries it).
OPEN_WITHIN_MS = 5 * 60 * 1000
# The query parameter that carries a capability in a session's URL, on its first use only.
PARAMETER = "jobgate-session"
# A session's id: 16 hex digits, short enough for a host name's label (at most 63).
SESSION_ID_LENGTH = 16


def session_url(record: SessionRecord, capability: str) -> str:
    """The address a session is first opened at (a path on the gateway)."""
    return f"{session_path(record.job_id, record.rank, record.type)}?{PARAMETER}={capability}"


def host_session_url(scheme: str, port: int | None, domain: str, capability: str) -> str:
    """The address a session is first opened at on a host of its own, `<id>.<domain>`."""
    session_id = capability.partition(".")[0]
    at = f":{port}" if port is not None else ""
    return f"{scheme}://{session_id}.{domain}{at}/?{PARAMETER}={capability}"


def session_of_host(host: str, domain: str) -> str | None:
    """The session id a host's name carries (`<id>.<domain>`, any port); None for any other."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    label, dot, rest = name.lower().partition(".")
    if not dot or rest != domain or len(label) != SESSION_ID_LENGTH:
        return None
    return label if all(c in "0123456789abcdef" for c in label) else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_session(
    job_id: str, rank: int, kind: SessionType, username: str, now: int
) -> tuple[SessionRecord, str]:
    """A session record and its capability (`<id>.<secret>`), which only the caller sees."""
    session_id, secret = secrets.token_hex(SESSION_ID_LENGTH // 2), secrets.token_urlsafe(32)
    record = SessionRecord(
        session_id, digest(secret), job_id, rank, kind, username, now, now + OPEN_WITHIN_MS
    )
    return record, f"{session_id}.{secret}"


def split(capability: str) -> tuple[str, str] | None:
    """The id and secret of a capability; None for anything that cannot be one."""
    session_id, dot, secret = capability.partition(".")
    if not dot or len(session_id) != SESSION_ID_LENGTH or not 20 <= len(secret) <= 64:
        return None
    return session_id, secret


def proves(record: SessionRecord, secret: str) -> bool:
    """Whether `secret` is this session's."""
    return hmac.compare_digest(record.secret_digest, digest(secret))
