"""`openInteractiveSessions` (left out with `[sessions] enabled = false`)."""

from __future__ import annotations

import strawberry

from jobgate.errors import NotSupported
from jobgate.resolvers.audit import audited
from jobgate.resolvers.errors import coded
from jobgate.schema.payloads import UserError
from jobgate.schema.sessions import (
    InteractiveSession,
    OpenInteractiveSessionsInput,
    OpenInteractiveSessionsPayload,
)
from jobgate.schema.types import Info
from jobgate.services.sessions import OpenedSession
from jobgate.sessions.capability import host_session_url


@strawberry.type
class SessionMutation:
    @strawberry.mutation(description="Needs EDIT on a RUNNING job whose product supports the type.")
    @audited("openInteractiveSessions")
    @coded
    async def open_interactive_sessions(
        self, info: Info, input: OpenInteractiveSessionsInput
    ) -> OpenInteractiveSessionsPayload:
        sessions = info.context.services.sessions
        if sessions is None:  # the field is not served then; a direct call is refused too
            raise NotSupported("interactive sessions are not enabled on this gateway")
        outcome = await sessions.open(
            info.context.user(), [request.to_domain() for request in input.sessions]
        )
        # Absolute, as the browser reached this gateway (behind a proxy: as it forwarded), at
        # the session's folder here or on its own host.
        request_url = info.context.request.url
        domain = info.context.services.session_host

        def url_of(opened: OpenedSession) -> str:
            if domain is None:
                return str(info.context.request.base_url).rstrip("/") + opened.url
            return host_session_url(request_url.scheme, request_url.port, domain, opened.capability)

        return OpenInteractiveSessionsPayload(
            sessions=[InteractiveSession.of(opened, url_of(opened)) for opened in outcome.sessions],
            user_errors=[UserError.of(problem) for problem in outcome.problems],
        )
