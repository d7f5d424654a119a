"""`agent.toml`: which adapter the agent runs its jobs through, and where it keeps its files.

```toml
[adapter]
kind = "slurm"                # or "local"
workdir = "/scratch/jobgate"  # job folders; for Slurm, shared with the compute nodes
partition = "debug"           # slurm only, optional
account = "proj-a"            # slurm only, optional
```
`workdir` may also stand at the top level. The agent's own journal lives there too.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from jobgate.errors import ConfigError
from jobgate.settings import (
    AbsolutePath,
    LocalAdapterOptions,
    LogFormatSettings,
    SlurmAdapterOptions,
    describe,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalAdapterSettings(LocalAdapterOptions):
    kind: Literal["local"]
    workdir: AbsolutePath | None = None


class SlurmAdapterSettings(SlurmAdapterOptions):
    kind: Literal["slurm"]


AdapterSettings = Annotated[
    LocalAdapterSettings | SlurmAdapterSettings, Field(discriminator="kind")
]


class AgentSettings(_Strict):
    adapter: AdapterSettings
    workdir: AbsolutePath | None = None
    reconnect_max_seconds: float = Field(default=30.0, gt=0)
    logging: LogFormatSettings = LogFormatSettings()
    # The file these were read from: jobs must never see it (it holds the agent's token).
    _source_file: Path | None = PrivateAttr(default=None)

    @property
    def source_file(self) -> Path | None:
        return self._source_file

    @model_validator(mode="after")
    def _has_workdir(self) -> AgentSettings:
        if self.adapter.workdir is None and self.workdir is None:
            raise ValueError("adapter.workdir: set the folder the agent keeps its jobs in")
        return self

    @property
    def folder(self) -> Path:
        folder = self.adapter.workdir or self.workdir
        assert folder is not None
        return folder


def load_agent_settings(path: Path) -> AgentSettings:
    """Read `agent.toml`; `ConfigError` names the offending key."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error
    try:
        settings = AgentSettings(**data)
    except ValidationError as error:
        raise ConfigError(f"{path}: {describe(error)}") from error
    settings._source_file = Path(os.path.abspath(path))
    return settings
