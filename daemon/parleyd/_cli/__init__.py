"""The ``parley`` command: one small module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys

from parley import ParleyError, __version__

from .._userconfig import ConfigError

#: The subcommands, in the order ``parley -h`` lists them: one module each, imported only when a
#: command line names it (a warm ``parley prompt`` spends most of its time importing).
COMMANDS = ("prompt", "chat", "models", "keys", "logs", "status", "mcp", "stop", "serve", "stdio", "acp")


def build_parser(commands: tuple[str, ...] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Talk to language models through the parley daemon.")
    parser.add_argument("--version", action="version", version=f"parley {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    named = (argv[0],) if argv[:1] and argv[0] in COMMANDS else COMMANDS
    args = build_parser(named).parse_args(argv)
    if args.command is None:
        args = build_parser(("prompt",)).parse_args(["prompt", *argv])
    try:
        return args.run(args) or 0
    except (ParleyError, ConfigError, PermissionError) as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
