"""`Workspaces`: where each user's and each project's files are at one provider.

A personal job works in its user's workspace, a project job in its project's. The paths a job is
given are inside it: `Workspaces.resolve` follows symlinks and refuses a path that ends up
outside, and gives the job the resolved absolute path. By default the workspaces are
`<files_root>/users/<username>` and `<files_root>/projects/<project>`; a site whose files live
elsewhere gives templates (`/home/{username}`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from jobgate.domain.job import Job
from jobgate.domain.paths import FOLDER_NAME, file_values, path_problem, relative_parts
from jobgate.domain.values import FileValue, ParameterValue, ResourceOwner

USER_PLACEHOLDER = "{username}"
PROJECT_PLACEHOLDER = "{project}"


class OutsideWorkspace(Exception):
    """A path that does not lead to a place inside the job's workspace."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Workspaces:
    """The workspace templates of one provider: `{username}` and `{project}` are filled in."""

    user_template: str
    project_template: str

    @classmethod
    def under(cls, files_root: Path) -> Workspaces:
        return cls(
            str(files_root / "users" / USER_PLACEHOLDER),
            str(files_root / "projects" / PROJECT_PLACEHOLDER),
        )

    def root(self, owner: ResourceOwner) -> Path:
        """The owner's workspace (it need not exist yet)."""
        if owner.project is not None:
            return Path(
                self.project_template.replace(PROJECT_PLACEHOLDER, _folder_name(owner.project))
            )
        return Path(self.user_template.replace(USER_PLACEHOLDER, _folder_name(owner.created_by)))

    def resolve(self, owner: ResourceOwner, path: str) -> Path:
        """The absolute path `path` names inside the owner's workspace, symlinks followed.

        Raises `OutsideWorkspace` when it leads out (or its text cannot name a place inside).
        """
        problem = path_problem(path)
        if problem is not None:
            raise OutsideWorkspace(problem)
        root = Path(os.path.realpath(self.root(owner)))
        resolved = Path(os.path.realpath(root.joinpath(*relative_parts(path))))
        if resolved != root and root not in resolved.parents:
            raise OutsideWorkspace(f"'{path}' leads outside the workspace (through a symlink)")
        return resolved

    def resolved_paths(self, job: Job) -> dict[tuple[str, ...], Path]:
        """Every path the job is given (`domain.paths.file_values`), resolved once, by field.

        Raises `OutsideWorkspace` (naming the field) for one that leads out: a symlink made
        after the submit was checked is caught here, before anything starts.
        """
        resolved: dict[tuple[str, ...], Path] = {}
        for field, value in file_values(job.specification):
            try:
                resolved[field] = self.resolve(job.owner, value.path)
            except OutsideWorkspace as error:
                where = ".".join(field[:-1])
                raise OutsideWorkspace(f"{where}: {error.message}") from None
        return resolved

    @staticmethod
    def given_parameters(
        job: Job, resolved: dict[tuple[str, ...], Path]
    ) -> dict[str, ParameterValue]:
        """The job's parameters as its command is given them: each path resolved, absolute."""
        given: dict[str, ParameterValue] = {}
        for name, value in job.specification.parameters:
            if isinstance(value, FileValue):
                value = dataclasses.replace(value, path=str(resolved[("parameters", name, "path")]))
            given[name] = value
        return given

    @staticmethod
    def mounts(job: Job, resolved: dict[tuple[str, ...], Path]) -> list[tuple[Path, bool]]:
        """Every path the job is given, resolved, with whether it is read-only."""
        return [
            (resolved[field], value.read_only) for field, value in file_values(job.specification)
        ]

    def prepare(self, owner: ResourceOwner, uid: int | None = None) -> Path:
        """Create the owner's workspace if it is missing (owned by `uid`, where given)."""
        root = self.root(owner)
        if not root.is_dir():
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if uid is not None:
                os.chown(root, uid, -1)
        return root


@dataclass(frozen=True, slots=True)
class WorkspaceLayout:
    """A provider's workspace settings, before the data folder is known (`WorkspaceOptions`)."""

    files_root: Path | None = None
    user_template: str | None = None
    project_template: str | None = None

    def roots(self) -> list[Path]:
        """The folders every configured workspace lies in (beside the data folder's default)."""
        roots = [] if self.files_root is None else [self.files_root]
        for template in (self.user_template, self.project_template):
            if template is not None:
                roots.append(Path(template.split("{", 1)[0]))  # "/home/{username}": /home
        return roots

    def workspaces(self, data_dir: Path) -> Workspaces:
        default = Workspaces.under(self.files_root or data_dir / "files")
        return Workspaces(
            self.user_template or default.user_template,
            self.project_template or default.project_template,
        )


# Workspaces under `<data_dir>/files`.
DEFAULT_LAYOUT = WorkspaceLayout()


def _folder_name(name: str) -> str:
    if not FOLDER_NAME.fullmatch(name):
        raise OutsideWorkspace(f"'{name}' cannot name a workspace folder")
    return name
