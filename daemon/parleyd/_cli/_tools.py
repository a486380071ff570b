"""Tools at the command line: ``--functions FILE.py``, ``-T NAME``, showing each call and asking first.

Like llm's: ``--functions`` takes a Python file (or a block of code) and every
top-level function in it whose name does not start with ``_`` becomes a tool;
``-T NAME`` picks some of them. With tools, ``parley prompt`` and ``parley chat``
run a chain: the daemon asks this process to run each call, which is shown on
stderr and runs once the user answers ``y``, or at once with ``--yes``. When
stdin is not a terminal there is no one to ask: without ``--yes`` every call is
refused, and the model is told so (the call's ``exception``), rather than hang.

``--mcp NAME`` offers the tools of the daemon's MCP server NAME (mcp.json; ``parley mcp
list``). The daemon runs those itself, after asking this process: each call is shown
and runs once the user answers ``y`` (once) or ``a`` (always: this tool of this server,
until its entry in mcp.json changes); ``--yes`` allows each once without asking.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import parley
from parley import CancelToolCall, Tool, ToolApproveParams, ToolCallPart, ToolResultEvent, ToolResultPart
from parley._client._base import exception_text

from . import _render

#: What the model is told when a call is refused because nobody can be asked.
NO_TERMINAL = "stdin is not a terminal, so parley could not ask to run it; pass --yes to run tools without asking"
_SHOWN = 400  # characters of a tool's output shown on stderr


def add_tool_arguments(p: argparse.ArgumentParser) -> None:
    """The tool options `prompt` and `chat` share."""
    p.add_argument("--functions", action="append", default=[], metavar="FILE.py", help="offer the functions in this Python file (or code) as tools; may repeat")
    p.add_argument("-T", "--tool", dest="tool_names", action="append", default=[], metavar="NAME", help="only this function of the --functions files; may repeat")
    p.add_argument("--chain-limit", "--cl", type=int, default=5, metavar="N", help="at most N model rounds with tools (default 5)")
    p.add_argument("--mcp", action="append", default=[], metavar="NAME", help="offer the tools of the daemon's MCP server NAME (mcp.json); may repeat")
    p.add_argument("-y", "--yes", action="store_true", help="run tool calls without asking")


def load_tools(args: argparse.Namespace) -> list[Tool]:
    """The tools the arguments ask for; SystemExit with one line when they cannot be loaded."""
    functions: dict[str, Callable[..., Any]] = {}
    for index, source in enumerate(args.functions):
        functions.update(_load_functions(source, index))
    if args.tool_names and not args.functions:
        raise SystemExit("parley: -T picks functions of a --functions file, and none was given")
    if args.chain_limit < 1:
        raise SystemExit("parley: --chain-limit must be at least 1")
    if args.tool_names:
        unknown = [n for n in args.tool_names if n not in functions]
        if unknown:
            found = ", ".join(sorted(functions)) or "none"
            raise SystemExit(f"parley: -T {unknown[0]}: no such function in the --functions files (found: {found})")
        functions = {n: functions[n] for n in dict.fromkeys(args.tool_names)}
    tools = []
    for name, function in functions.items():
        try:
            tools.append(Tool.function(function, name=name))
        except (TypeError, ValueError) as exc:
            raise SystemExit(f"parley: --functions: {exc}") from None
    return tools


def _load_functions(source: str, index: int) -> dict[str, Callable[..., Any]]:
    """The public functions defined in a file, or in a block of code (as llm's --functions)."""
    path = Path(source)
    if path.suffix == ".py" or path.is_file():
        try:
            code = path.read_text()
        except OSError as exc:
            raise SystemExit(f"parley: --functions {source}: {exc.strerror or exc}") from None
        filename = label = str(path)
    else:
        code, filename, label = source, "<--functions>", "code"
    name = f"_parley_functions_{index}"
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module  # so that dataclasses and string annotations resolve
    try:
        exec(compile(code, filename, "exec"), module.__dict__)  # the user's own code, as llm runs it
    except Exception as exc:
        raise SystemExit(f"parley: --functions {label}: {exception_text(exc)}") from None
    return {
        n: v
        for n, v in vars(module).items()
        if inspect.isfunction(v) and v.__module__ == name and not n.startswith("_")
    }


class ToolConsole:
    """``before_call`` and ``after_call`` for the terminal: show the call, ask, show the result."""

    def __init__(self, *, yes: bool, local: frozenset[str] = frozenset()) -> None:
        self.yes = yes
        self.local = local  # the names of this process's own tools: their results show in after_call

    def before_call(self, tool: Tool, call: ToolCallPart) -> None:
        _render.end_line()
        _say(f"tool: {call.name}({json.dumps(call.arguments, ensure_ascii=False)})")
        if self.yes:
            return
        if not sys.stdin.isatty():
            _say("  -> not run: stdin is not a terminal (pass --yes to run tools)")
            raise CancelToolCall(NO_TERMINAL)
        sys.stderr.write("Run it? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            _say("  -> not run")
            raise CancelToolCall("the user declined to run it")

    def approve(self, params: ToolApproveParams) -> str:
        """``approve=`` for the client: the daemon asks before it runs an MCP tool call."""
        _render.end_line()
        hints = ", ".join(k for k, v in (params.annotations or {}).items() if v is True)
        _say(f"mcp: {params.server}: {params.name}({json.dumps(params.arguments, ensure_ascii=False)})" + (f"  [{hints}]" if hints else ""))
        if self.yes:
            return "allow_once"
        if not sys.stdin.isatty():
            _say("  -> not run: stdin is not a terminal (pass --yes to run tools)")
            return "deny"
        sys.stderr.write("Run it? [y/N/a(lways)] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer in ("a", "always"):
            return "allow_always"
        if answer in ("y", "yes"):
            return "allow_once"
        _say("  -> not run")
        return "deny"

    def show_result(self, event: ToolResultEvent) -> None:
        """An MCP tool's result, as it arrives in the response (this process's own show in after_call)."""
        if event.name not in self.local:
            _render.end_line()
            self._show(event.output, event.exception)

    def after_call(self, tool: Tool, call: ToolCallPart, result: ToolResultPart) -> None:
        self._show(result.output, result.exception)

    def _show(self, output: str, exception: str | None) -> None:
        text = output if exception is None else f"exception: {exception}"
        if len(text) > _SHOWN:
            text = f"{text[:_SHOWN]}... ({len(text)} characters)"
        _say("  -> " + text.replace("\n", "\n     "))

    def hooks(self) -> dict[str, Any]:
        return {"before_call": self.before_call, "after_call": self.after_call}


def warn_pending(response: parley.Response, chain_limit: int) -> None:
    """Say so when the chain stopped at its limit with calls the model still wanted to make."""
    if response.status != "completed":
        return
    answered = {e.tool_call_id for e in response.stream_events() if e.type == "tool_result"}
    pending = [c.name for c in response.tool_calls() if c.tool_call_id not in answered]
    if pending:
        _render.end_line()
        rounds = "round" if chain_limit == 1 else "rounds"
        _say(f"parley: the chain stopped after {chain_limit} {rounds} with calls left: {', '.join(pending)} (--chain-limit)")


def _say(line: str) -> None:
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
