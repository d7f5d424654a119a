"""Configuration: the TOML file, environment overrides and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobgate.agent.settings import load_agent_settings
from jobgate.cli import main
from jobgate.errors import ConfigError
from jobgate.settings import (
    LocalProviderSettings,
    RemoteProviderSettings,
    SlurmProviderSettings,
    load_settings,
)
from jobgate.storage.mongo import MongoJobStore
from jobgate.storage.sqlite import SqliteJobStore
from jobgate.wiring import build_catalog, build_store

ROOT = Path(__file__).resolve().parents[2]

ISSUE_EXAMPLE = """
[storage]
url = "sqlite:///var/lib/jobgate/jobgate.db"   # or "mongodb://host:27017/jobgate"

[bus]
url = "memory://"                               # or "redis://host:6379/0"

[[users]]
username = "alice"
token = "alice-secret"                          # a static bearer token
projects = ["proj-a"]

[[providers]]
id = "local"
kind = "local"
token = "provider-secret"                       # the provider's token, for reportJobUpdates

[[providers.products]]
name = "cpu-small"
category = "cpu"
cpu = 1
memoryInGigs = 1
support = { logs = true, timeExtension = true, suspension = false }

[[applications]]
name = "echo"
version = "1"
command = ["echo", "{message}"]                 # {name} is replaced by that parameter's value
parameters = [{ name = "message", type = "text" }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobgate.toml"
    path.write_text(text)
    return path


def test_the_documented_example_loads_exactly_as_written(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ISSUE_EXAMPLE))
    assert settings.storage.url == "sqlite:///var/lib/jobgate/jobgate.db"
    store = build_store(settings)
    assert isinstance(store, SqliteJobStore)
    assert store.path == Path("/var/lib/jobgate/jobgate.db")
    product = settings.providers[0].products[0]
    assert product.memory_in_gigs == 1
    assert product.support.time_extension
    assert build_catalog(settings).applications[0].command == ("echo", "{message}")


def test_the_shipped_example_file_loads() -> None:
    settings = load_settings(ROOT / "examples" / "jobgate.toml")
    assert settings.users
    assert settings.providers
    assert settings.applications


def test_environment_variables_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBGATE_STORAGE__URL", "mongodb://db.example:27017/jobgate")
    monkeypatch.setenv("JOBGATE_SERVER__PORT", "9000")
    settings = load_settings(write(tmp_path, ISSUE_EXAMPLE))
    assert isinstance(build_store(settings), MongoJobStore)
    assert settings.server.port == 9000
    assert settings.users[0].username == "alice"


LOCAL = '[[providers]]\nid = "x"\nkind = "local"\nproducts = [{name="a", category="b"}]\n'


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[storage]\nurl = "ftp://x"\n', "storage.url"),
        ('[bus]\nurl = "kafka://x"\n', "bus.url"),
        ("[server]\nport = 70000\n", "server.port"),
        ('[storage]\nurll = "sqlite:///x"\n', "storage.urll"),
        ('[[users]]\nusername = "a"\n', "users.0.token"),
        (
            '[[providers]]\nid = "x"\nkind = "cloud"\nproducts = [{name="a", category="b"}]\n',
            "providers.0.kind",
        ),
        (
            '[[applications]]\nname = "a"\nversion = "1"\ncommand = ["x"]\n'
            'parameters = [{ name = "p", type = "colour" }]\n',
            "applications.0.parameters.0.type",
        ),
        (
            '[[applications]]\nname = "a"\nversion = "1"\ncommand = ["x", "{port}"]\n'
            'parameters = [{ name = "port", type = "integer" }]\ninteractive = { web = true }\n',
            "applications.0: an interactive application has no parameter 'port'",
        ),
        (
            '[[applications]]\nname = "a"\nversion = "1"\ncommand = ["x"]\n'
            "interactive = { web = true, vnc = true }\n",
            "applications.0.interactive: an application serves a web app or a desktop",
        ),
        ('[[projects]]\nid = "p"\n[projects.groups]\nall = ["a"]\n', "projects.0.groups"),
        ('[[projects]]\nid = "p"\npis = ["../a"]\n', "projects.0.pis.0"),
        ('[[projects]]\nid = "p"\n[[projects]]\nid = "p"\n', "projects: 'p' appears"),
        ('[[users]]\nusername = "a"\ntoken = "t"\nunix_user = "Bad Name"\n', "users.0.unix_user"),
        ('[[users]]\nusername = "a"\ntoken = "t"\nunix_user = "root"\n', "never run as root"),
        (f'{LOCAL}user_accounts = true\nunix_user_template = "x"\n', "must hold {username}"),
        (
            f'{LOCAL}user_accounts = true\nunix_user_template = "{{username}}-{{project}}"\n',
            "providers.0.unix_user_template: {username} is the only placeholder",
        ),
        (f'{LOCAL}unix_user_template = "{{username}}"\n', "only with user_accounts = true"),
    ],
)
def test_a_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(write(tmp_path, text))


def test_a_plain_application_may_have_a_parameter_named_port(tmp_path: Path) -> None:
    text = (
        '[[applications]]\nname = "a"\nversion = "1"\ncommand = ["x", "{port}"]\n'
        'parameters = [{ name = "port", type = "integer" }]\n'
    )
    (app,) = build_catalog(load_settings(write(tmp_path, text))).applications
    assert app.parameter("port") is not None


def test_a_bad_default_names_the_key(tmp_path: Path) -> None:
    text = (
        '[[applications]]\nname = "a"\nversion = "1"\ncommand = ["x"]\n'
        'parameters = [{ name = "n", type = "integer", default = "ten" }]\n'
    )
    with pytest.raises(ConfigError, match=r"applications\.0\.parameters\.0\.default"):
        build_catalog(load_settings(write(tmp_path, text)))


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[storage\n"))


def test_serve_with_a_bad_config_exits_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[storage]\nurl = "ftp://x"\n')
    assert main(["serve", "--config", str(path)]) == 2
    assert "storage.url" in capsys.readouterr().err


def test_the_committed_schema_is_what_the_code_serves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    served = capsys.readouterr().out
    committed = (ROOT / "schema.graphql").read_text()
    assert served == committed, "run `jobgate schema > schema.graphql` and commit it"


def test_the_cluster_example_loads_with_a_slurm_a_local_and_a_remote_provider() -> None:
    settings = load_settings(ROOT / "examples" / "jobgate-cluster.toml")
    slurm, login, remote = settings.providers
    assert isinstance(slurm, SlurmProviderSettings)
    assert (slurm.id, slurm.partition, slurm.account) == ("hpc", "debug", "proj-a")
    assert slurm.user_workspace == "/home/{username}"
    assert slurm.products[0].support.suspension is True
    assert isinstance(login, LocalProviderSettings)
    assert (login.sandbox, login.run_as) == ("bubblewrap", "nobody")
    assert isinstance(remote, RemoteProviderSettings)


def test_the_agent_example_loads() -> None:
    settings = load_agent_settings(ROOT / "examples" / "agent.toml")
    assert settings.adapter.kind == "slurm"


USERS_AND_PROVIDER = """
[[users]]
username = "alice"
token = "{alice}"

[[users]]
username = "bob"
token = "{bob}"

[[providers]]
id = "local"
kind = "local"
token = "{provider}"
products = [{{ name = "cpu", category = "cpu" }}]
"""


@pytest.mark.parametrize(
    ("tokens", "entries"),
    [
        ({"alice": "same", "bob": "same", "provider": "p"}, ("users.0 (alice)", "users.1 (bob)")),
        (
            {"alice": "a", "bob": "same", "provider": "same"},
            ("users.1 (bob)", "providers.0 (local)"),
        ),
    ],
)
def test_every_token_is_unique_and_the_error_names_both_entries_not_the_token(
    tmp_path: Path, tokens: dict[str, str], entries: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, USERS_AND_PROVIDER.format(**tokens)))
    message = raised.value.message
    for entry in entries:
        assert entry in message
    assert "same" not in message.replace("the same token", "")
