"""Reading a gateway's `/metrics` as Prometheus does, for tests that check what it shows."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway import Gateway, http_client

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(gateway: Gateway, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with http_client() as client:
        return await client.get(f"http://127.0.0.1:{gateway.port}/metrics", headers=headers)


async def samples(gateway: Gateway) -> Samples:
    """Every sample of a scrape (from loopback: an operator), by name and labels."""
    response = await scrape(gateway)
    assert response.status_code == 200
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the scrape has no such sample."""
    return found.get((name, frozenset(labels.items())), 0.0)
