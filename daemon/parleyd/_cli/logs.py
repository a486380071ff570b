"""``parley logs``: stored conversations, newest first, with full-text search."""

from __future__ import annotations

import argparse
import sys

import msgspec

import parley


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="show stored conversations, newest first")
    p.add_argument("-n", "--count", type=int, default=3, metavar="N", help="how many conversations (default 3)")
    p.add_argument("-q", "--query", help="full-text search over the stored text")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with parley.connect(client_name="parley-cli") as client:
        summaries = client.conversations(query=args.query, limit=args.count)
        conversations = [client.conversation(s.id) for s in summaries]
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(conversations)) + b"\n")
        return 0
    for summary, conversation in zip(summaries, conversations):
        print(f"# {summary.title or '(untitled)'}")
        print(f"{summary.id}  {summary.model}  {summary.updated_at}  {summary.response_count} response(s)\n")
        for message in conversation.messages:
            print(f"## {message.role}\n\n{parley.text_of(message)}\n")
    return 0
