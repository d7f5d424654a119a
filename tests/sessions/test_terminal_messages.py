"""What a browser may say to a terminal session besides keys: its size, within bounds."""

from __future__ import annotations

import pytest

from jobgate.sessions.terminal import _resize


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ('{"resize": [120, 40]}', (120, 40)),
        ('{"resize": [0, 40]}', None),  # no terminal is empty
        ('{"resize": [120, 100000]}', None),  # nor larger than any screen
        ('{"resize": [120.5, 40]}', None),
        ('{"resize": [120]}', None),
        ('{"resize": "big"}', None),
        ('{"other": 1}', None),
        ("[1, 2]", None),
        ("not json", None),
        (None, None),
    ],
)
def test_only_a_sensible_size_resizes(text: str | None, size: tuple[int, int] | None) -> None:
    assert _resize(text) == size
