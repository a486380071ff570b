"""``parley chat``: a conversation at the terminal."""

from __future__ import annotations

import argparse

import parley

from ._render import show
from ._tools import ToolConsole, add_tool_arguments, load_tools, warn_pending
from .prompt import add_model_arguments, chosen_model, options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="chat with a model at the terminal")
    add_model_arguments(p)
    p.add_argument("--cid", metavar="ID", help="continue the conversation with this id")
    add_tool_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    tools = load_tools(args)
    console = ToolConsole(yes=args.yes, local=frozenset(t.name for t in tools))
    chain: dict = {}
    if tools:  # every turn is a chain with these tools: a reply carries them on
        chain = {"tools": tools, "chain_limit": args.chain_limit, **console.hooks()}
    mcp = {"mcp_servers": args.mcp, "chain_limit": args.chain_limit} if args.mcp else {}  # named again each turn
    with parley.connect(client_name="parley-chat", approve=console.approve) as client:
        model = chosen_model(client, args.model)
        print(f"Chatting with {model.model_id}. Type 'exit' or press Ctrl-D to quit; Ctrl-C stops an answer.")
        response = None
        while True:
            try:
                line = input("> ")
            except EOFError:
                print()
                return 0
            if line.strip() in ("exit", "quit"):
                return 0
            if not line.strip():
                continue
            if response is None:
                response = model.prompt(
                    line,
                    system=args.system,
                    options=options(args.option),
                    conversation_id=args.cid,
                    hide_reasoning=args.hide_reasoning,
                    **{**chain, **mcp},
                )
            else:
                response = response.reply(line, hide_reasoning=args.hide_reasoning, **mcp)
            try:
                show(response, reasoning=not args.hide_reasoning, tool_result=console.show_result)
            except KeyboardInterrupt:
                continue
            except parley.ResponseFailed as exc:
                print(f"parley: {exc}")
            if tools or args.mcp:
                warn_pending(response, args.chain_limit)
