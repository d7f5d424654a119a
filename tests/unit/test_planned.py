"""Plans (`jobgate/schema/planned.py`) answer exactly what graphql-core answers: the same data
and the same errors, with their messages, paths and locations, for every shape of selection and
every way a field can fail. Each document runs on a schema whose queries are planned and on the
same schema completed by graphql-core alone, and the two answers are compared whole."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Annotated, Any

import pytest
import strawberry
from strawberry.types import ExecutionResult

from jobgate.schema.executor import GraphqlCoreExecutor, JobgateExecutor
from jobgate.schema.planned import BATCHED
from jobgate.schema.rendered_jobs import RenderedJobs
from jobgate.storage.sqlite import SqliteJobStore


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


# The leaves each batch resolved, by name, call by call.
BATCH_CALLS: list[list[str]] = []


async def weights(_context: Any, leaves: list[Leaf], per: int = 1) -> list[int]:
    BATCH_CALLS.append([leaf.name for leaf in leaves])
    await asyncio.sleep(0)
    return [len(leaf.name) * per for leaf in leaves]


async def broken_batch(_context: Any, leaves: list[Leaf]) -> list[int]:
    raise ValueError("the batch broke")


async def one_short(_context: Any, leaves: list[Leaf]) -> list[int]:
    return [1 for _ in leaves[1:]]


# Field metadata (as the schema's own `Job.updates` has it).
BY_WEIGHTS: dict[str, object] = {BATCHED: weights}
BY_BROKEN_BATCH: dict[str, object] = {BATCHED: broken_batch}
BY_ONE_SHORT: dict[str, object] = {BATCHED: one_short}


@strawberry.type
class Leaf:
    name: str
    size: int | None
    colour: Colour
    tags: list[str]

    @strawberry.field
    def broken(self) -> str | None:
        raise ValueError(f"{self.name} is broken")

    @strawberry.field
    def strictly_broken(self) -> str:
        raise ValueError(f"{self.name} is strictly broken")

    @strawberry.field
    async def later(self, times: int = 1) -> str:
        await asyncio.sleep(0)
        return self.name * times

    @strawberry.field
    async def later_broken(self) -> str | None:
        await asyncio.sleep(0)
        raise ValueError(f"{self.name} broke later")

    # Batched (`BATCHED`): what plans resolve for every leaf at once; graphql-core, and plans
    # where the batch fails, call the resolver for each.
    @strawberry.field(metadata=BY_WEIGHTS)
    async def weight(self, per: int = 1) -> int:
        await asyncio.sleep(0)
        return len(self.name) * per

    @strawberry.field(metadata=BY_BROKEN_BATCH)
    async def heavy(self) -> int | None:
        raise ValueError(f"{self.name} is too heavy")

    @strawberry.field(metadata=BY_ONE_SHORT)
    def counted(self) -> int:
        return len(self.name)


@strawberry.type
class Cat:
    name: str


@strawberry.type
class Dog:
    barks: int


Pet = Annotated[Cat | Dog, strawberry.union("Pet")]


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Person(Named):
    age: int


@strawberry.type(name="Job")
class Kept:
    """Named as the type whose subtrees the executor keeps: plans look each up (after the
    store's log horizon is read) and complete it where it is not kept (these never are: only
    jobgate's jobs have keys)."""

    name: str

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return self.name.upper()


@strawberry.type
class Tree:
    kept: Kept
    all_kept: list[Kept]
    leaves: list[Leaf]
    maybe_leaves: list[Leaf | None] | None
    pets: list[Pet]
    owner: Named
    missing: Leaf
    missing_maybe: Leaf | None
    size: int


def leaf(name: str, **overrides: Any) -> Leaf:
    values: dict[str, Any] = {"size": len(name), "colour": Colour.RED, "tags": [name, "x"]}
    values.update(overrides)
    return Leaf(name=name, **values)


def tree(**overrides: Any) -> Tree:
    values: dict[str, Any] = {
        "kept": Kept(name="k"),
        "all_kept": [Kept(name="k1"), Kept(name="k2")],
        "leaves": [leaf("a"), leaf("bb", colour=Colour.BLUE, size=None)],
        "maybe_leaves": [leaf("c"), None],
        "pets": [Cat(name="tom"), Dog(barks=3)],
        "owner": Person(name="ann", age=40),
        "missing": leaf("m"),
        "missing_maybe": None,
        "size": 2,
    }
    values.update(overrides)
    return Tree(**values)


TREES: dict[str, Tree] = {
    "plain": tree(),
    "missing": tree(missing=None),
    "bad size": tree(leaves=[leaf("a"), leaf("b", size="not a number")]),
    "null in a non-null list": tree(leaves=[leaf("a"), None]),
    "not a list": tree(leaves="abc"),
    "bad tag": tree(leaves=[leaf("a", tags=["ok", None])]),
    "tags not a list": tree(leaves=[leaf("a", tags="xyz")]),
    "bad enum": tree(leaves=[leaf("a", colour="GREEN")]),
    "error as a value": tree(missing_maybe=ValueError("an error as a value")),
}


@strawberry.type
class Query:
    @strawberry.field
    def tree(self, kind: str = "plain") -> Tree:
        return TREES[kind]

    @strawberry.field
    def maybe_tree(self, kind: str = "plain") -> Tree | None:
        return TREES[kind]


class Counting:
    """Counts graphql-core's per-field executions."""

    fields = 0

    def execute_field(self, *args: Any, **kwargs: Any) -> Any:
        type(self).fields += 1
        return super().execute_field(*args, **kwargs)  # type: ignore[misc]


class CountingPlanned(Counting, JobgateExecutor):
    fields = 0


class CountingGraphqlCore(Counting, GraphqlCoreExecutor):
    fields = 0


PLANNED = strawberry.Schema(query=Query, types=[Person], execution_context_class=CountingPlanned)
GRAPHQL_CORE = strawberry.Schema(
    query=Query, types=[Person], execution_context_class=CountingGraphqlCore
)


@pytest.fixture(scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SqliteJobStore]:
    opened = SqliteJobStore(tmp_path_factory.mktemp("planned") / "jobgate.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture(autouse=True)
def context(store: SqliteJobStore) -> None:
    # As the gateway's: with kept renderings, so `Job`s are kept where plans complete them.
    services = SimpleNamespace(rendered_jobs=RenderedJobs(), store=store)
    CONTEXT.services = services


CONTEXT = SimpleNamespace(services=None, identity=None)


async def both(document: str, variables: dict[str, Any] | None = None) -> ExecutionResult:
    """The planned answer, once it was found equal to graphql-core's."""
    planned = await PLANNED.execute(document, variable_values=variables, context_value=CONTEXT)
    reference = await GRAPHQL_CORE.execute(
        document, variable_values=variables, context_value=CONTEXT
    )
    assert planned.data == reference.data
    # Key order too: a client may show fields in the order it asked for them.
    assert repr(planned.data) == repr(reference.data)
    formatted = [error.formatted for error in planned.errors or []]
    assert formatted == [error.formatted for error in reference.errors or []]
    return planned


SHAPES = {
    "fields, aliases, typenames and enums": """
        { tree { __typename size
                 leaves { name size colour tags alias: name __typename }
                 first: maybeLeaves { name } second: maybeLeaves { colour } } }""",
    "aliases named as the plan's own names and Python's keywords": """
        { tree { result: size source: size class: size k0: size v: leaves { p: name run: name } } }""",
    "fragments, spread and inline": """
        query { tree { ...T leaves { ... on Leaf { name } ...L } } }
        fragment T on Tree { size leaves { colour } }
        fragment L on Leaf { tags name }""",
    "unions and interfaces": """
        { tree { pets { __typename ... on Cat { name } ... on Dog { barks } }
                 owner { __typename name ... on Person { age } } } }""",
    "kept types, alone and in lists": """
        { tree { size kept { name later } allKept { later name } leaves { name } } }""",
    "resolvers that wait, with arguments": """
        query($times: Int!) { tree { leaves { later twice: later(times: $times) name } } }""",
    "batched fields, with arguments, in lists and beside others": """
        query($times: Int!) { tree { leaves { weight name double: weight(per: $times) }
                                     maybeLeaves { weight } } }""",
}


@pytest.mark.parametrize("shape", SHAPES)
async def test_every_shape_of_selection_is_answered_as_graphql_core_answers_it(shape: str) -> None:
    result = await both(SHAPES[shape], {"times": 2})
    assert result.errors is None
    assert result.data is not None


async def test_skip_and_include_follow_the_variables() -> None:
    document = """query($a: Boolean!, $b: Boolean!) {
        tree { size @include(if: $a) leaves { name @skip(if: $b) colour } } }"""
    for a in (True, False):
        for b in (True, False):
            await both(document, {"a": a, "b": b})


FAILURES = {
    # (document, tree): what graphql-core reports, and where it propagates the null
    "a nullable resolver raises": ("{ tree { leaves { name broken } } }", "plain"),
    "a non-null resolver raises": ("{ maybeTree { size leaves { strictlyBroken } } }", "plain"),
    "a nullable awaited resolver raises": ("{ tree { leaves { laterBroken later } } }", "plain"),
    "an awaited field beside a failing one": (
        "{ maybeTree { leaves { later strictlyBroken } } }",
        "plain",
    ),
    "null for a non-null object": ("{ maybeTree { size missing { name } } }", "missing"),
    "null for a non-null list item": (
        "{ maybeTree { leaves { name } } }",
        "null in a non-null list",
    ),
    "a list that is not one": ("{ maybeTree { leaves { name } } }", "not a list"),
    "a scalar that does not serialise": ("{ maybeTree { leaves { name size } } }", "bad size"),
    "null in a list of non-null strings": ("{ maybeTree { leaves { tags } } }", "bad tag"),
    "a string for a list of strings": ("{ maybeTree { leaves { tags } } }", "tags not a list"),
    "a value not of the enum": ("{ maybeTree { leaves { colour } } }", "bad enum"),
    "an error returned as the value": (
        "{ tree { size missingMaybe { name } } }",
        "error as a value",
    ),
    "a batch that fails, where each resolver does": ("{ tree { leaves { name heavy } } }", "plain"),
}


@pytest.mark.parametrize("failure", FAILURES)
async def test_every_failure_is_reported_as_graphql_core_reports_it(failure: str) -> None:
    document, kind = FAILURES[failure]
    # The tree is chosen by argument: the same document text for every kind.
    document = document.replace("tree {", f'tree(kind: "{kind}") {{', 1).replace(
        "maybeTree {", f'maybeTree(kind: "{kind}") {{', 1
    )
    result = await both(document)
    assert result.errors, "each of these documents meets an error"


async def test_a_planned_subtree_takes_no_per_field_execution_of_graphql_core() -> None:
    document = SHAPES["fields, aliases, typenames and enums"]
    CountingPlanned.fields = CountingGraphqlCore.fields = 0
    await both(document)
    assert CountingPlanned.fields == 1  # the root's `tree`; the rest by its plan
    # tree, its 5 fields, 6 of each of its 2 leaves, one of each of the 2 `maybeLeaves` selections
    assert CountingGraphqlCore.fields == 20


async def test_a_declined_plan_is_answered_by_graphql_core_for_that_subtree_alone() -> None:
    document = '{ ok: tree { size leaves { name } } broken: maybeTree(kind: "missing") { missing { name } } }'
    CountingPlanned.fields = CountingGraphqlCore.fields = 0
    result = await both(document)
    assert result.data == {
        "ok": {"size": 2, "leaves": [{"name": "a"}, {"name": "bb"}]},
        "broken": None,
    }
    # ok: its root field, the rest planned; broken: its root field, then graphql-core's
    # `missing` (null, so nothing below it) once the plan declined.
    assert CountingPlanned.fields == 3


async def test_mutations_and_documents_of_other_operations_are_left_to_graphql_core() -> None:
    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def grow(self) -> Tree:
            return TREES["plain"]

    schema = strawberry.Schema(
        query=Query, mutation=Mutation, types=[Person], execution_context_class=CountingPlanned
    )
    CountingPlanned.fields = 0
    result = await schema.execute(
        "mutation { grow { size leaves { name } } }", context_value=CONTEXT
    )
    assert result.errors is None
    assert CountingPlanned.fields == 5  # grow, size, leaves and each leaf's name


async def test_a_batched_field_is_resolved_once_for_every_object_of_a_list() -> None:
    document = "{ tree { leaves { name weight heavier: weight(per: 3) } maybeLeaves { weight } } }"
    BATCH_CALLS.clear()
    CountingPlanned.fields = 0
    await PLANNED.execute(document, context_value=CONTEXT)
    # One call per selection of the field: its two leaves, its two with `per: 3`, and the one
    # leaf of `maybeLeaves` (the other is null); none of the leaves' own resolvers.
    assert sorted(BATCH_CALLS) == [["a", "bb"], ["a", "bb"], ["c"]]
    assert CountingPlanned.fields == 1


async def test_a_batch_without_a_value_for_each_object_is_left_to_graphql_core() -> None:
    CountingPlanned.fields = 0
    result = await both("{ tree { leaves { name counted } } }")
    assert result.data == {
        "tree": {"leaves": [{"name": "a", "counted": 1}, {"name": "bb", "counted": 2}]}
    }
    # the root's `tree`, then graphql-core's: `leaves`, and `name` and `counted` of each leaf
    assert CountingPlanned.fields == 6
