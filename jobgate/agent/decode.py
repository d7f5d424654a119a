"""The GraphQL fields an agent reads, and how they become domain objects for its adapter."""

from __future__ import annotations

from typing import Any

from jobgate.domain.catalog import Application, ComputeSupport, Interfaces, Product
from jobgate.domain.job import Job, JobSpecification, JobStatus
from jobgate.domain.states import JobState
from jobgate.domain.timestamps import parse_datetime
from jobgate.domain.values import (
    BlockStorageValue,
    BooleanValue,
    FileValue,
    FloatingPointValue,
    IngressValue,
    IntegerValue,
    LicenseServerValue,
    ModulesValue,
    NameAndVersion,
    NetworkValue,
    ParameterValue,
    PeerValue,
    ProductReference,
    ResourceOwner,
    SimpleDuration,
    TextValue,
)

Json = dict[str, Any]

DURATION = "{ hours minutes seconds }"
JOB_FIELDS = f"""
  id
  createdAt
  providerGeneratedId
  unixUser
  owner {{ createdBy project }}
  status {{ state startedAt allowRestart timeAllocation {DURATION} }}
  specification {{
    name replicas allowDuplicateJob
    application {{ name version }}
    product {{ id category provider }}
    timeAllocation {DURATION}
    parameters {{
      name
      value {{
        __typename
        ... on FileValue {{ path readOnly }}
        ... on BooleanValue {{ boolean }}
        ... on TextValue {{ text }}
        ... on IntegerValue {{ integer }}
        ... on FloatingPointValue {{ floatingPoint }}
        ... on PeerValue {{ hostname jobId }}
        ... on LicenseServerValue {{ licenseServerId }}
        ... on BlockStorageValue {{ blockStorageId }}
        ... on NetworkValue {{ networkId }}
        ... on IngressValue {{ ingressId }}
        ... on ModulesValue {{ modules }}
      }}
    }}
  }}
"""

CATALOG = """
query AgentCatalog {
  applications { name version command }
  myProvider { id kind products { name category provider cpu memoryInGigs gpu network
    support { logs timeExtension suspension } } }
}
"""
# The same, from a gateway that serves interactive sessions (`SERVES_SESSIONS` says whether).
CATALOG_WITH_SESSIONS = """
query AgentCatalog {
  applications { name version command interactive { web vnc keepPrefix } }
  myProvider { id kind products { name category provider cpu memoryInGigs gpu network
    support { logs timeExtension suspension web terminal vnc } } }
}
"""
SERVES_SESSIONS = '{ __type(name: "ProviderCommand") { fields { name } } }'


def serves_sessions(data: Json) -> bool:
    """Whether the gateway's `ProviderCommand` has its `session` (it relays sessions)."""
    fields = (data.get("__type") or {}).get("fields") or []
    return any(field["name"] == "session" for field in fields)


def duration(data: Json | None) -> SimpleDuration | None:
    if data is None:
        return None
    return SimpleDuration(data["hours"], data["minutes"], data["seconds"])


def parameter_value(data: Json) -> ParameterValue:
    match data["__typename"]:
        case "FileValue":
            return FileValue(data["path"], data["readOnly"])
        case "BooleanValue":
            return BooleanValue(data["boolean"])
        case "TextValue":
            return TextValue(data["text"])
        case "IntegerValue":
            return IntegerValue(int(data["integer"]))
        case "FloatingPointValue":
            return FloatingPointValue(float(data["floatingPoint"]))
        case "PeerValue":
            return PeerValue(data["hostname"], data["jobId"])
        case "LicenseServerValue":
            return LicenseServerValue(data["licenseServerId"])
        case "BlockStorageValue":
            return BlockStorageValue(data["blockStorageId"])
        case "NetworkValue":
            return NetworkValue(data["networkId"])
        case "IngressValue":
            return IngressValue(data["ingressId"])
        case "ModulesValue":
            return ModulesValue(tuple(data["modules"]))
    raise ValueError(f"unknown parameter value type {data['__typename']}")


def job(data: Json) -> Job:
    """A job as `JOB_FIELDS` returns it."""
    spec = data["specification"]
    status = data["status"]
    started = status["startedAt"]
    return Job(
        id=data["id"],
        owner=ResourceOwner(data["owner"]["createdBy"], data["owner"]["project"]),
        specification=JobSpecification(
            application=NameAndVersion(spec["application"]["name"], spec["application"]["version"]),
            product=ProductReference(
                spec["product"]["id"], spec["product"]["category"], spec["product"]["provider"]
            ),
            name=spec["name"],
            replicas=spec["replicas"],
            allow_duplicate_job=spec["allowDuplicateJob"],
            parameters=tuple((p["name"], parameter_value(p["value"])) for p in spec["parameters"]),
            time_allocation=duration(spec["timeAllocation"]),
        ),
        status=JobStatus(
            state=JobState(status["state"]),
            started_at=None if started is None else parse_datetime(started),
            allow_restart=status["allowRestart"],
            time_allocation=duration(status["timeAllocation"]),
            provider_generated_id=data["providerGeneratedId"],
        ),
        created_at=parse_datetime(data["createdAt"]),
        unix_user=data["unixUser"],
    )


def applications(data: list[Json]) -> list[Application]:
    return [
        Application(a["name"], a["version"], tuple(a["command"]), interactive=_interfaces(a))
        for a in data
    ]


def _interfaces(data: Json) -> Interfaces:
    served = data.get("interactive")
    if served is None:  # a gateway without sessions
        return Interfaces()
    return Interfaces(web=served["web"], vnc=served["vnc"], keep_prefix=served["keepPrefix"])


def products(data: list[Json]) -> list[Product]:
    return [
        Product(
            name=p["name"],
            category=p["category"],
            provider=p["provider"],
            cpu=p["cpu"],
            memory_in_gigs=p["memoryInGigs"],
            gpu=p["gpu"],
            network=p["network"],
            support=ComputeSupport(
                logs=p["support"]["logs"],
                time_extension=p["support"]["timeExtension"],
                suspension=p["support"]["suspension"],
                web=p["support"].get("web", False),
                terminal=p["support"].get("terminal", False),
                vnc=p["support"].get("vnc", False),
            ),
        )
        for p in data
    ]
