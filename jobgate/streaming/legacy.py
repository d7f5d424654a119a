"""`JobgateGraphQLWSHandler`: Strawberry's handler for the legacy graphql-ws protocol, whose
`error` messages carry an `extensions.code` like every other error jobgate sends."""

from __future__ import annotations

from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage

from jobgate.schema.context import Context
from jobgate.streaming.codes import coded


class JobgateGraphQLWSHandler(BaseGraphQLWSHandler[Context, None]):
    async def send_message(self, message: OperationMessage) -> None:
        if message["type"] == "error" and "payload" in message:
            message = {**message, "payload": coded(message["payload"])}
        await super().send_message(message)
