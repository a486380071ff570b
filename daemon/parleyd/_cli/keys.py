"""``parley keys``: API keys, stored 0600 in the user config dir."""

from __future__ import annotations

import argparse
import getpass
import sys

from .._keys import keys_path, set_key, stored_keys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="store API keys (never shown again, never sent to clients)")
    commands = p.add_subparsers(dest="keys_command", metavar="COMMAND")
    set_ = commands.add_parser("set", help="store a key: typed at a hidden prompt, or piped in")
    set_.add_argument("name", help="e.g. openai, anthropic, or an endpoint's name")
    set_.set_defaults(run=run_set)
    commands.add_parser("list", help="the names of the stored keys").set_defaults(run=run_list)
    commands.add_parser("path", help="where the keys are stored").set_defaults(run=lambda args: print(keys_path()))
    p.set_defaults(run=run_list)


def run_set(args: argparse.Namespace) -> int:
    value = getpass.getpass(f"Key for {args.name}: ") if sys.stdin.isatty() else sys.stdin.readline()
    value = value.strip()
    if not value:
        raise SystemExit("parley: no key given")
    set_key(args.name, value)
    print(f"Stored the key for {args.name} in {keys_path()}; a running daemon uses it from the next request.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    for name in sorted(stored_keys()):
        print(name)
    return 0
