"""Carried strings: an update log entry stores what its update changed, not the whole status.

A job's status after each update is stored with its entry (readers need the job as it was).
Its two strings, `outputFolder` and `providerGeneratedId`, can be kilobytes long and rarely
change, so an entry holds them only when it **carries** them: the job's first entry, and every
entry whose update sets one of them. Every other entry omits them; a reader takes them from the
newest carrying entry before it:

- within what it read (entries of one job come in order and without gaps), or else
- from the job itself, when no entry after the ones read carried them: the job remembers the
  position of its newest carrying entry (`carried_since`; 0 for jobs stored before this
  format, whose every entry carries), or else
- from a lookup of the newest carrying entry before them (history older than the strings'
  last change: rare).

Entries written before this format all carry their strings, so old stores read as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jobgate.domain.job import JobStatus, JobUpdate, UpdateRequest
from jobgate.storage.codec import Doc, status_from_doc

CARRIED_KEYS = ("outputFolder", "providerGeneratedId")


@dataclass(frozen=True, slots=True)
class Carried:
    """A job's carried strings at some point of its history."""

    output_folder: str | None = None
    provider_generated_id: str | None = None

    @classmethod
    def of(cls, status_doc: Doc) -> Carried:
        return cls(status_doc["outputFolder"], status_doc["providerGeneratedId"])


NOTHING = Carried()


@dataclass(frozen=True, slots=True)
class JobBase:
    """What a job itself says: its strings now, and where they were last carried."""

    carried_since: int
    strings: Carried


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as read: its status document may lack the carried strings."""

    seq: int
    job_id: str
    timestamp: int
    request: UpdateRequest
    status_doc: Doc
    version: int | None = None  # where the store keeps it (MongoDB)


def carries(request: UpdateRequest, *, first: bool) -> bool:
    """Whether an entry for this update holds the carried strings."""
    return first or request.output_folder is not None or request.provider_generated_id is not None


def entry_status_doc(status_doc: Doc, request: UpdateRequest, *, first: bool) -> Doc:
    """The status document to store with an entry: without the strings unless it carries."""
    if carries(request, first=first):
        return status_doc
    return {key: value for key, value in status_doc.items() if key not in CARRIED_KEYS}


def is_carrier(status_doc: Doc) -> bool:
    return CARRIED_KEYS[0] in status_doc


def carrying(status_doc: Doc, carrier: Doc) -> Doc:
    """`status_doc` made to carry: its own strings if it has them, else `carrier`'s (the
    newest carrying entry before it). Retention does this to a job's first kept entry when it
    removes the entries before it, so no reader has to look further back than the log goes."""
    if is_carrier(status_doc):
        return status_doc
    return {**status_doc, **{key: carrier[key] for key in CARRIED_KEYS}}


def lookups_needed(
    entries: Sequence[StoredEntry], bases: Mapping[str, JobBase | None]
) -> dict[str, StoredEntry]:
    """Per job, the entry before which the strings must be looked up (see the module); jobs
    absent from `bases`, or None there, cannot vouch for their strings."""
    first_of: dict[str, StoredEntry] = {}
    leading_carrier: dict[str, bool] = {}
    for entry in entries:
        if entry.job_id not in first_of:
            first_of[entry.job_id] = entry
            leading_carrier[entry.job_id] = is_carrier(entry.status_doc)
    needed: dict[str, StoredEntry] = {}
    for job_id, first in first_of.items():
        if leading_carrier[job_id]:
            continue
        base = bases.get(job_id)
        if base is None or first.seq < base.carried_since:
            needed[job_id] = first
    return needed


def completed(
    entries: Sequence[StoredEntry],
    bases: Mapping[str, JobBase | None],
    looked_up: Mapping[str, Carried],
) -> list[JobUpdate]:
    """The entries as updates with whole statuses, in their order."""
    running: dict[str, Carried] = {}
    for job_id, base in bases.items():
        if base is not None:
            running[job_id] = base.strings
    running.update(looked_up)  # where the job could not vouch, the lookup did
    updates: list[JobUpdate] = []
    for entry in entries:
        doc = entry.status_doc
        if is_carrier(doc):
            running[entry.job_id] = Carried.of(doc)
            status = status_from_doc(doc)
        else:
            strings = running.get(entry.job_id, NOTHING)
            status = status_from_doc(
                {
                    **doc,
                    "outputFolder": strings.output_folder,
                    "providerGeneratedId": strings.provider_generated_id,
                }
            )
        updates.append(JobUpdate(entry.seq, entry.job_id, entry.timestamp, entry.request, status))
    return updates


def jobs_needing_bases(entries: Sequence[StoredEntry]) -> list[str]:
    """Jobs whose first entry read does not carry the strings."""
    seen: set[str] = set()
    needing: list[str] = []
    for entry in entries:
        if entry.job_id in seen:
            continue
        seen.add(entry.job_id)
        if not is_carrier(entry.status_doc):
            needing.append(entry.job_id)
    return needing


def whole(status: JobStatus) -> Carried:
    """A job's strings as its current status holds them."""
    return Carried(status.output_folder, status.provider_generated_id)
