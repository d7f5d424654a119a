"""The first thing a user does: submit echo and watch it finish."""

from __future__ import annotations

from tests.api.documents import latest_cursor
from tests.gateway import ALICE, Gateway, subscribe

SUBMIT = """
mutation Submit($input: SubmitJobsInput!) {
  submitJobs(input: $input) {
    jobs { id status { state } }
    userErrors { index field code message jobId }
  }
}
"""

WATCH = """
subscription Watch($ids: [ID!], $after: String) {
  jobUpdates(jobIds: $ids, after: $after) {
    cursor jobId stateAfter update { state status cursor }
    job { id status { state isFinal } }
  }
}
"""


def echo(message: str = "hello") -> dict[str, object]:
    return {
        "application": {"name": "echo", "version": "1"},
        "product": {"id": "cpu-small", "category": "cpu", "provider": "local"},
        "parameters": [{"name": "message", "value": {"text": message}}],
    }


async def test_echo_runs_and_the_subscription_sees_running_then_success(gateway: Gateway) -> None:
    alice = gateway.client(ALICE)
    after = await latest_cursor(alice)
    async with subscribe(gateway, WATCH, {"after": after}) as live:
        submitted = await alice.execute(SUBMIT, {"input": {"jobs": [echo()]}})
        job_id = submitted["submitJobs"]["jobs"][0]["id"]
        events = await live.take(3)
    assert [e["jobUpdates"]["jobId"] for e in events] == [job_id] * 3
    assert [e["jobUpdates"]["stateAfter"] for e in events] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    assert events[2]["jobUpdates"]["update"]["status"] == "The program exited with code 0"
    data = await alice.execute(
        "query($id: ID!) { job(id: $id) { updates { state status } } }", {"id": job_id}
    )
    assert [u["state"] for u in data["job"]["updates"]] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
