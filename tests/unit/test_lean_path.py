"""The lean jobUpdates path applies the schema's own rules and extensions, or steps aside; and
the private parts of Strawberry and uvicorn it relies on are still there."""

from __future__ import annotations

import functools
import inspect
import re

import strawberry
from graphql import GraphQLError, ValidationRule, parse
from strawberry.extensions import AddValidationRules, SchemaExtension

from jobgate.resolvers.mutation import Mutation
from jobgate.resolvers.query import Query
from jobgate.resolvers.subscription import Subscription
from jobgate.schema.build import LEAN_PATH_EXTENSIONS, build_schema
from jobgate.schema.scalars import SCALARS
from jobgate.streaming.plan import WatchPlanner

WATCH = "subscription { jobUpdates { jobId } }"
WATCH_AFTER = 'subscription { jobUpdates(after: "5") { jobId } }'


class NoAfter(ValidationRule):
    """A site's own rule: no `after` argument (for the test)."""

    def enter_argument(self, node: object, *_args: object) -> None:
        if getattr(getattr(node, "name", None), "value", None) == "after":
            self.report_error(GraphQLError("no after here"))


class Unknown(SchemaExtension):
    """An extension the lean path knows nothing of."""


def schema_with(*extensions: object) -> strawberry.Schema:
    base = build_schema()
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=strawberry.schema.config.StrawberryConfig(scalar_map=SCALARS),
        extensions=[*base.extensions, *extensions],  # type: ignore[list-item]
    )


def test_the_lean_path_serves_jobupdates_on_the_jobgate_schema() -> None:
    planner = WatchPlanner(build_schema())
    assert planner.enabled
    assert planner.plan(WATCH, None, None) is not None


def test_a_validation_rule_added_to_the_schema_applies_on_the_lean_path() -> None:
    planner = WatchPlanner(schema_with(functools.partial(AddValidationRules, [NoAfter])))
    assert planner.enabled
    assert planner.plan(WATCH, None, None) is not None
    assert planner.plan(WATCH_AFTER, None, None) is None  # Strawberry's path refuses it


def test_an_extension_it_cannot_apply_sends_every_subscription_down_strawberrys_path() -> None:
    planner = WatchPlanner(schema_with(Unknown))
    assert not planner.enabled
    assert planner.unknown_extensions == ["Unknown"]
    assert planner.plan(WATCH, None, None) is None


def test_the_setting_turns_the_lean_path_off() -> None:
    assert WatchPlanner(build_schema(), enabled=False).plan(WATCH, None, None) is None


def test_the_known_extensions_are_the_ones_the_schema_has() -> None:
    for extension in build_schema().extensions:
        assert isinstance(extension(), LEAN_PATH_EXTENSIONS)


def test_the_private_names_of_dependencies_it_relies_on_still_exist() -> None:
    """Each private or internal name jobgate uses; an upgrade that changes one fails here."""
    from strawberry.schema.schema import validate_document
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
        BaseGraphQLTransportWSHandler,
        Operation,
    )
    from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    schema = build_schema()
    assert schema._schema is not None  # graphql-core's schema, executed directly
    # graphql-core's subfield memo, which each subscription event gets afresh (JobgateExecutor)
    executor = schema.execution_context_class.build(schema._schema, parse(WATCH))
    assert not isinstance(executor, list)
    assert isinstance(executor._relevant_sub_fields, dict)
    assert schema.execution_context_class is not None
    assert callable(validate_document)
    for name in ("run_operation", "handle_connection_init", "send_message"):
        assert callable(getattr(BaseGraphQLTransportWSHandler, name)), name
    assert (
        "connection_init_timeout_task" in BaseGraphQLTransportWSHandler.__init__.__code__.co_names
    )
    assert "connection_init_received" in BaseGraphQLTransportWSHandler.__init__.__code__.co_names
    assert callable(Operation.send_operation_message)
    # A parked `LeanWatch` has no task: the handler's `cleanup_operation` ends it, so it must
    # be what both a client's `complete` and the connection's end go through; the operation's
    # `task` is its running task or `None`, and its `query` is set to the renderer's copy.
    assert "operations" in BaseGraphQLTransportWSHandler.__init__.__code__.co_names
    for caller in ("handle_complete", "shutdown"):
        code = getattr(BaseGraphQLTransportWSHandler, caller).__code__
        assert "cleanup_operation" in code.co_names, caller
    assert {"task", "query"} <= set(Operation.__slots__)
    assert callable(BaseGraphQLWSHandler.handle_message)
    for name in ("handle_connect", "start_keepalive"):
        assert callable(getattr(WebSocketsSansIOProtocol, name)), name
    source = inspect.getsource(WebSocketsSansIOProtocol)
    state = ("close_sent", "disconnected", "handshake_complete", "initial_response", "conn")
    for attribute in ("queue", "writable", "request", "response", "scope", "transport", *state):
        assert re.search(rf"self\.{attribute}\b[^=\n]*=", source), attribute


def test_uvicorn_keeps_a_closed_connections_transport_open_only_where_the_outlet_knows() -> None:
    """`ConnectionOutlet` asks the transport whether the connection is closing, and is told
    itself in the one place uvicorn sends a close frame and keeps the transport open (the
    app's `websocket.close`, in `send`) and where it learns of a lost connection; it keeps
    the transport and the websockets state machine the connection was made with."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    sources = {
        name: inspect.getsource(method)
        for name, method in vars(WebSocketsSansIOProtocol).items()
        if callable(method)
    }
    closing = {
        name: source for name, source in sources.items() if "self.close_sent = True" in source
    }
    assert set(closing) == {
        "handle_connect",
        "keepalive_timeout",
        "handle_parser_exception",
        "send",
    }
    for name, source in closing.items():
        if name != "send":
            assert "self.transport.close()" in source, name
    assert "close_timer" in closing["send"]  # the transport stays open until the client replies
    disconnecting = [
        name for name, source in sources.items() if "self.disconnected = True" in source
    ]
    assert disconnecting == ["connection_lost"]
    # The outlet keeps the connection's websockets state machine: made once, never replaced.
    assert [name for name, source in sources.items() if "self.conn =" in source] == ["__init__"]
