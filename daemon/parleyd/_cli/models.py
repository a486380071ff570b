"""``parley models``: the models the daemon serves; set the default; add a GGUF file."""

from __future__ import annotations

import argparse
from pathlib import Path

import parley

from .._userconfig import add_gguf, config_path, set_default_model


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models and their capabilities; set the default; add a GGUF")
    commands = p.add_subparsers(dest="models_command", metavar="COMMAND")
    default = commands.add_parser("default", help="show the default model, or set it in config.toml")
    default.add_argument("name", nargs="?", help="a model id or alias")
    default.set_defaults(run=run_default)
    gguf = commands.add_parser("add-gguf", help="serve a GGUF file on disk with the embedded llama.cpp")
    gguf.add_argument("path", type=Path)
    gguf.add_argument("--alias", help="another name for it (its id is the file name)")
    gguf.set_defaults(run=run_add_gguf)
    p.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
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


def run_default(args: argparse.Namespace) -> int:
    with parley.connect(client_name="parley-cli") as client:
        models = client.models()
    if args.name is None:
        print(next(m.id for m in models if m.default))
        return 0
    if not any(args.name == m.id or args.name in m.aliases for m in models):
        raise parley.UnknownModel(f"unknown model {args.name!r}; `parley models` lists them")
    set_default_model(args.name)
    print(f"The default model is now {args.name} ({config_path()}).")
    return 0


def run_add_gguf(args: argparse.Namespace) -> int:
    path = args.path.expanduser().resolve()
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise SystemExit(f"parley: cannot read {path}: {exc.strerror}") from None
    if magic != b"GGUF":
        raise SystemExit(f"parley: {path} is not a GGUF file")
    add_gguf(path, args.alias)
    print(f"Added {path.stem}{f' (alias {args.alias})' if args.alias else ''} to {config_path()}.")
    return 0
