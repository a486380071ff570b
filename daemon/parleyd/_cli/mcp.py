"""``parley mcp list``: the daemon's MCP servers (mcp.json), their state and their tools."""

from __future__ import annotations

import argparse
import json

import msgspec

import parley


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mcp", help="the MCP servers the daemon runs (mcp.json in the config dir)")
    what = p.add_subparsers(dest="mcp_command", metavar="COMMAND", required=True)
    listing = what.add_parser("list", help="each server, its state and its tools")
    listing.add_argument("--json", action="store_true", help="print mcp/list's result as JSON")
    listing.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with parley.connect(client_name="parley-cli") as client:
        listed = client.mcp_servers()
    if args.json:
        print(json.dumps(msgspec.to_builtins(listed), indent=2, ensure_ascii=False))
        return 0
    if not listed.servers:
        print(f"no MCP server is configured (write one in {listed.config})")
    for server in listed.servers:
        state = server.state.replace("_", " ")
        details = [server.transport] + ([f"pid {server.pid}"] if server.pid else []) + (["trusted"] if server.trusted else [])
        if server.restarts:
            details.append(f"{server.restarts} restart(s)")
        if server.retry_in_s is not None:
            details.append(f"next start in {server.retry_in_s:g} s")
        print(f"{server.name}: {state} ({', '.join(details)})")
        if server.error:
            print(f"  error: {server.error}")
        if server.log:
            print(f"  log:   {server.log}")
        for tool in server.tools:
            hints = ", ".join(k for k, v in (tool.annotations or {}).items() if v is True)
            description = (tool.description or "").strip().splitlines()[0:1]
            print(f"  {tool.name}" + (f" [{hints}]" if hints else "") + (f": {description[0]}" if description else ""))
    return 0
