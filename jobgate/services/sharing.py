"""Sharing jobs: UCloud's `updateAcl`, in bulk. Who may share what is `jobgate.access`'s rule;
this applies the changes, each as one compare-and-set of the job's ACL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobgate.access import Projects, User, acl_problem, changed_acl, permissions_on
from jobgate.domain.acl import ALL_MEMBERS, AclEntity, AclEntry, Permission
from jobgate.domain.job import Job
from jobgate.domain.paths import FOLDER_NAME
from jobgate.errors import StoreUnavailable, UserErrorCode, UserProblem
from jobgate.services.jobs import MAX_BULK_ITEMS, Outcome
from jobgate.storage.base import JobStore

# Entries one change may add or remove; a job's whole ACL is bounded as well.
MAX_ENTRIES_PER_CHANGE = 100
MAX_ACL_ENTRIES = 200
# Compare-and-set attempts against concurrent changes of one job's ACL.
MAX_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class AclChange:
    job_id: str
    added: Sequence[AclEntry] = ()
    deleted: Sequence[AclEntity] = ()


class SharingService:
    def __init__(self, store: JobStore, projects: Projects) -> None:
        self.store = store
        self.projects = projects

    async def update_acl(self, user: User, changes: Sequence[AclChange]) -> Outcome:
        """Apply each change the caller has ADMIN on; the rest answer with a problem. The jobs
        changed come back as they are now."""
        if not 1 <= len(changes) <= MAX_BULK_ITEMS:
            too_many = UserProblem(
                UserErrorCode.TOO_MANY_ITEMS,
                f"change between 1 and {MAX_BULK_ITEMS} jobs at a time",
                field=("changes",),
            )
            return Outcome([], [too_many])
        found = {job.id: job for job in await self.store.get_jobs([c.job_id for c in changes])}
        changed: list[str] = []
        problems: list[UserProblem] = []
        for index, change in enumerate(changes):
            job = found.get(change.job_id)
            granted = [] if job is None else permissions_on(user, job)
            if job is None or Permission.READ not in granted:
                problems.append(
                    UserProblem(
                        UserErrorCode.NOT_FOUND,
                        f"no job {change.job_id}",
                        index,
                        ("changes", str(index), "jobId"),
                        change.job_id,
                    )
                )
                continue
            if Permission.ADMIN not in granted:
                problems.append(
                    UserProblem(
                        UserErrorCode.FORBIDDEN,
                        "sharing a job needs ADMIN on it (its project's PIs and admins, or the"
                        " creator of a personal job)",
                        index,
                        ("changes", str(index), "jobId"),
                        change.job_id,
                    )
                )
                continue
            problem = (
                self._problem(index, change, job.owner.project)
                or self._entity_problem(index, change, job)
                or await self._apply(index, change)
            )
            if problem is not None:
                problems.append(problem)
            else:
                changed.append(change.job_id)
        now = {job.id: job for job in await self.store.get_jobs(changed)}
        return Outcome([now[job_id] for job_id in changed if job_id in now], problems)

    def _problem(self, index: int, change: AclChange, project: str | None) -> UserProblem | None:
        """Bounds and names: a change of a bounded size, naming users and groups that can be."""
        if len(change.added) + len(change.deleted) > MAX_ENTRIES_PER_CHANGE:
            return UserProblem(
                UserErrorCode.TOO_MANY_ITEMS,
                f"add and remove at most {MAX_ENTRIES_PER_CHANGE} entries at a time",
                index,
                ("changes", str(index)),
            )
        named = [("added", i, e.entity) for i, e in enumerate(change.added)]
        named += [("deleted", i, entity) for i, entity in enumerate(change.deleted)]
        for part, position, entity in named:
            field = ("changes", str(index), part, str(position))
            names = (
                [entity.username] if entity.username is not None else [entity.project, entity.group]
            )
            if not all(name is not None and FOLDER_NAME.fullmatch(name) for name in names):
                return UserProblem(
                    UserErrorCode.INVALID_PARAMETER,
                    "not a valid username, project id or group name",
                    index,
                    (*field, "entity"),
                )
            if entity.username is None and project is not None and entity.project == project:
                assert entity.group is not None
                if entity.group not in self.projects.groups_of(project) | {ALL_MEMBERS}:
                    return UserProblem(
                        UserErrorCode.INVALID_PARAMETER,
                        f"project '{project}' has no group '{entity.group}'",
                        index,
                        (*field, "entity", "projectGroup", "group"),
                    )
        return None

    def _entity_problem(self, index: int, change: AclChange, job: Job) -> UserProblem | None:
        for position, entry in enumerate(change.added):
            message = acl_problem(job, entry.entity, sorted(entry.permissions))
            if message is not None:
                return UserProblem(
                    UserErrorCode.INVALID_PARAMETER,
                    message,
                    index,
                    ("changes", str(index), "added", str(position)),
                    job.id,
                )
        return None

    async def _apply(self, index: int, change: AclChange) -> UserProblem | None:
        for _attempt in range(MAX_ATTEMPTS):
            (job,) = await self.store.get_jobs([change.job_id]) or (None,)
            if job is None:
                return UserProblem(UserErrorCode.NOT_FOUND, f"no job {change.job_id}", index)
            acl = changed_acl(job.acl, change.added, change.deleted)
            if len(acl) > MAX_ACL_ENTRIES:
                return UserProblem(
                    UserErrorCode.TOO_MANY_ITEMS,
                    f"a job's ACL holds at most {MAX_ACL_ENTRIES} entries",
                    index,
                    ("changes", str(index), "added"),
                    job.id,
                )
            if acl == job.acl or await self.store.update_acl(job, acl):
                return None
        raise StoreUnavailable("the job's ACL is changing too often; try again")
