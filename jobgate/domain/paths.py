"""Paths users give jobs: always inside a workspace, checked by their text before anything else.

A file or directory parameter (and a mounted resource) names a path inside the job's workspace,
with `/` as the workspace's root. What can be told from the text alone is told here, for every
provider; whether a symlink leads out is the provider's to tell (`providers.workspace`), where
the files are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from jobgate.domain.job import JobSpecification
from jobgate.domain.values import FileValue

# What a user name or project id must look like to name a workspace folder: never "..", no "/".
FOLDER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}")
# Linux's PATH_MAX: a longer path cannot be opened anyway.
PATH_MAX_LENGTH = 4096


def path_problem(path: str) -> str | None:
    """Why `path` cannot name anything inside a workspace, or None when its text is fine."""
    if "\0" in path:
        return "a path may not contain NUL bytes"
    if len(path.encode()) > PATH_MAX_LENGTH:
        return f"a path may have at most {PATH_MAX_LENGTH} bytes"
    if not path:
        return "a path may not be empty ('/' is the workspace's root)"
    if ".." in path.split("/"):
        return "a path may not contain '..': paths are inside the workspace, '/' is its root"
    return None


def relative_parts(path: str) -> list[str]:
    """The path's parts below the workspace's root (its text already passed `path_problem`)."""
    return [part for part in path.split("/") if part not in ("", ".")]


def file_values(spec: JobSpecification) -> Iterator[tuple[tuple[str, ...], FileValue]]:
    """Every path a job is given, with its field path: file parameters, then mounted folders."""
    for name, value in spec.parameters:
        if isinstance(value, FileValue):
            yield ("parameters", name, "path"), value
    for index, value in enumerate(spec.resources):
        if isinstance(value, FileValue):
            yield ("resources", str(index), "path"), value
