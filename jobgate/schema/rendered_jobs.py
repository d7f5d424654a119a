"""Completed `Job` subtrees of queries, reused while the job is what it was.

A page of `jobs(first: 100)` is mostly the same jobs, rendered the same way, request after
request (a dashboard polling, a script paging): graphql-core resolves and completes each of
their fields again every time, some 30 per job. A job's subtree answers the same while these
stay the same, so it is kept under them (`JobgateExecutor` makes the key):

- the selection: a digest of the document's text, the positions of the job's field in it,
  and a digest of the request's variables;
- the job: its id and version (every update of a job raises its version) and its ACL (a share
  changes what `permissions` shows, and not the version);
- the caller, through their permissions on the job, the only way a job's field depends on who
  asks (`DEPENDS_ON_PERMISSIONS`, held to by a test of every resolver that reads the caller);
- the update log's horizon (`JobStore.log_horizon`): retention removing a job's old updates
  leaves its version but raises the horizon.

Only queries use it, and only subtrees that completed without an error. The values are the
completed dicts themselves, shared by every answer that uses them: nothing writes to a
completed value after completion. Bounded by the number of values held, not entries: one job
with thousands of updates weighs what thousands of small jobs do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

RenderingKey = tuple[Hashable, ...]


class RenderedJobs:
    """A least-recently-used store of completed `Job` subtrees, bounded by their values."""

    def __init__(self, most_values: int = 500_000, most_per_job: int = 20_000) -> None:
        self.most_values = most_values
        self.most_per_job = most_per_job  # a bigger subtree is rendered each time
        self.values = 0
        self._entries: OrderedDict[RenderingKey, tuple[int, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: RenderingKey) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: RenderingKey, value: dict[str, Any]) -> None:
        weight = _weight(value, self.most_per_job)
        if weight > self.most_per_job:
            return
        replaced = self._entries.pop(key, None)
        if replaced is not None:
            self.values -= replaced[0]
        self._entries[key] = (weight, value)
        self.values += weight
        while self.values > self.most_values:
            _key, (dropped, _value) = self._entries.popitem(last=False)
            self.values -= dropped


def _weight(value: Any, most: int) -> int:
    """How many values `value` holds (itself included), counting no further than past `most`.

    Asked of every job a query completes afresh: leaves (most values) are counted by their
    container's length, not visited one by one. Completed values are plain dicts and lists."""
    count = 1
    pending = [value]
    while pending and count <= most:
        item = pending.pop()
        kind = item.__class__
        if kind is dict:
            values = item.values()
        elif kind is list:
            values = item
        else:
            continue
        count += len(values)
        for inner in values:
            kind = inner.__class__
            if kind is dict or kind is list:
                pending.append(inner)
    return count
