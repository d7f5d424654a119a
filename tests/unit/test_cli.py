"""`jobgate` on the command line: every bad value is one line naming the key, and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobgate import __version__
from jobgate.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"], capsys) == (0, f"jobgate {__version__}\n")


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["serve", "--port", "99999"], "--port"),
        (["serve", "--port", "http"], "--port"),
        (["serve", "--log-level", "nonsense"], "--log-level"),
        (
            ["agent", "--gateway", "http://x/graphql", "--config", "a.toml", "--log-level", "x"],
            "--log-level",
        ),
        (["serve", "--bogus"], "--bogus"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(argv, capsys)
    assert code == 2
    assert output.count("\n") == 1, output
    assert names in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("JOBGATE_USERS", "notjson", "users"),
        ("JOBGATE_SERVER__PORT", "99999", "server.port"),
        ("JOBGATE_STORAGE__URL", "ftp://x", "storage.url"),
    ],
)
def test_a_bad_environment_variable_is_one_line_naming_the_key(
    variable: str,
    value: str,
    key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    code, output = run(["serve"], capsys)
    assert code == 2
    assert output.count("\n") == 1, output
    assert f"{key}:" in output
    assert not (tmp_path / "jobgate-data").exists()  # nothing was touched


def test_a_typo_in_a_provider_names_the_key_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "jobgate.toml"
    config.write_text(
        '[[providers]]\nid = "x"\nkind = "local"\n'
        'products = [{name = "a", category = "b"}]\nmax_concurent_jobs = 3\n'
    )
    code, output = run(["serve", "--config", str(config)], capsys)
    assert code == 2
    assert output == "jobgate: invalid configuration: providers.0.max_concurent_jobs: unknown key\n"


def test_a_repeated_token_names_both_entries_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "jobgate.toml"
    config.write_text(
        '[[users]]\nusername = "a"\ntoken = "t1"\n[[users]]\nusername = "b"\ntoken = "t1"\n'
    )
    code, output = run(["serve", "--config", str(config)], capsys)
    assert (code, output) == (
        2,
        "jobgate: invalid configuration: users.1 (b) has the same token as users.0 (a)\n",
    )


def test_an_agent_without_a_token_is_told_how_to_give_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBGATE_AGENT_TOKEN", raising=False)
    code, output = run(
        ["agent", "--gateway", "http://127.0.0.1:1/graphql", "--config", str(tmp_path / "a")],
        capsys,
    )
    assert code == 2
    assert "--token or JOBGATE_AGENT_TOKEN" in output
