"""``parley serve``: run the daemon in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parley._framing import DEFAULT_MAX_MESSAGE_SIZE
from parley._paths import data_dir, socket_path

from .._config import DaemonConfig
from .._userconfig import config_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the daemon in the foreground")
    p.add_argument("--socket", type=Path, default=None, help="unix socket path (default: in the user's runtime dir)")
    p.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="also listen on TCP (token required)")
    p.add_argument("--ws", type=_host_port, metavar="HOST:PORT", help="also listen for WebSocket (token required)")
    p.add_argument(
        "--http", type=_host_port, metavar="HOST:PORT",
        help="also serve OpenAI-compatible HTTP (token required; needs the [http] extra); default: config.toml's `http`",
    )  # fmt: skip
    p.add_argument("--stdio", action="store_true", help="also serve one connection on stdin/stdout; exit when it closes")
    p.add_argument("--idle-timeout", type=float, metavar="SECONDS", help="exit after this long with no client and nothing running")
    p.add_argument("--max-message-size", type=int, default=DEFAULT_MAX_MESSAGE_SIZE, metavar="BYTES")
    p.add_argument("--tool-timeout", type=float, default=300.0, metavar="SECONDS", help="how long a client may take to answer tool/execute")
    p.add_argument("--approval-timeout", type=float, default=120.0, metavar="SECONDS", help="how long a client may take to answer tool/approve (then: denied)")
    p.add_argument("--db", type=Path, default=None, help="the SQLite database (default: in the user's data dir)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .._serve import AlreadyRunning, daemon_lock, serve  # the daemon's weight, for this command only

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pygls").setLevel(logging.CRITICAL)  # it reports what we answer and log ourselves
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the MCP SDK's HTTP client: a line per request
    config = DaemonConfig(
        socket=args.socket or socket_path(),
        database=args.db or data_dir() / "parley.db",
        user_config=config_path(),
        tcp=args.tcp,
        ws=args.ws,
        http=args.http or _configured_http(),
        stdio=args.stdio,
        idle_timeout=args.idle_timeout,
        max_message_size=args.max_message_size,
        tool_timeout=args.tool_timeout,
        approval_timeout=args.approval_timeout,
    )
    try:
        with daemon_lock(config):
            asyncio.run(serve(config))
    except AlreadyRunning as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 1
    return 0


def _configured_http() -> tuple[str, int] | None:
    """config.toml's ``http = "HOST:PORT"``: what an auto-started daemon serves."""
    from .._userconfig import ConfigError, load

    try:
        address = load().http
    except ConfigError:
        return None  # the daemon reports the broken config when it reads it for its models
    return None if address is None else _host_port(address)


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)
