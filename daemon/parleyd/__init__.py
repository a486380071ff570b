"""parleyd: the parley daemon — connections, live responses, models, store and CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import DaemonConfig
    from ._daemon import Daemon, create_daemon

__all__ = ["Daemon", "DaemonConfig", "create_daemon"]


def __getattr__(name: str) -> Any:
    """Import the daemon on first use: `parley stdio` and the client commands never need
    pygls and lsprotocol, which take most of a cold start."""
    if name == "DaemonConfig":
        from ._config import DaemonConfig

        return DaemonConfig
    if name in ("Daemon", "create_daemon"):
        from . import _daemon

        return getattr(_daemon, name)
    raise AttributeError(f"module 'parleyd' has no attribute {name!r}")
