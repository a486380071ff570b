"""Where to connect, the ``initialize`` handshake, and starting the daemon when none runs."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from .._errors import ConnectError
from .._paths import read_token, runtime_dir, socket_path
from .._types import PROTOCOL_VERSION, ClientInfo, InitializeParams, InitializeResult
from ._transports.unix import AsyncUnixTransport, UnixTransport

if TYPE_CHECKING:
    import subprocess

#: Seconds to wait for a daemon this client started to listen on its socket.
START_TIMEOUT = 15.0
_POLL_INTERVAL = 0.05
_EXITED_GRACE = 2.0
_NOT_LISTENING = (FileNotFoundError, ConnectionRefusedError)

#: The daemons this process started, kept so that their handles are not collected (and warned about) while they run.
_started: list[subprocess.Popen[bytes]] = []


class Target(NamedTuple):
    scheme: str  # "unix", "tcp" or "ws"
    address: Any  # a socket path, a (host, port) pair, or a ws:// URL
    is_default: bool  # the daemon's own socket: the one place where starting it helps

    def __str__(self) -> str:
        if self.scheme == "tcp":
            host, port = self.address
            return f"tcp://{host}:{port}"
        return str(self.address)


def parse_target(url: str | os.PathLike[str] | None) -> Target:
    """``None`` (the default socket), ``unix:///path``, a plain path, ``tcp://host:port`` or ``ws://...``."""
    default = str(socket_path())
    if url is None:
        return Target("unix", default, True)
    url = os.fspath(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return Target("unix", url, url == default)
    if scheme == "unix":
        return Target("unix", rest, rest == default)
    if scheme == "tcp":
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise ValueError(f"a TCP address needs a host and a port, as in tcp://127.0.0.1:7000, not {url!r}")
        return Target("tcp", (parts.hostname, parts.port), False)
    if scheme in ("ws", "wss"):
        return Target("ws", url, False)
    raise ValueError(f"cannot connect to {url!r}: use unix://, tcp:// or ws://")


def transport_class(scheme: str, asynchronous: bool) -> Any:
    """The transport for a scheme. Only the unix one is imported up front: the CLI's start-up
    time is mostly imports, and it talks to the daemon's own socket."""
    if scheme == "ws":
        from ._transports.websocket import AsyncWebSocketTransport, WebSocketTransport

        return AsyncWebSocketTransport if asynchronous else WebSocketTransport
    if scheme == "tcp":
        from ._transports.tcp import AsyncTcpTransport, TcpTransport

        return AsyncTcpTransport if asynchronous else TcpTransport
    return AsyncUnixTransport if asynchronous else UnixTransport


def initialize_params(target: Target, token: str | None, client_name: str) -> InitializeParams:
    from .. import __version__

    if token is None and target.scheme != "unix":
        token = read_token()  # TCP and WebSocket need it; a unix socket is guarded by its file mode
    return InitializeParams(
        protocol_version=PROTOCOL_VERSION,
        client_info=ClientInfo(name=client_name, version=__version__),
        auth_token=token,
    )


def check_initialized(result: InitializeResult) -> InitializeResult:
    if result.protocol_version != PROTOCOL_VERSION:
        raise ConnectError(
            f"the daemon speaks protocol version {result.protocol_version}, this client {PROTOCOL_VERSION}"
        )
    return result


class Starter:
    """Turns failed attempts to connect into waits: the first one on the daemon's own socket starts it.

    The sync and async clients share it; they differ only in how they sleep::

        while True:
            try:
                return open(target)
            except OSError as exc:
                sleep(starter.retry_after(exc))
    """

    def __init__(self, target: Target, autostart: bool) -> None:
        self.target = target
        self.enabled = autostart and target.is_default
        self._process: subprocess.Popen[bytes] | None = None
        self._deadline = 0.0
        self._log = runtime_dir() / "parleyd.log"

    def retry_after(self, exc: OSError) -> float:
        """Seconds to wait before the next attempt; ConnectError when there is no point."""
        if not isinstance(exc, _NOT_LISTENING):
            raise ConnectError(f"cannot connect to the parley daemon at {self.target}: {exc}") from exc
        if not self.enabled:
            off = " (autostart is off)" if self.target.is_default else ""
            raise ConnectError(f"no parley daemon listens at {self.target}{off}") from exc
        if self._process is None:
            self._process = self._spawn()
            self._deadline = time.monotonic() + START_TIMEOUT
            return _POLL_INTERVAL
        status = self._process.poll()
        if status is not None:  # it may have found another daemon starting: give that one a moment
            self._deadline = min(self._deadline, time.monotonic() + _EXITED_GRACE)
        if time.monotonic() > self._deadline:
            if status is None:
                failure = f"did not listen at {self.target} within {START_TIMEOUT:.0f} s"
            else:
                failure = f"exited with status {status} while starting"
            raise ConnectError(f"the parley daemon {failure}; see {self._log}")
        return _POLL_INTERVAL

    def _spawn(self) -> subprocess.Popen[bytes]:
        """``python -m parleyd serve``, detached: its own session, output to the log beside the socket."""
        import subprocess

        with open(self._log, "ab") as log:
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "parleyd", "serve"],
                    # not the client's folder: `-m` puts it first on sys.path, where a folder
                    # named parley would shadow the package, and a daemon should hold no cwd
                    cwd=self._log.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ConnectError(f"could not start the parley daemon: {exc}") from exc
        _started.append(process)
        return process
