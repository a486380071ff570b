"""`parley prompt --functions FILE -T NAME` and `parley chat` with tools, as subprocesses against a real daemon."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

FUNCTIONS = str(Path(__file__).parent / "tools" / "functions.py")


def call(name: str, call_id: str, args: dict) -> list[dict]:
    return [
        {"type": "tool_call_name", "chunk": name, "toolCallId": call_id},
        {"type": "tool_call_args", "chunk": json.dumps(args), "toolCallId": call_id},
    ]


def rounds(*rounds_: list[dict]) -> str:
    return json.dumps({"rounds": list(rounds_)})


def parley(daemon, command: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the command on the echo model, with stdin a pipe: never a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "parleyd", command, "-m", "echo", *args],
        env=daemon.env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=30,
    )


ADD_1_2 = rounds(call("add", "c1", {"a": 1, "b": 2}))


def test_prompt_runs_a_chosen_function_with_yes(daemon):
    out = parley(daemon, "prompt", "--functions", FUNCTIONS, "-T", "add", "--yes", ADD_1_2)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "add: 3\n"
    assert out.stderr == 'tool: add({"a": 1, "b": 2})\n  -> 3\n'


def test_every_public_function_of_the_file_is_a_tool(daemon):
    script = rounds(call("double", "c1", {"money": {"amount": 2.5}}) + call("fail", "c2", {"message": "no"}) + call("join", "c3", {}))
    out = parley(daemon, "prompt", "--functions", FUNCTIONS, "--yes", script)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == [
        'double: {"amount": 5.0, "currency": "EUR"}',
        "fail: RuntimeError: no",
        "join: no tool named 'join' was declared",  # imported into the file, not defined there
    ]
    assert "  -> exception: RuntimeError: no" in out.stderr.splitlines()


def test_without_a_terminal_calls_are_refused_not_hung(daemon):
    out = parley(daemon, "prompt", "--functions", FUNCTIONS, "-T", "add", ADD_1_2)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("add: cancelled by before_call: stdin is not a terminal")
    assert "--yes" in out.stdout
    assert out.stderr.splitlines() == ['tool: add({"a": 1, "b": 2})', "  -> not run: stdin is not a terminal (pass --yes to run tools)"]


def test_functions_as_code_and_the_chain_limit(daemon):
    code = "def triple(x: int) -> int:\n    return 3 * x\n"
    script = rounds(call("triple", "c1", {"x": 2}), call("triple", "c2", {"x": 3}))
    out = parley(daemon, "prompt", "--functions", code, "--yes", "--chain-limit", "2", script)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[:2] == ['tool: triple({"x": 2})', "  -> 6"]
    assert lines[2] == "parley: the chain stopped after 2 rounds with calls left: triple (--chain-limit)"


def test_bad_tool_arguments_are_one_line(daemon):
    unknown = parley(daemon, "prompt", "--functions", FUNCTIONS, "-T", "sub", "hi")
    assert unknown.returncode == 1
    assert unknown.stderr == "parley: -T sub: no such function in the --functions files (found: add, double, fail)\n"
    alone = parley(daemon, "prompt", "-T", "add", "hi")
    assert alone.returncode == 1 and "-T picks functions of a --functions file" in alone.stderr
    missing = parley(daemon, "prompt", "--functions", "nowhere.py", "hi")
    assert missing.returncode == 1 and missing.stderr.startswith("parley: --functions nowhere.py: ")
    broken = parley(daemon, "prompt", "--functions", "def f(:\n", "hi")
    assert broken.returncode == 1 and "SyntaxError" in broken.stderr and broken.stderr.count("\n") == 1
    star = parley(daemon, "prompt", "--functions", "def f(*args): pass", "hi")
    assert star.returncode == 1 and "*args" in star.stderr


def test_chat_with_tools(daemon):
    second = rounds(call("add", "c2", {"a": 10, "b": 20}))
    out = parley(daemon, "chat", "--functions", FUNCTIONS, "-T", "add", "--yes", stdin=f"{ADD_1_2}\n{second}\nexit\n")
    assert out.returncode == 0, out.stderr
    assert "add: 3\n" in out.stdout and "add: 30\n" in out.stdout, "the reply carries the tools on"
    assert out.stderr.splitlines() == ['tool: add({"a": 1, "b": 2})', "  -> 3", 'tool: add({"a": 10, "b": 20})', "  -> 30"]


def _run_on_a_terminal(daemon, answer: str) -> tuple[int, str, str]:
    """`parley prompt` with its stdin a pseudo-terminal: answer the approval question."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "parleyd", "prompt", "-m", "echo", "--functions", FUNCTIONS, "-T", "add", ADD_1_2],
        env=daemon.env,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    try:
        stderr = b""
        deadline = time.monotonic() + 20
        while b"Run it? [y/N] " not in stderr:
            assert time.monotonic() < deadline, stderr
            ready, _, _ = select.select([process.stderr], [], [], 0.1)
            if ready:
                chunk = os.read(process.stderr.fileno(), 4096)
                assert chunk, f"the command ended before asking: {stderr!r}"
                stderr += chunk
        os.write(controller, answer.encode() + b"\n")
        stdout, rest = process.communicate(timeout=20)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    return process.returncode, stdout.decode(), (stderr + rest).decode()


def test_a_terminal_is_asked_first(daemon):
    code, stdout, stderr = _run_on_a_terminal(daemon, "y")
    assert code == 0 and stdout == "add: 3\n"
    assert stderr == 'tool: add({"a": 1, "b": 2})\nRun it? [y/N]   -> 3\n'
    code, stdout, stderr = _run_on_a_terminal(daemon, "")
    assert code == 0 and stdout == "add: cancelled by before_call: the user declined to run it\n"
    assert stderr.endswith("Run it? [y/N]   -> not run\n")
