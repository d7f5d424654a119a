"""Factories for domain objects."""

from __future__ import annotations

from jobgate.access import initial_acl
from jobgate.domain.job import JobSpecification
from jobgate.domain.values import NameAndVersion, ProductReference, ResourceOwner, TextValue
from jobgate.storage.base import NewSubmission


def spec(
    app: str = "echo",
    *,
    name: str | None = None,
    provider: str = "local",
    product: str = "cpu-small",
    message: str = "hi",
) -> JobSpecification:
    return JobSpecification(
        application=NameAndVersion(app, "1"),
        product=ProductReference(product, "cpu", provider),
        name=name,
        parameters=(("message", TextValue(message)),),
    )


def submission(
    *specs: JobSpecification,
    user: str = "alice",
    project: str | None = None,
    at: int = 1_000,
    key: str | None = None,
    request_hash: str = "hash",
) -> NewSubmission:
    owner = ResourceOwner(user, project)
    return NewSubmission(
        owner=owner,
        specifications=list(specs) or [spec()],
        created_at=at,
        idempotency_key=key,
        request_hash=request_hash,
        acl=initial_acl(owner),  # as the service gives every job
    )
