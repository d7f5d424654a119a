"""Subscribers share renderings of an event; a document selecting a field whose value depends on
the caller is rendered once per permission set. Such fields must say so
(`DEPENDS_ON_PERMISSIONS`) and depend on nothing else of the caller, or callers would see each
other's view."""

from __future__ import annotations

import inspect

from graphql import GraphQLNamedType, GraphQLObjectType, GraphQLSchema, get_named_type

from jobgate.schema.build import build_schema
from jobgate.schema.context import PERMISSIONS_KEY
from jobgate.streaming.plan import WatchPlanner

CALLER_READS = ("context.identity", "context.caller(", "context.user(", "context.provider(")


def _reachable_from_subscriptions(schema: GraphQLSchema) -> list[GraphQLObjectType]:
    assert schema.subscription_type is not None
    seen: dict[str, GraphQLNamedType] = {}
    pending = [get_named_type(f.type) for f in schema.subscription_type.fields.values()]
    while pending:
        named = pending.pop()
        if named.name in seen:
            continue
        seen[named.name] = named
        if isinstance(named, GraphQLObjectType):
            pending += [get_named_type(f.type) for f in named.fields.values()]
        for member in getattr(named, "types", ()):  # unions
            pending.append(member)
    return [t for t in seen.values() if isinstance(t, GraphQLObjectType)]


def test_every_field_an_event_can_select_that_reads_the_caller_is_marked() -> None:
    schema = build_schema()._schema
    reading, marked = set(), set()
    for object_type in _reachable_from_subscriptions(schema):
        for name, field in object_type.fields.items():
            definition = field.extensions.get("strawberry-definition")
            resolver = getattr(definition, "base_resolver", None)
            if resolver is None:
                continue
            source = inspect.getsource(resolver.wrapped_func)
            if any(read in source for read in CALLER_READS):
                reading.add(f"{object_type.name}.{name}")
            if definition.metadata.get(PERMISSIONS_KEY):
                marked.add(f"{object_type.name}.{name}")
                # What the caller may do is all it looks at.
                assert "permissions_on(" in source, f"{object_type.name}.{name}"
    assert "Job.permissions" in reading  # the check sees what it must
    assert reading <= marked, reading - marked


def test_a_document_selecting_a_marked_field_anywhere_is_rendered_per_permissions() -> None:
    planner = WatchPlanner(build_schema())

    def depends_on_permissions(query: str) -> bool:
        plan = planner.plan(query, None, None)
        assert plan is not None
        return plan.depends_on_permissions

    assert not depends_on_permissions(
        "subscription { jobUpdates { cursor job { id status { state } } } }"
    )
    assert depends_on_permissions("subscription { jobUpdates { job { permissions { myself } } } }")
    assert depends_on_permissions(
        "subscription { jobUpdates { ...E } } "
        "fragment E on JobUpdateEvent { job { ...J } } fragment J on Job { permissions { myself } }"
    )
