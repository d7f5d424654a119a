"""A session's address on a host of its own: written, and read back from a Host header."""

from __future__ import annotations

import pytest

from jobgate.sessions.capability import host_session_url, session_of_host

CAPABILITY = "0123456789abcdef.some-secret-of-the-session"


def test_a_host_url_names_the_session_and_carries_its_capability_once() -> None:
    url = host_session_url("https", None, "sessions.example.org", CAPABILITY)
    assert url == f"https://0123456789abcdef.sessions.example.org/?jobgate-session={CAPABILITY}"
    assert host_session_url("http", 8000, "s.test", CAPABILITY).startswith(
        "http://0123456789abcdef.s.test:8000/?"
    )


@pytest.mark.parametrize(
    ("host", "session_id"),
    [
        ("0123456789abcdef.sessions.example.org", "0123456789abcdef"),
        ("0123456789ABCDEF.Sessions.Example.org:8443", "0123456789abcdef"),  # case, a port
        ("sessions.example.org", None),  # the domain itself
        ("x.0123456789abcdef.sessions.example.org", None),  # one label only
        ("0123456789abcdeg.sessions.example.org", None),  # not hex
        ("0123456789abcde.sessions.example.org", None),  # too short
        ("0123456789abcdef.sessions.example.org.evil.test", None),
        ("0123456789abcdef.evil-sessions.example.org", None),
    ],
)
def test_only_a_sessions_own_host_names_it(host: str, session_id: str | None) -> None:
    assert session_of_host(host, "sessions.example.org") == session_id
