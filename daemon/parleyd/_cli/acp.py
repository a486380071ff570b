"""``parley acp``: an Agent Client Protocol agent on stdin/stdout, for Zed, codecompanion.nvim, avante.nvim….

It is a client of the user's daemon (started if none runs), so its sessions are
parley conversations that every other client sees. See ``parleyd._acp``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("acp", help="speak the Agent Client Protocol on stdin/stdout (what Zed and ACP plugins launch)")
    p.add_argument("--chain-limit", type=int, default=10, metavar="N", help="model rounds a tool chain may run in one turn (default 10)")
    p.add_argument("--no-tools", action="store_true", help="do not offer the model the editor's files as tools")
    p.add_argument("--mcp", action="append", default=[], metavar="NAME", help="give the model the tools of the daemon's MCP server NAME (mcp.json); repeatable")
    p.add_argument("--connect", metavar="URL", help="the daemon to use (default: the user's, started if none runs)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages (to stderr)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # stdout carries ACP alone: keep a private copy of it, and point fd 1 (and sys.stdout) at
    # stderr, so that nothing else that prints, here or in a child process, can reach the client.
    out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="parley acp: %(levelname)s %(message)s",
    )
    from .._acp import serve

    try:
        asyncio.run(serve(0, out, url=args.connect, chain_limit=max(1, args.chain_limit), offer_tools=not args.no_tools, mcp_servers=args.mcp))
    except KeyboardInterrupt:
        return 130
    finally:
        os.close(out)
    return 0
