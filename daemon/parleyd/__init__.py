"""parleyd: the parley daemon — connections, live responses, models, store and CLI."""

from ._config import DaemonConfig
from ._daemon import Daemon, create_daemon

__all__ = ["Daemon", "DaemonConfig", "create_daemon"]
