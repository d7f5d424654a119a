"""How the local provider confines a job: the account it runs as, its environment, and the
bubblewrap (`bwrap`) command line around each replica.

A confined job sees the system folders read-only, its own working folder and its workspace
(read-only where a parameter says so), a private `/tmp`, `/proc` of its own processes and a
minimal `/dev`, and nothing else: not the gateway's data folder or config, not other users'
workspaces, not other jobs. It has no network unless its product allows it, and runs as an
unprivileged account with a clean environment.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pwd
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jobgate.errors import ConfigError
from jobgate.unix import Account, can_switch_accounts, host_account

log = logging.getLogger(__name__)

# The PATH a job starts with, here and on Slurm.
JOB_PATH = "/usr/local/bin:/usr/bin:/bin"
# What a confined job may read of the host: programs, libraries and system configuration.
SYSTEM_FOLDERS = (
    Path("/usr"),
    Path("/etc"),
    Path("/bin"),
    Path("/sbin"),
    Path("/lib"),
    Path("/lib32"),
    Path("/lib64"),
    Path("/libx32"),
)
DEFAULT_ACCOUNT = "nobody"
# The sandbox's own /tmp, empty and private to the job.
PRIVATE_TMP = "/tmp"  # noqa: S108


def job_account(run_as: str | None) -> Account | None:
    """The account jobs run as, or None for jobgate's own (when it is not root).

    Only root can start a process as another account: a gateway that runs as a user runs its
    jobs as that user, and asking for another one is a configuration error.
    """
    if not can_switch_accounts():
        own = pwd.getpwuid(os.geteuid()).pw_name
        if run_as is not None and run_as != own:
            raise ConfigError(
                f"run_as = '{run_as}' needs jobgate to run as root (it runs as '{own}')"
            )
        return None
    name = run_as or DEFAULT_ACCOUNT
    account = host_account(name)
    if account is None:
        raise ConfigError(f"run_as names no account on this host: '{name}'")
    if account.uid == 0:
        raise ConfigError("run_as must not be root: jobs run as an unprivileged account")
    return account


def job_environment(
    *, job_id: str, replicas: int, workspace: Path, job_folder: Path
) -> dict[str, str]:
    """Everything a job's environment holds (the supervisor adds `JOBGATE_RANK`): nothing of
    the gateway's own, whose environment may hold tokens."""
    return {
        "PATH": JOB_PATH,
        "HOME": str(workspace),
        "LANG": "C.UTF-8",
        "JOBGATE_JOB_ID": job_id,
        "JOBGATE_REPLICAS": str(replicas),
        "JOBGATE_WORKSPACE": str(workspace),
        "JOBGATE_JOB_FOLDER": str(job_folder),
    }


@dataclass(frozen=True, slots=True)
class Bubblewrap:
    """Builds each job's `bwrap` command line.

    `hidden` are folders and files no job may see even where they lie under a system folder
    (the gateway's data folder, its config, the root of all workspaces); `read_only` are more
    host folders a site lets jobs read (its software). `account` is the one jobs run as unless
    their user has one of their own (`command`). With an `account`, jobgate runs as root:
    bwrap then sets the sandbox up with root's rights (it must reach folders only root may
    open) in no user namespace, and `setpriv` inside drops to the account with no capabilities
    left, so the job is that account on the host too, never a root mapped to another name.
    """

    executable: str
    account: Account | None = None
    hidden: tuple[Path, ...] = ()
    read_only: tuple[Path, ...] = ()

    @classmethod
    def find(
        cls, account: Account | None, hidden: Sequence[Path], read_only: Sequence[Path]
    ) -> Bubblewrap:
        executable = shutil.which("bwrap")
        if executable is None:
            raise ConfigError(
                "the local provider confines jobs with bubblewrap, which is not installed "
                '(Debian: apt-get install bubblewrap); sandbox = "none" runs them unconfined'
            )
        if account is not None and shutil.which("setpriv", path=JOB_PATH) is None:
            raise ConfigError("run_as needs setpriv (Debian: util-linux) to drop privileges")
        return cls(executable, account, tuple(hidden), tuple(read_only))

    def hiding(self, *paths: Path) -> Bubblewrap:
        """The same sandbox, with `paths` hidden too."""
        return dataclasses.replace(self, hidden=(*self.hidden, *paths))

    def command(
        self,
        argv: Sequence[str],
        *,
        job_folder: Path,
        workspace: Path,
        mounts: Sequence[tuple[Path, bool]] = (),
        network: bool = False,
        account: Account | None = None,
        files: Sequence[tuple[Path, Path]] = (),
    ) -> list[str]:
        """`argv` inside a sandbox that sees `job_folder` (its working folder) and `workspace`
        writable, each of `mounts` (resolved paths inside the workspace) read-only where it says
        so, and otherwise only the system folders (and `files`: (host file, where it shows)
        read-only); run as `account` (a user's own), else as the sandbox's."""
        # A user's own account keeps its groups (a project's Unix group gives its folders).
        groups = "--clear-groups" if account is None else "--init-groups"
        account = account or self.account
        assert account is None or self.account is not None, "only root switches accounts"
        args = [self.executable, "--die-with-parent"]
        if account is None:
            args.append("--unshare-all")
        else:  # --unshare-all without the user namespace (see the class)
            args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
            args += ["--unshare-cgroup-try", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        if network:
            args.append("--share-net")
        system = [folder for folder in SYSTEM_FOLDERS if _exists(folder)]
        for folder in system:
            if folder.is_symlink():  # /bin -> usr/bin on merged-/usr systems
                args += ["--symlink", os.readlink(folder), str(folder)]
            else:
                args += ["--ro-bind", str(folder), str(folder)]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", PRIVATE_TMP]
        extra = [folder for folder in self.read_only if folder.is_dir()]
        visible = [*system, *extra]
        # The folders leading to each place bound below, made first and traversable (bwrap
        # would make them root's alone, and on the host they may well be), so that nothing
        # else of them shows.
        made: set[Path] = {Path("/"), Path(PRIVATE_TMP)}
        for place in (*extra, *(place for _, place in files), workspace, job_folder):
            for parent in reversed(place.parents):
                if parent not in made and not any(_within(parent, f) for f in visible):
                    args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        for folder in extra:
            args += ["--ro-bind", str(folder), str(folder)]
        for secret in self.hidden:
            if any(_within(secret, folder) for folder in visible) and _exists(secret):
                # Later mounts cover earlier ones: an empty folder (or file) over the secret.
                if secret.is_dir():
                    args += ["--tmpfs", str(secret)]
                else:
                    args += ["--ro-bind", "/dev/null", str(secret)]
        for source, place in files:  # jobgate's own helpers, e.g. the session bridge
            args += ["--ro-bind", str(source), str(place)]
        args += ["--bind", str(workspace), str(workspace)]
        for path, read_only in mounts:
            if read_only:
                args += ["--ro-bind-try", str(path), str(path)]
        args += ["--bind", str(job_folder), str(job_folder), "--chdir", str(job_folder), "--"]
        if account is not None:
            uid, gid = account.uid, account.gid
            args += ["setpriv", f"--reuid={uid}", f"--regid={gid}", groups]
            args += ["--inh-caps=-all", "--bounding-set=-all", "--"]
        return [*args, *argv]


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
