"""The example configs show every key the settings take, and load."""

from __future__ import annotations

import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from jobgate.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [ROOT / "examples" / "jobgate.toml", ROOT / "examples" / "jobgate-cluster.toml"]


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The settings models inside an annotation (lists, unions, Annotated, Optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        found.extend(_models(argument))
    return found


def settings_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        keys.add(key)
        for inner in _models(field.annotation):
            keys |= settings_keys(inner, key + ".")
    return keys


def example_keys(data: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(data, list):
        for item in data:
            keys |= example_keys(item, prefix)
    elif isinstance(data, dict):
        for name, value in data.items():
            key = prefix + name
            keys.add(key)
            keys |= example_keys(value, key + ".")
    return keys


def test_the_examples_show_every_settings_key() -> None:
    shown = set().union(*(example_keys(tomllib.loads(p.read_text())) for p in EXAMPLES))
    assert settings_keys(Settings) - shown == set()


def test_the_settings_walk_sees_nested_and_per_kind_keys() -> None:
    keys = settings_keys(Settings)
    assert {"providers.partition", "providers.products.support.timeExtension"} <= keys
    assert "applications.parameters.options" in keys


def test_the_examples_load() -> None:
    for path in EXAMPLES:
        load_settings(path)
