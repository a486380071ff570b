"""The HTTP front door: OpenAI-compatible endpoints served by the daemon itself.

One module per API (``chat_completions``, ``models``); each translates to the daemon's own
``prompt`` and store, never a copy of its own. ``_app`` holds the routes and the guard
(token, browser origins), ``_server`` runs uvicorn in the daemon's event loop. Needs the
``[http]`` extra (starlette, uvicorn).
"""

from ._server import HttpServer, listen_http

__all__ = ["HttpServer", "listen_http"]
