"""providerCommands and acknowledgeProviderCommands refuse callers they are not for."""

from __future__ import annotations

import pytest

from tests.gateway import ALICE, PROVIDER, Gateway, GraphQLError, subscribe

COMMANDS = "subscription { providerCommands { id kind job { id } } }"
ACK = "mutation($ids: [ID!]!) { acknowledgeProviderCommands(input: {ids: $ids}) { acknowledged } }"


async def test_users_may_not_follow_provider_commands(sqlite_gateway: Gateway) -> None:
    async with subscribe(sqlite_gateway, COMMANDS, token=ALICE) as stream:
        with pytest.raises(GraphQLError) as error:
            await stream.next()
    assert error.value.codes == ["FORBIDDEN"]


async def test_an_in_process_provider_has_no_commands_to_follow(sqlite_gateway: Gateway) -> None:
    async with subscribe(sqlite_gateway, COMMANDS, token=PROVIDER) as stream:
        with pytest.raises(GraphQLError) as error:
            await stream.next()
    assert error.value.codes == ["NOT_SUPPORTED"]
    with pytest.raises(GraphQLError) as refused:
        await sqlite_gateway.client(PROVIDER).execute(ACK, {"ids": ["1"]})
    assert refused.value.codes == ["NOT_SUPPORTED"]


async def test_acknowledging_something_that_is_no_command_id_is_bad_input(
    sqlite_gateway: Gateway,
) -> None:
    with pytest.raises(GraphQLError) as error:
        await sqlite_gateway.client(PROVIDER).execute(ACK, {"ids": ["x1"]})
    assert error.value.codes == ["BAD_USER_INPUT"]
