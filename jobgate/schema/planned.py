"""Planned completion of object subtrees: graphql-core's answer, without its per-field machinery.

graphql-core completes every field of a result the same general way: it looks the field up,
builds a resolve info, asks the resolver, checks for an awaitable, and walks `complete_value`
through the field's type wrappers. For `jobs(first: 100)` that is some 3,100 fields at ~5 µs
each, most of them attributes of jobgate's eagerly built Strawberry objects. A plan does that
work once per selection and operation: each field becomes a small closure that reads the
attribute (or calls the field's resolver, with a real info, where it has one) and completes
the value for exactly its type.

A plan is only ever an optimisation of graphql-core's own result. It completes a value when
it can do so exactly as graphql-core would, and declines (`Decline`) the moment it cannot:
a resolver that raises, a null where the type says non-null, a value a scalar will not
serialise, a list that is not a list. The executor then completes the whole subtree again with
graphql-core, which reports the error with its path and propagates nulls as the spec says.
The first attempt leaves nothing behind: its errors, if any, were recorded by graphql-core at
the same positions the second attempt records them, and graphql-core keeps one error per
position. Resolvers may run twice on that path; queries' resolvers only read.

Fields a plan does not complete itself are handed to graphql-core's `complete_value`, with
the value the plan resolved: abstract types (unions) and object types with an `is_type_of`.

A field may also say how to resolve it for many objects at once (`BATCHED` in its Strawberry
metadata: `Job.updates`, for a page of jobs): a plan then resolves it once for all the objects
of the completion that reach it, instead of calling its resolver, with an info and a coroutine
each, once per object. Where that fails, graphql-core completes the subtree again, calling
the field's own resolver for each object.
Subtrees the executor keeps (`Job`s, `jobgate/schema/rendered_jobs.py`) are taken from its
`Keeper` where kept, and left there once completed without an error.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Hashable, Sequence
from inspect import iscoroutine
from typing import Any, NamedTuple, Protocol

from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.execution.values import VariableValues, get_argument_values
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema_converter import GraphQLCoreConverter

FieldDetailsList = list[FieldDetails]


class Decline(Exception):
    """The plan cannot complete this value as graphql-core would; graphql-core completes it."""


class PlanningExecutor(Protocol):
    """What a plan needs of the executor running the operation."""

    schema: GraphQLSchema
    variable_values: VariableValues
    hide_suggestions: bool
    context_value: Any

    def collect_subfields(self, return_type: GraphQLObjectType, field_details_list: Any) -> Any:
        """graphql-core's grouped subfields of `return_type` for this selection (memoised)."""

    def build_resolve_info(
        self,
        field_def: GraphQLField,
        field_nodes: list[FieldNode],
        parent_type: GraphQLObjectType,
        path: Path,
    ) -> GraphQLResolveInfo[Any]:
        """The info a resolver receives."""

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[Any]:
        """graphql-core's completion of `result` for `return_type`."""

    def is_awaitable(self, value: Any) -> bool:
        """Whether `value` is to be awaited."""


Key = tuple[Hashable, ...]

# The Strawberry metadata key of a field resolved for many objects at once: its value is a
# `BatchResolver`.
BATCHED = "jobgate.batched"


class BatchResolver(Protocol):
    """The values of a field for each of `sources`, in their order, given the operation's
    context and the field's arguments (as its resolver would give them one by one)."""

    def __call__(
        self, context: Any, sources: list[Any], /, **arguments: Any
    ) -> Awaitable[list[Any]]:
        """The values, in the order of `sources`."""


class Keeper(Protocol):
    """Where plans take completed subtrees of some object types from, and leave them
    (the executor's kept `Job`s: `jobgate/schema/rendered_jobs.py`)."""

    def keeps(self, object_type: GraphQLObjectType) -> bool:
        """Whether values of `object_type` are kept."""

    def selection(self, field_details_list: FieldDetailsList) -> Key | None:
        """The part of the keys that this selection gives (None: never kept)."""

    def key(self, selection: Key, value: Any) -> Key | None:
        """The key of `value`'s subtree in `selection`; None where it is not kept."""

    def get(self, key: Key) -> dict[str, Any] | None:
        """The kept subtree, if any."""

    def put(self, key: Key, completed: dict[str, Any]) -> None:
        """Keeps a subtree completed without an error."""

    def errors_seen(self) -> int:
        """How many errors the operation has met so far."""


class Run:
    """One completion by a plan: what waits to be awaited, the objects whose batched fields
    wait to be resolved together, and what to keep once complete."""

    __slots__ = ("batches", "pending", "to_keep")

    def __init__(self) -> None:
        self.pending: list[Pending | BatchPending] = []
        self.batches: dict[Batch, list[Waiting]] = {}
        self.to_keep: list[tuple[Key, dict[str, Any]]] = []

    def dispatch(self) -> None:
        """The batches collected so far, each one awaitable in `pending`."""
        for batch, waiting in self.batches.items():
            sources = [item.source for item in waiting]
            awaitable = batch.resolve(batch.context, sources, **batch.arguments)
            self.pending.append(BatchPending(waiting, awaitable, batch.complete))
        self.batches = {}


class Batch:
    """A batched field of one selection: how to resolve it and complete its values. Runs
    gather its objects by the identity of this."""

    __slots__ = ("arguments", "complete", "context", "resolve")

    def __init__(
        self, resolve: BatchResolver, context: Any, arguments: dict[str, Any], complete: Completer
    ) -> None:
        self.resolve = resolve
        self.context = context
        self.arguments = arguments
        self.complete = complete


class Waiting(NamedTuple):
    """An object whose batched field waits for its batch: its value goes to `target[key]`."""

    source: Any
    target: dict[str, Any]
    key: str
    path: Path


class Pending(NamedTuple):
    """A value not there yet: awaited, completed, then written at `target[key]`."""

    target: dict[str, Any] | list[Any]
    key: Any
    awaitable: Awaitable[Any]
    complete: Completer
    path: Path


class BatchPending(NamedTuple):
    """A batch's values, not there yet: awaited, then each completed at the place of the
    object `Waiting` for it."""

    waiting: list[Waiting]
    awaitable: Awaitable[list[Any]]
    complete: Completer


# complete(value, path, run) -> the completed value; what must be awaited goes to `run.pending`
Completer = Callable[[Any, Path, Run], Any]


def _as_is(value: Any, _path: Path, _run: Run) -> Any:
    """The completion of a value graphql-core completed already."""
    return value


class Later(NamedTuple):
    """A value to be awaited before it is complete (a resolver's, or graphql-core's)."""

    awaitable: Awaitable[Any]


# How a plan reads and completes a field (the first item of its entry in `ObjectPlan.fields`).
TYPENAME = 0  # (TYPENAME, key): the object type's name
LEAF = 1  # (LEAF, key, attribute, class served as it is, completer): a scalar or an enum
ATTRIBUTE = 2  # (ATTRIBUTE, key, attribute, completer, may be Later): an object or a list
RESOLVED = 3  # (RESOLVED, key, call, completer, may be Later): a field with a resolver
BATCHED_FIELD = 4  # (BATCHED_FIELD, key, batch): a field resolved with others (`BATCHED`)


class ObjectPlan:
    """The completion of one object type's selection; `complete` fills a dict in the
    selection's order."""

    __slots__ = ("fields", "keeps", "type_name")

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self.fields: list[tuple[Any, ...]] = []
        self.keeps = False  # whether kept types are completed below (their keys need the keeper)

    def complete(self, source: Any, path: Path, run: Run) -> dict[str, Any]:
        """The completed fields of `source` at `path`; what must be awaited first is
        `None` here and in `run.pending`."""
        # The hottest loop of a query: ~30 fields a job. Leaves (most fields) make no path.
        result: dict[str, Any] = {}
        type_name = self.type_name
        for field in self.fields:
            kind = field[0]
            if kind == LEAF:
                value = getattr(source, field[2])
                result[field[1]] = value if value.__class__ is field[3] else field[4](value)
            elif kind == ATTRIBUTE:
                key = field[1]
                field_path = Path(path, key, type_name)
                completed = field[3](getattr(source, field[2]), field_path, run)
                if field[4] and completed.__class__ is Later:
                    run.pending.append(
                        Pending(result, key, completed.awaitable, _as_is, field_path)
                    )
                    completed = None
                result[key] = completed
            elif kind == RESOLVED:
                key = field[1]
                field_path = Path(path, key, type_name)
                value = field[2](source, field_path)
                if value.__class__ is Later:
                    result[key] = None  # holds the selection's order
                    run.pending.append(Pending(result, key, value.awaitable, field[3], field_path))
                    continue
                completed = field[3](value, field_path, run)
                if field[4] and completed.__class__ is Later:
                    run.pending.append(
                        Pending(result, key, completed.awaitable, _as_is, field_path)
                    )
                    completed = None
                result[key] = completed
            elif kind == BATCHED_FIELD:
                key = field[1]
                result[key] = None  # holds the selection's order
                waiting = Waiting(source, result, key, Path(path, key, type_name))
                run.batches.setdefault(field[2], []).append(waiting)
            else:
                result[field[1]] = type_name
        return result


class Planner:
    """Plans of one operation's selections, made on first use and kept for the operation."""

    def __init__(self, executor: PlanningExecutor, keeper: Keeper | None = None) -> None:
        self._executor = executor
        self._keeper = keeper
        self._keeps = False  # whether the plan being made completes a kept type
        # Keyed as graphql-core's own memo: by the list's identity, holding the list.
        self._plans: dict[tuple[GraphQLObjectType, int], tuple[Any, ObjectPlan | None]] = {}

    def plan(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> ObjectPlan | None:
        """The plan of this selection of `return_type`, or None where only graphql-core can
        complete it (an incremental delivery, a field it cannot look up)."""
        key = (return_type, id(field_details_list))
        kept = self._plans.get(key)
        if kept is not None:
            return kept[1]
        self._keeps = False
        made: ObjectPlan | None
        try:
            made = self._object(return_type, field_details_list)
        except Decline:
            made = None
        else:
            made.keeps = self._keeps
        self._plans[key] = (field_details_list, made)
        return made

    def _object(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> ObjectPlan:
        grouped, new_defer_usages, _forbidden = self._executor.collect_subfields(
            return_type, field_details_list
        )
        if new_defer_usages:
            raise Decline
        plan = ObjectPlan(return_type.name)
        for key, details in grouped.items():
            if any(detail.defer_usage is not None for detail in details):
                raise Decline
            name = details[0].node.name.value
            if name == "__typename":
                plan.fields.append((TYPENAME, key))
                continue
            field_def = self._executor.schema.get_field(return_type, name)
            if field_def is None:
                raise Decline
            read = self._read(return_type, field_def, details)
            handed_over = self._needs_graphql_core(field_def.type)
            if handed_over:
                complete = self._handed_over(return_type, field_def, details)
            else:
                complete = self._typed(field_def.type, details)
            if isinstance(read, Batch):
                read.complete = complete
                plan.fields.append((BATCHED_FIELD, key, read))
            elif not isinstance(read, str):
                plan.fields.append((RESOLVED, key, read, complete, handed_over))
            elif handed_over or not is_leaf_type(get_nullable_type(field_def.type)):
                plan.fields.append((ATTRIBUTE, key, read, complete, handed_over))
            else:
                as_is = _SERVED_AS_IS.get(get_nullable_type(field_def.type), _Never)
                plan.fields.append((LEAF, key, read, as_is, _leaf(field_def.type)))
        return plan

    def _read(
        self,
        parent_type: GraphQLObjectType,
        field_def: GraphQLField,
        details: FieldDetailsList,
    ) -> Callable[..., Any] | str | Batch:
        """An attribute's name for a field without a resolver of its own; its `Batch` (to be
        given its completer) for a batched one; else a call of the field's resolver with its
        info and arguments."""
        strawberry_field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        resolve = field_def.resolve
        if (
            getattr(resolve, "_is_default", False)
            and strawberry_field is not None
            and strawberry_field.default_resolver is getattr
        ):
            return str(strawberry_field.python_name)
        if resolve is None:
            raise Decline  # graphql-core's default resolver reads dicts too
        first = details[0]
        try:
            arguments = get_argument_values(
                field_def,
                first.node,
                self._executor.variable_values,
                first.fragment_variable_values,
                self._executor.hide_suggestions,
            )
        except Exception as error:
            raise Decline from error
        executor = self._executor
        batched = getattr(strawberry_field, "metadata", None) or {}
        if BATCHED in batched:
            return Batch(batched[BATCHED], executor.context_value, arguments, _as_is)
        nodes = [detail.node for detail in details]
        is_awaitable = executor.is_awaitable

        def call(source: Any, path: Path) -> Any:
            info = executor.build_resolve_info(field_def, nodes, parent_type, path)
            value = resolve(source, info, **arguments)
            return Later(value) if is_awaitable(value) else value

        return call

    def _needs_graphql_core(self, field_type: GraphQLOutputType) -> bool:
        named: Any = field_type
        while isinstance(named, GraphQLNonNull | GraphQLList):
            named = named.of_type
        if is_abstract_type(named):
            return True
        if is_object_type(named):
            return bool(named.is_type_of)
        return False

    def _typed(self, field_type: GraphQLOutputType, details: FieldDetailsList) -> Completer:
        """The completion of a value of `field_type`, which needs nothing of graphql-core."""
        if is_leaf_type(get_nullable_type(field_type)):
            leaf = _leaf(field_type)
            return lambda value, _path, _run: leaf(value)
        if is_non_null_type(field_type):
            inner = self._typed(field_type.of_type, details)

            def non_null(value: Any, path: Path, run: Run) -> Any:
                if value is None or value is Undefined or isinstance(value, Exception):
                    raise Decline
                return inner(value, path, run)

            return non_null
        if is_list_type(field_type):
            item_type = field_type.of_type
            if is_leaf_type(get_nullable_type(item_type)):
                leaf_item = _leaf(item_type)

                def leaves(value: Any, _path: Path, _run: Run) -> Any:
                    if value is None or value is Undefined:
                        return None
                    if not isinstance(value, list | tuple):
                        raise Decline
                    return [leaf_item(element) for element in value]

                return leaves
            item = self._typed(item_type, details)

            def listed(value: Any, path: Path, run: Run) -> Any:
                if value is None or value is Undefined:
                    return None
                if not isinstance(value, list | tuple):
                    raise Decline  # an error, an iterator or an async one: graphql-core's
                return [
                    item(element, Path(path, index, None), run)
                    for index, element in enumerate(value)
                ]

            return listed
        if is_object_type(field_type):
            plan = self._object(field_type, details)
            complete_fields = plan.complete
            keeper = self._keeper
            selection = None
            if keeper is not None and keeper.keeps(field_type):
                selection = keeper.selection(details)
            if keeper is None or selection is None:

                def object_value(value: Any, path: Path, run: Run) -> Any:
                    if value is None or value is Undefined:
                        return None
                    if isinstance(value, Exception):
                        raise Decline
                    return complete_fields(value, path, run)

                return object_value
            self._keeps = True
            get, key_of = keeper.get, keeper.key

            def kept_value(value: Any, path: Path, run: Run) -> Any:
                if value is None or value is Undefined:
                    return None
                if isinstance(value, Exception):
                    raise Decline
                key = key_of(selection, value)
                if key is None:
                    return complete_fields(value, path, run)
                kept = get(key)
                if kept is not None:
                    return kept
                completed = complete_fields(value, path, run)
                run.to_keep.append((key, completed))  # once complete, and if without an error
                return completed

            return kept_value
        raise Decline  # pragma: no cover - every output type is one of the above

    def _handed_over(
        self, parent_type: GraphQLObjectType, field_def: GraphQLField, details: FieldDetailsList
    ) -> Completer:
        """graphql-core's completion of the field's value (it records a nullable error
        itself, and raises a non-null one, which declines this plan)."""
        executor = self._executor
        nodes = [detail.node for detail in details]
        return_type = field_def.type

        def handed_over(value: Any, path: Path, _run: Run) -> Any:
            info = executor.build_resolve_info(field_def, nodes, parent_type, path)
            completed = executor.complete_value(return_type, details, info, path, value, None)
            if executor.is_awaitable(completed):
                return Later(completed)
            return completed

        return handed_over


class _Never:
    """The class of no value: a leaf whose values are all serialised."""


# Scalars whose serialisation is the value itself when it is of exactly this class.
_SERVED_AS_IS: dict[Any, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


def _leaf(field_type: GraphQLOutputType) -> Callable[[Any], Any]:
    """The completion of a scalar's or an enum's value, as graphql-core's `complete_value`
    (nulls, errors, serialisation) for exactly that type."""
    non_null = is_non_null_type(field_type)
    leaf_type = get_nullable_type(field_type)
    assert isinstance(leaf_type, GraphQLLeafType)
    serialize: Callable[[Any], Any] = leaf_type.serialize
    if isinstance(leaf_type, GraphQLEnumType):
        serialize = _by_member(serialize)

    def leaf(value: Any) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise Decline
            return None
        if isinstance(value, Exception):
            raise Decline
        serialized = serialize(value)
        if serialized is None or serialized is Undefined:
            raise Decline
        return serialized

    return leaf


def _by_member(serialize: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An enum's serialisation remembered by member (Strawberry's searches all its values)."""
    names: dict[enum.Enum, Any] = {}

    def serialize_member(value: Any) -> Any:
        if not isinstance(value, enum.Enum):
            return serialize(value)
        name = names.get(value)
        if name is None:
            name = names[value] = serialize(value)
        return name

    return serialize_member


def run(
    plan: ObjectPlan, source: Any, path: Path, keeper: Keeper | None = None
) -> AwaitableOrValue[dict[str, Any]]:
    """The completed subtree of `source` by `plan`. Raises `Decline` (or a resolver's error),
    at once or from the returned awaitable, where graphql-core must complete it. The kept
    types' subtrees it completed are given to `keeper` once all is complete, if the operation
    met no error meanwhile (graphql-core may have recorded one in a part handed to it)."""
    done = Run()
    errors_before = 0 if keeper is None else keeper.errors_seen()
    try:
        result = plan.complete(source, path, done)
    except BaseException:
        _close(done.pending)
        raise
    if done.batches:
        done.dispatch()
    if done.pending:
        return _drain(result, done, keeper, errors_before)
    keep(done.to_keep, keeper, errors_before)
    return result


def keep(
    completed: Sequence[tuple[Key, dict[str, Any]]], keeper: Keeper | None, errors_before: int
) -> None:
    """Gives `keeper` the subtrees completed since the operation had met `errors_before`
    errors, if it met none since."""
    # Another subtree's error counts too: then nothing is kept, which is only slower.
    if keeper is not None and completed and keeper.errors_seen() == errors_before:
        for key, subtree in completed:
            keeper.put(key, subtree)


async def _drain(
    result: dict[str, Any], done: Run, keeper: Keeper | None, errors_before: int
) -> dict[str, Any]:
    """Awaits what the plan left pending, completes it, and so on until nothing is."""
    pending = done.pending
    try:
        while pending:
            awaited = list(pending)
            pending.clear()
            if len(awaited) == 1:
                values: list[Any] = [await awaited[0].awaitable]
            else:
                # All awaited, even after a failure: none is left running unobserved.
                values = await asyncio.gather(
                    *(item.awaitable for item in awaited), return_exceptions=True
                )
                for value in values:
                    if isinstance(value, BaseException):
                        raise value
            for item, value in zip(awaited, values, strict=True):
                if isinstance(item, BatchPending):
                    _complete_batch(item, value, done)
                    continue
                completed = item.complete(value, item.path, done)
                if completed.__class__ is Later:
                    pending.append(
                        Pending(item.target, item.key, completed.awaitable, _as_is, item.path)
                    )
                    completed = None
                item.target[item.key] = completed
            if done.batches:
                done.dispatch()
    except BaseException:
        _close(pending)
        raise
    keep(done.to_keep, keeper, errors_before)
    return result


def _complete_batch(item: BatchPending, values: Any, run: Run) -> None:
    """Completes a batch's values, each at the place of the object it was resolved for."""
    waiting = item.waiting
    if not isinstance(values, list) or len(values) != len(waiting):
        raise Decline  # not one value per object: graphql-core resolves them one by one
    complete = item.complete
    for (_source, target, key, path), value in zip(waiting, values, strict=True):
        completed = complete(value, path, run)
        if completed.__class__ is Later:
            run.pending.append(Pending(target, key, completed.awaitable, _as_is, path))
            completed = None
        target[key] = completed


def _close(pending: list[Pending | BatchPending]) -> None:
    """Coroutines that will never be awaited are closed (no 'never awaited' warning)."""
    for item in pending:
        if iscoroutine(item.awaitable):
            item.awaitable.close()
    pending.clear()
