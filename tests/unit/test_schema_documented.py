"""Every public type, field, argument and enum value of the served schema has a description,
as GraphiQL's docs and introspection show it."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
)

from jobgate.schema.build import build_schema as build_jobgate_schema
from jobgate.schema.descriptions import DESCRIPTIONS, element

BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def undocumented(schema: GraphQLSchema) -> list[str]:
    missing: list[str] = []
    for name, named in schema.type_map.items():
        if name.startswith("__") or name in BUILT_IN:
            continue
        if not named.description:
            missing.append(name)
        if isinstance(named, GraphQLObjectType | GraphQLInputObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for argument, definition in getattr(field, "args", {}).items():
                    if not definition.description:
                        missing.append(f"{name}.{field_name}({argument})")
        if isinstance(named, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, d in named.values.items() if not d.description]
    return missing


def test_every_public_element_is_described_as_a_client_sees_it() -> None:
    # Through the SDL, as introspection gives it to a client.
    served = build_schema(build_jobgate_schema().as_str())
    assert undocumented(served) == []


def test_with_sessions_turned_off_every_element_is_described_too() -> None:
    served = build_schema(build_jobgate_schema(sessions=False).as_str())
    assert undocumented(served) == []


def test_the_check_finds_an_undocumented_element() -> None:
    assert undocumented(build_schema("type Query { a(b: Int): Int }")) == [
        "Query",
        "Query.a",
        "Query.a(b)",
    ]


def test_every_description_names_an_element_that_exists() -> None:
    schema = build_jobgate_schema()._schema  # every element there is (sessions included)
    for key in DESCRIPTIONS:
        assert element(schema, key) is not None, key
