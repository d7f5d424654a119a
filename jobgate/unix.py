"""Unix accounts: the account a user's jobs run as at a provider (README: "Unix accounts").

A provider with `user_accounts` runs each job as its user's own account: the `unix_user` of a
static user, the `unix_user_claim` of their sign-in, or else the provider's
`unix_user_template` filled with their username. The gateway picks it at submit and stores it
with the job; adapters (in the gateway, or in an agent) run the job as it.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass

from jobgate.errors import ProviderError

# useradd's default NAME_REGEX (Debian's adduser is stricter still): what a site's accounts
# look like, and nothing a command line could take for an option or a path.
UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
TEMPLATE_PLACEHOLDER = "{username}"
ROOT = "root"


@dataclass(frozen=True, slots=True)
class Account:
    """A Unix account on this host."""

    name: str
    uid: int
    gid: int


def host_account(name: str) -> Account | None:
    """The account of that name on this host, if it has one."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def can_switch_accounts() -> bool:
    """Whether this process may start others as another account (only root may)."""
    return os.geteuid() == 0


def users_account(name: str | None) -> Account | None:
    """The account a job of a user's runs as here (None: the provider's own). The gateway
    checked it at submit; an agent's host is checked here, as the job arrives.

    Raises `ProviderError` when this process cannot start the job so.
    """
    if name is None:
        return None
    if not can_switch_accounts():
        raise ProviderError(
            f"the job runs as Unix account '{name}', and only a provider running as root can "
            "start it so"
        )
    account = host_account(name)
    if account is None or account.uid == 0:
        raise ProviderError(f"this host has no Unix account '{name}' to run the job as")
    return account


def template_problem(template: str) -> str | None:
    """What is wrong with a `unix_user_template`, if anything."""
    if template.count(TEMPLATE_PLACEHOLDER) != 1:
        return f"must hold {TEMPLATE_PLACEHOLDER} once"
    rest = template.replace(TEMPLATE_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        return f"{TEMPLATE_PLACEHOLDER} is the only placeholder"
    return None


def name_problem(name: str) -> str | None:
    """Why `name` cannot be the account a job runs as, if it cannot."""
    if not UNIX_NAME.fullmatch(name):
        return f"'{name[:64]}' is not a valid Unix account name"
    if name == ROOT:
        return "jobs never run as root"
    return None


@dataclass(frozen=True, slots=True)
class UnixAccountRule:
    """How one provider with `user_accounts` picks a job's account.

    `checked_here`: the provider's adapter runs in this gateway, so the account must exist on
    this host (an agent's host is checked by the agent, when the job arrives).
    """

    template: str | None = None
    checked_here: bool = True

    def account_of(self, username: str, own: str | None) -> str | None:
        """The user's account: their own mapping first, then the template; None if neither."""
        if own is not None:
            return own
        if self.template is None:
            return None
        return self.template.replace(TEMPLATE_PLACEHOLDER, username)

    def problem(self, provider_id: str, username: str, own: str | None) -> str | None:
        """Why this user cannot have jobs at the provider, if they cannot."""
        name = self.account_of(username, own)
        if name is None:
            return (
                f"provider '{provider_id}' runs jobs as their users' own Unix accounts, and "
                "no account is mapped to you (ask the site to set one)"
            )
        problem = name_problem(name)
        if problem is not None:
            return f"provider '{provider_id}': {problem}"
        if self.checked_here:
            account = host_account(name)
            if account is None:
                return f"provider '{provider_id}' has no Unix account '{name}'"
            if account.uid == 0:
                return f"provider '{provider_id}': jobs never run as root"
        return None
