"""Plain-dict forms of domain objects, shared by the JSON (SQLite) and BSON (MongoDB) stores."""

from __future__ import annotations

from typing import Any

from jobgate.domain.job import JobSpecification, JobStatus, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.domain.values import (
    NameAndVersion,
    ProductReference,
    SimpleDuration,
    value_from_wire,
    value_to_wire,
)

Doc = dict[str, Any]


def duration_to_doc(duration: SimpleDuration | None) -> Doc | None:
    if duration is None:
        return None
    return {"hours": duration.hours, "minutes": duration.minutes, "seconds": duration.seconds}


def duration_from_doc(doc: Doc | None) -> SimpleDuration | None:
    if doc is None:
        return None
    return SimpleDuration(doc["hours"], doc["minutes"], doc["seconds"])


def spec_to_doc(spec: JobSpecification) -> Doc:
    return {
        "application": {"name": spec.application.name, "version": spec.application.version},
        "product": {
            "id": spec.product.id,
            "category": spec.product.category,
            "provider": spec.product.provider,
        },
        "name": spec.name,
        "replicas": spec.replicas,
        "allowDuplicateJob": spec.allow_duplicate_job,
        # A list, not a mapping: the request's order is part of the specification. Items are
        # documents, not pairs, since FerretDB stores no arrays directly inside arrays.
        "parameters": [
            {"name": name, "value": value_to_wire(value)} for name, value in spec.parameters
        ],
        "resources": [value_to_wire(value) for value in spec.resources],
        "timeAllocation": duration_to_doc(spec.time_allocation),
        "openedFile": spec.opened_file,
        "restartOnExit": spec.restart_on_exit,
        "sshEnabled": spec.ssh_enabled,
    }


def spec_from_doc(doc: Doc) -> JobSpecification:
    return JobSpecification(
        application=NameAndVersion(**doc["application"]),
        product=ProductReference(**doc["product"]),
        name=doc["name"],
        replicas=doc["replicas"],
        allow_duplicate_job=doc["allowDuplicateJob"],
        parameters=tuple((p["name"], value_from_wire(p["value"])) for p in doc["parameters"]),
        resources=tuple(value_from_wire(value) for value in doc["resources"]),
        time_allocation=duration_from_doc(doc["timeAllocation"]),
        opened_file=doc["openedFile"],
        restart_on_exit=doc["restartOnExit"],
        ssh_enabled=doc["sshEnabled"],
    )


def status_to_doc(status: JobStatus) -> Doc:
    return {
        "state": status.state.value,
        "startedAt": status.started_at,
        "allowRestart": status.allow_restart,
        "timeAllocation": duration_to_doc(status.time_allocation),
        "outputFolder": status.output_folder,
        "providerGeneratedId": status.provider_generated_id,
    }


def status_from_doc(doc: Doc) -> JobStatus:
    return JobStatus(
        state=JobState(doc["state"]),
        started_at=doc["startedAt"],
        allow_restart=doc["allowRestart"],
        time_allocation=duration_from_doc(doc["timeAllocation"]),
        output_folder=doc["outputFolder"],
        provider_generated_id=doc["providerGeneratedId"],
    )


def request_to_doc(request: UpdateRequest) -> Doc:
    return {
        "state": None if request.state is None else request.state.value,
        "status": request.status,
        "outputFolder": request.output_folder,
        "expectedState": None if request.expected_state is None else request.expected_state.value,
        "expectedDifferentState": request.expected_different_state,
        "newTimeAllocation": duration_to_doc(request.new_time_allocation),
        "allowRestart": request.allow_restart,
        "providerGeneratedId": request.provider_generated_id,
    }


def request_from_doc(job_id: str, doc: Doc) -> UpdateRequest:
    return UpdateRequest(
        job_id=job_id,
        state=None if doc["state"] is None else JobState(doc["state"]),
        status=doc["status"],
        output_folder=doc["outputFolder"],
        expected_state=None if doc["expectedState"] is None else JobState(doc["expectedState"]),
        expected_different_state=doc["expectedDifferentState"],
        new_time_allocation=duration_from_doc(doc["newTimeAllocation"]),
        allow_restart=doc["allowRestart"],
        provider_generated_id=doc["providerGeneratedId"],
    )
