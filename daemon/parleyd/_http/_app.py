"""The HTTP front door's app: routes, the daemon's token, browser origins refused.

Every route is served with and without the ``/v1`` prefix; query strings are ignored.
The token is the daemon's own (the file beside its socket), as ``Authorization:
Bearer`` or ``x-api-key``. A request with an ``Origin`` header comes from a browser
page and is refused: nothing on a web page may reach the user's models.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from . import chat_completions, messages, models, responses
from ._errors import HttpError, render

if TYPE_CHECKING:
    from .._daemon import Daemon

__all__ = ["create_app"]


def create_app(daemon: Daemon) -> Starlette:
    routes = []
    for prefix in ("/v1", ""):
        routes += [
            Route(f"{prefix}/models", models.list_models, methods=["GET"]),
            Route(f"{prefix}/models/{{model_id:path}}", models.get_model, methods=["GET"]),
            Route(f"{prefix}/chat/completions", chat_completions.create, methods=["POST"]),
            Route(f"{prefix}/responses", responses.create, methods=["POST"]),
            Route(f"{prefix}/responses/{{response_id}}", responses.retrieve, methods=["GET"]),
            Route(f"{prefix}/responses/{{response_id}}", responses.delete, methods=["DELETE"]),
            Route(f"{prefix}/responses/{{response_id}}/input_items", responses.input_items, methods=["GET"]),
            Route(f"{prefix}/messages", messages.create, methods=["POST"]),
            Route(f"{prefix}/messages/count_tokens", messages.count_tokens, methods=["POST"]),
        ]
    app = Starlette(routes=routes, middleware=[Middleware(_Guard, token=daemon.token)])
    app.state.daemon = daemon
    return app


class _Guard:
    """Plain ASGI, so that streamed responses and client disconnects pass through untouched."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            refused = None
            if headers.get("origin") is not None:
                refused = HttpError(403, "permission_error", "requests from browser pages are refused")
            elif not _authorized(headers, self.token):
                refused = HttpError(401, "invalid_api_key", "the daemon's token is needed, as `Authorization: Bearer TOKEN` or `x-api-key`")
            if refused is not None:
                return await render(scope["path"], headers, refused)(scope, receive, send)
        await self.app(scope, receive, send)


def _authorized(headers: Headers, token: str) -> bool:
    given = headers.get("x-api-key")
    bearer = headers.get("authorization", "")
    if given is None and bearer[:7].lower() == "bearer ":
        given = bearer[7:].strip()
    return given is not None and secrets.compare_digest(given.encode(), token.encode())
