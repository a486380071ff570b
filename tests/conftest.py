"""One fixture starts a real daemon subprocess serving every transport; tests connect over each.

Nothing is mocked: the daemon is `python -m parleyd serve` with its own
PARLEY_HOME, listening on a unix socket, TCP, WebSocket and its stdio.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from rpc import RawConnection

ROOT = Path(__file__).resolve().parents[1]
TRANSPORTS = ["unix", "tcp", "ws", "stdio"]

# Every daemon the tests start (and those the CLI and the editors start) serves a fixed list of
# models: none from the installed llm plugins, whose tests switch them on (test_llm_plugins.py).
os.environ.setdefault("PARLEY_LLM_PLUGINS", "0")


def missing(what: str) -> NoReturn:
    """A test needs something not installed: a skip on a developer's machine, a failure in CI,
    which installs everything (.ci/run)."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must install it: see .ci/run)", pytrace=False)
    pytest.skip(what, allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DaemonProcess:
    home: Path
    process: subprocess.Popen | None = None
    tcp_port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, PARLEY_HOME=str(self.home), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "protocol"), str(ROOT / "daemon"), env.get("PYTHONPATH", "")])
        return env

    @property
    def socket(self) -> Path:
        return self.home / "run" / "parley.sock"

    @property
    def token(self) -> str:
        return (self.home / "run" / "parley.token").read_text().strip()

    @property
    def log(self) -> str:
        return (self.home / "daemon.log").read_text(errors="replace")

    def pin_echo(self) -> None:
        """Make echo the default model, unless the test wrote a config of its own: the spine's
        tests script echo, whatever else (a local model) is installed."""
        config = self.home / "config" / "config.toml"
        if not config.exists():
            config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            config.write_text('default_model = "echo"\n')

    def start(self) -> None:
        self.pin_echo()
        self.socket.unlink(missing_ok=True)
        args = [sys.executable, "-m", "parleyd", "serve", "--stdio", "--tcp", f"127.0.0.1:{self.tcp_port}", "--ws", f"127.0.0.1:{self.ws_port}", *self.extra_args]
        log = open(self.home / "daemon.log", "ab")
        self.process = subprocess.Popen(args, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        deadline = time.monotonic() + 20
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not start:\n{self.log}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.socket))
                return True
            except OSError:
                return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=15)
        finally:
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe:
                    pipe.close()

    async def connect(self, transport: str, *, initialize: bool = True) -> RawConnection:
        if transport == "unix":
            conn = await RawConnection.unix(str(self.socket))
        elif transport == "tcp":
            conn = await RawConnection.tcp("127.0.0.1", self.tcp_port)
        elif transport == "ws":
            conn = await RawConnection.websocket(f"ws://127.0.0.1:{self.ws_port}")
        elif transport == "stdio":
            conn = await _stdio_connection(self.process)
        else:
            raise ValueError(transport)
        if initialize:
            token = {"authToken": self.token} if transport in ("tcp", "ws") else {}
            await conn.initialize(**token)
        return conn


async def _stdio_connection(process: subprocess.Popen) -> RawConnection:
    """The daemon's own stdin/stdout as a connection (one per daemon process)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(process.stdout.fileno()), "rb", 0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(os.dup(process.stdin.fileno()), "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return RawConnection(reader, writer)


@pytest.fixture
def provider_free_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A daemon home with its config dir, and no provider key or base URL from this machine's
    environment: the built-in OpenAI and Anthropic endpoints serve only what a test sets up."""
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True, mode=0o700)
    return home


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    home = tmp_path / "home"
    home.mkdir()
    proc = DaemonProcess(home)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def http_daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon that also serves the HTTP front door on 127.0.0.1, at ``http_daemon.http_url``."""
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    proc = DaemonProcess(home, extra_args=["--http", f"127.0.0.1:{port}"])
    proc.start()
    proc.http_url = f"http://127.0.0.1:{port}"
    yield proc
    proc.stop()


def openai_endpoint_daemon(home: Path, upstream_url: str, model: str) -> DaemonProcess:
    """A started daemon with ``echo`` as its default and ``model``, an OpenAI-compatible
    ``[[endpoints]]`` model (named ``upstream-mini`` upstream) served by ``upstream_url``,
    its key read from ``PARLEY_TEST_OPENAI_KEY`` (the caller sets it, with monkeypatch)."""
    config = home / "config"
    config.mkdir(parents=True, mode=0o700)
    (config / "config.toml").write_text(
        f"""default_model = "echo"

[[endpoints]]
name = "upstream"
type = "openai"
base_url = "{upstream_url}/v1"
api_key_env = "PARLEY_TEST_OPENAI_KEY"
models = [{model}]
"""
    )
    proc = DaemonProcess(home)
    proc.start()
    return proc


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def conn(daemon: DaemonProcess, transport: str) -> AsyncIterator[RawConnection]:
    connection = await daemon.connect(transport)
    yield connection
    await connection.close()
