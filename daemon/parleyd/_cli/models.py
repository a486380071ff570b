"""``parley models``: the models the daemon serves."""

from __future__ import annotations

import argparse

import parley


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models and their capabilities")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with parley.connect(client_name="parley-cli") as client:
        for model in client.models():
            caps = model.capabilities
            features = [name for name in ("streaming", "tools", "reasoning", "schema") if getattr(caps, name)]
            line = f"{model.provider}: {model.id}"
            if model.aliases:
                line += f" (aliases: {', '.join(model.aliases)})"
            if model.default:
                line += "  [default]"
            print(line)
            print(f"  {', '.join(features) or 'no streaming'}; attachments: {', '.join(caps.attachments) or 'none'}")
    return 0
