"""GraphQL documents and small client-side helpers, as a frontend or script would write them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.gateway import GraphQLClient

JOB_FIELDS = """
  id
  owner { createdBy project }
  createdAt
  providerGeneratedId
  unixUser
  status { state isFinal startedAt expiresAt allowRestart }
  specification {
    name replicas allowDuplicateJob
    application { name version }
    product { id category provider }
    timeAllocation { hours minutes seconds }
    parameters {
      name
      value {
        __typename
        ... on TextValue { text }
        ... on IntegerValue { integer }
        ... on BooleanValue { boolean }
        ... on FileValue { path readOnly }
      }
    }
  }
  permissions { myself }
  updates { cursor state status timestamp newTimeAllocation { hours minutes seconds } }
"""

SUBMIT = f"""
mutation Submit($input: SubmitJobsInput!) {{
  submitJobs(input: $input) {{
    jobs {{ {JOB_FIELDS} }}
    userErrors {{ index field code message jobId }}
  }}
}}
"""

JOB = f"query Job($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}"

JOBS = """
query Jobs($filter: JobFilter, $orderBy: JobOrder, $first: Int, $after: String) {
  jobs(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    nodes { id specification { name } status { state } }
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

ACTION_RESULT = "jobs { id status { state } } userErrors { index field code message jobId }"
CANCEL = f"mutation($ids: [ID!]!) {{ cancelJobs(input: {{ids: $ids}}) {{ {ACTION_RESULT} }} }}"
SUSPEND = f"mutation($ids: [ID!]!) {{ suspendJobs(input: {{ids: $ids}}) {{ {ACTION_RESULT} }} }}"
RESUME = f"mutation($ids: [ID!]!) {{ resumeJobs(input: {{ids: $ids}}) {{ {ACTION_RESULT} }} }}"
EXTEND = f"""
mutation($requests: [ExtendJobRequest!]!) {{
  extendJobs(input: {{requests: $requests}}) {{ {ACTION_RESULT} }}
}}
"""

REPORT = """
mutation($updates: [JobUpdateInput!]!) {
  reportJobUpdates(input: {updates: $updates}) {
    results { index jobId outcome code message update { cursor state status timestamp } }
  }
}
"""

WATCH = """
subscription Watch($ids: [ID!], $after: String) {
  jobUpdates(jobIds: $ids, after: $after) {
    cursor jobId stateAfter
    update { cursor state status }
    job { id status { state isFinal } }
  }
}
"""


def job_spec(
    app: str = "echo",
    *,
    provider: str = "local",
    product: str = "cpu-small",
    name: str | None = None,
    allow_duplicate: bool = True,
    **parameters: Any,
) -> dict[str, Any]:
    """A JobSpecificationInput; parameters given as Python values become tagged values."""
    values = []
    for key, value in parameters.items():
        if isinstance(value, bool):
            tagged: dict[str, Any] = {"boolean": value}
        elif isinstance(value, int):
            tagged = {"integer": value}
        else:
            tagged = {"text": value}
        values.append({"name": key, "value": tagged})
    spec: dict[str, Any] = {
        "application": {"name": app, "version": "2" if app == "shout" else "1"},
        "product": {"id": product, "category": "cpu", "provider": provider},
        "parameters": values,
        "allowDuplicateJob": allow_duplicate,
    }
    if name is not None:
        spec["name"] = name
    if app == "echo" and "message" not in parameters:
        spec["parameters"] = [{"name": "message", "value": {"text": "hello"}}]
    return spec


async def submit(client: GraphQLClient, *specs: dict[str, Any], **input: Any) -> list[str]:
    """Submit and return the new ids; fails the test on any user error."""
    data = await client.execute(SUBMIT, {"input": {"jobs": list(specs), **input}})
    payload = data["submitJobs"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return [job["id"] for job in payload["jobs"]]


async def get_job(client: GraphQLClient, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] | None = (await client.execute(JOB, {"id": job_id}))["job"]
    return job


async def wait_for_state(
    client: GraphQLClient, job_id: str, *states: str, timeout: float = 20.0
) -> dict[str, Any]:
    """Poll `job(id)` until its state is one of `states`."""
    deadline = time.monotonic() + timeout
    while True:
        job = await get_job(client, job_id)
        assert job is not None
        if job["status"]["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job['status']['state']}, not {states}")
        await asyncio.sleep(0.05)


async def latest_cursor(client: GraphQLClient) -> str:
    """Where a watch that must miss nothing from now on starts (`jobUpdates(after: ...)`)."""
    cursor: str = (await client.execute("{ latestUpdateCursor }"))["latestUpdateCursor"]
    return cursor
