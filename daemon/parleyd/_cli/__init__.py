"""The ``parley`` command: one small module per subcommand."""

from __future__ import annotations

import argparse
import sys

from parley import ParleyError, __version__

from .._userconfig import ConfigError

from . import chat, keys, logs, models, prompt, serve, status, stdio, stop

COMMANDS = [prompt, chat, models, keys, logs, status, stop, serve, stdio]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Talk to language models through the parley daemon.")
    parser.add_argument("--version", action="version", version=f"parley {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        args = build_parser().parse_args(["prompt", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.run(args) or 0
    except (ParleyError, ConfigError) as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
