"""agent.toml: the issue's keys load, and mistakes name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobgate.agent.settings import SlurmAdapterSettings, load_agent_settings
from jobgate.errors import ConfigError


def test_a_slurm_agent_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[adapter]\nkind = "slurm"\nworkdir = "/scratch/jg"\npartition = "debug"\n'
        'account = "proj-a"\n'
    )
    settings = load_agent_settings(path)
    assert isinstance(settings.adapter, SlurmAdapterSettings)
    assert settings.adapter.partition == "debug"
    assert settings.folder == Path("/scratch/jg")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[adapter]\nkind = "local"\n', "adapter.workdir"),
        ('workdir = "/w"\n[adapter]\nkind = "k8s"\n', "adapter.kind"),
        ('workdir = "/w"\n[adapter]\nkind = "local"\npartition = "x"\n', "adapter.partition"),
    ],
)
def test_a_bad_agent_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_agent_settings(path)
