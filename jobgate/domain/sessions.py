"""The kinds of interactive session (the contract's InteractiveSessionType)."""

from __future__ import annotations

import enum


class SessionType(enum.StrEnum):
    """The contract's InteractiveSessionType."""

    WEB = "WEB"
    TERMINAL = "TERMINAL"
    VNC = "VNC"
