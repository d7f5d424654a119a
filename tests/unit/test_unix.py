"""Which Unix account a user's jobs run as at a provider, and which names are refused."""

from __future__ import annotations

from jobgate.unix import UnixAccountRule, name_problem

NO_SUCH_ACCOUNT = "jgt-no-such-account"


def test_a_users_own_account_comes_before_the_template() -> None:
    rule = UnixAccountRule("hpc_{username}")
    assert rule.account_of("alice", None) == "hpc_alice"
    assert rule.account_of("alice", "ali") == "ali"
    assert UnixAccountRule().account_of("alice", None) is None


def test_names_a_site_would_not_give_an_account_are_refused() -> None:
    assert name_problem("alice") is None
    assert name_problem("_svc-1") is None
    assert name_problem("Alice") == "'Alice' is not a valid Unix account name"
    assert name_problem("-rf") == "'-rf' is not a valid Unix account name"
    assert name_problem("a/b") == "'a/b' is not a valid Unix account name"
    assert name_problem("a" * 33) is not None
    assert name_problem("root") == "jobs never run as root"


def test_the_refusal_says_why() -> None:
    here = UnixAccountRule(checked_here=True)
    assert here.problem("hpc", "alice", "nobody") is None  # Debian's unprivileged account
    assert here.problem("hpc", "alice", None) == (
        "provider 'hpc' runs jobs as their users' own Unix accounts, and no account is mapped "
        "to you (ask the site to set one)"
    )
    assert here.problem("hpc", "alice", NO_SUCH_ACCOUNT) == (
        f"provider 'hpc' has no Unix account '{NO_SUCH_ACCOUNT}'"
    )
    assert UnixAccountRule("{username}").problem("hpc", "root", None) == (
        "provider 'hpc': jobs never run as root"
    )
    # An agent's host is checked by the agent: the gateway cannot see its accounts.
    assert UnixAccountRule(checked_here=False).problem("edge", "alice", NO_SUCH_ACCOUNT) is None
