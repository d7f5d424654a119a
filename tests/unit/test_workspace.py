"""Paths jobs are given stay inside their owner's workspace, whatever the text or the symlinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobgate.domain.paths import path_problem
from jobgate.domain.values import ResourceOwner
from jobgate.providers.workspace import OutsideWorkspace, WorkspaceLayout, Workspaces

ADA = ResourceOwner("ada", None)
ADA_IN_LAB = ResourceOwner("ada", "lab")


@pytest.mark.parametrize(
    "path",
    ["../../../../jobgate.toml", "data/../../bob", "..", "a/\0/b", "", "x" * 5000],
)
def test_a_path_that_cannot_name_a_place_inside_is_refused_by_its_text(path: str) -> None:
    assert path_problem(path) is not None


@pytest.mark.parametrize("path", ["/", "data/in.csv", "/data/in.csv", "./a//b/", "a..b"])
def test_ordinary_paths_pass(path: str) -> None:
    assert path_problem(path) is None


def test_paths_resolve_under_the_owners_workspace_with_slash_as_its_root(tmp_path: Path) -> None:
    spaces = Workspaces.under(tmp_path / "files")
    assert spaces.resolve(ADA, "/data/in.csv") == tmp_path / "files/users/ada/data/in.csv"
    assert spaces.resolve(ADA, "/") == tmp_path / "files/users/ada"
    assert spaces.resolve(ADA_IN_LAB, "in.csv") == tmp_path / "files/projects/lab/in.csv"


def test_a_symlink_that_leads_out_is_refused_one_that_stays_inside_is_followed(
    tmp_path: Path,
) -> None:
    spaces = Workspaces.under(tmp_path / "files")
    home = spaces.prepare(ADA)
    (home / "etc").symlink_to("/etc")
    (home / "other").symlink_to(tmp_path / "files/users/bob")
    (home / "real").mkdir()
    (home / "alias").symlink_to("real")
    with pytest.raises(OutsideWorkspace, match="leads outside"):
        spaces.resolve(ADA, "etc/hostname")
    with pytest.raises(OutsideWorkspace, match="leads outside"):
        spaces.resolve(ADA, "other/secret")
    assert spaces.resolve(ADA, "alias/x") == home / "real/x"


def test_templates_place_workspaces_where_a_site_keeps_its_files(tmp_path: Path) -> None:
    layout = WorkspaceLayout(
        user_template=str(tmp_path / "home/{username}"),
        project_template=str(tmp_path / "work/{project}"),
    )
    spaces = layout.workspaces(tmp_path / "data")
    assert spaces.root(ADA) == tmp_path / "home/ada"
    assert spaces.root(ADA_IN_LAB) == tmp_path / "work/lab"
    assert WorkspaceLayout().workspaces(tmp_path).root(ADA) == tmp_path / "files/users/ada"


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "", "x" * 200])
def test_a_name_that_cannot_be_a_folder_has_no_workspace(tmp_path: Path, name: str) -> None:
    with pytest.raises(OutsideWorkspace):
        Workspaces.under(tmp_path).root(ResourceOwner(name, None))
