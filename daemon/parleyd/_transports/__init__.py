"""Connection transports: one small abstract base, one module per concrete transport."""

from ._base import Transport
from ._outbox import Outbox
from .stdio import serve_stdio
from .tcp import listen_tcp
from .unix import listen_unix
from .websocket import listen_websocket

__all__ = ["Outbox", "Transport", "listen_tcp", "listen_unix", "listen_websocket", "serve_stdio"]
