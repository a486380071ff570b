"""The `parley` command, run as a subprocess against a real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rpc import echo_script


def parley(daemon, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "parleyd", *args], env=daemon.env, input=stdin, capture_output=True, text=True, timeout=30
    )


def test_prompt_streams_the_answer(daemon):
    out = parley(daemon, "prompt", "The capital of France is Paris.")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "The capital of France is Paris.\n"
    assert out.stderr == ""


def test_prompt_reads_piped_stdin_and_takes_options(daemon):
    out = parley(daemon, "prompt", "-s", "be brief", "--no-stream", "question", stdin="some context\n")
    assert out.stdout == "some context\nquestion\n"
    bad = parley(daemon, "prompt", "-o", "temperature", "0.5", "hi")
    assert bad.returncode == 1 and bad.stderr.strip().startswith("parley: ") and "temperature" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_errors_are_one_line_and_a_nonzero_exit(daemon):
    failed = parley(daemon, "prompt", echo_script({"type": "text", "chunk": "partial"}, {"type": "error", "code": "rate_limited", "message": "slow down"}))
    assert failed.returncode == 1
    assert failed.stdout == "partial\n"
    assert failed.stderr == "parley: rate_limited: slow down\n"
    unknown = parley(daemon, "prompt", "-m", "no-such-model", "hi")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "no-such-model" in unknown.stderr
    assert "Traceback" not in failed.stderr + unknown.stderr


def test_reasoning_is_not_mixed_into_stdout(daemon):
    out = parley(daemon, "prompt", echo_script({"type": "reasoning", "chunk": "hmm"}, {"type": "text", "chunk": "answer"}))
    assert out.stdout == "answer\n" and out.stderr == "hmm\n"  # as llm: on stderr, plain when it is not a terminal


def test_continue_and_logs(daemon):
    parley(daemon, "prompt", "first question")
    parley(daemon, "prompt", "-c", "follow-up")
    parley(daemon, "prompt", "unrelated topic")
    logs = json.loads(parley(daemon, "logs", "-n", "5", "--json").stdout)
    assert [c["title"] for c in logs] == ["unrelated topic", "first question"]
    assert [m["parts"][0]["text"] for m in logs[1]["messages"]] == ["first question"] * 2 + ["follow-up"] * 2
    found = parley(daemon, "logs", "-q", "follow")
    assert "# first question" in found.stdout and "unrelated" not in found.stdout


def test_chat_keeps_the_conversation(daemon):
    out = parley(daemon, "chat", stdin="hello there\nsecond turn\nexit\n")
    assert out.returncode == 0
    assert "hello there\n" in out.stdout and "second turn\n" in out.stdout
    logs = json.loads(parley(daemon, "logs", "-n", "1", "--json").stdout)
    assert len(logs[0]["responseIds"]) == 2


def test_models_and_status(daemon):
    models = parley(daemon, "models")
    assert "builtin: echo  [default]" in models.stdout
    status = parley(daemon, "status")
    assert f"pid {daemon.process.pid}" in status.stdout and str(daemon.socket) in status.stdout


def test_status_without_a_daemon_says_so(tmp_path):
    from conftest import DaemonProcess

    idle = DaemonProcess(tmp_path)
    out = parley(idle, "status")
    assert out.returncode == 1 and "no parley daemon listens" in out.stderr


def test_option_keys_may_be_written_in_snake_case(daemon):
    out = parley(daemon, "prompt", "-o", "max_tokens", "5", "hi")  # echo takes no options: the error names it
    assert out.returncode == 1 and "`maxTokens`" in out.stderr


def test_an_echo_the_daemon_fell_back_to_is_never_taken_for_an_answer():
    from parley import ModelInfo, ModelCapabilities
    from parleyd._cli.prompt import echo_note

    def info(model_id: str, provider: str) -> ModelInfo:
        return ModelInfo(id=model_id, provider=provider, aliases=[], default=False, capabilities=ModelCapabilities())

    alone = echo_note("echo", [info("echo", "builtin")], None)
    assert alone.startswith("parley: `echo` answered: it repeats your prompt.") and "[local] extra" in alone
    keyed = echo_note("echo", [info("echo", "builtin"), info("gpt-4o", "openai")], None)
    assert "-m (gpt-4o)" in keyed and "parley models default NAME" in keyed
    assert echo_note("echo", [info("echo", "builtin")], "echo") is None, "chosen in config.toml: no note"
    assert echo_note("smollm2", [info("echo", "builtin"), info("smollm2", "local")], None) is None



def test_the_daemon_it_starts_is_not_shadowed_by_a_folder_named_parley(tmp_path):
    """The CLI started from a project that has a folder named `parley`: the daemon it starts runs
    in its runtime dir, so `python -m parleyd` does not import that folder as the package. As
    a user runs it: the installed command, no PYTHONPATH."""
    project = tmp_path / "project"
    (project / "parley").mkdir(parents=True)
    (project / "parleyd").mkdir()
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text('default_model = "echo"\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PARLEY_HOME": str(home)}
    command = str(Path(sys.executable).with_name("parley"))
    try:
        out = subprocess.run([command, "prompt", "still here"], cwd=project, env=env, capture_output=True, text=True, timeout=60)
        assert (out.returncode, out.stdout) == (0, "still here\n"), out.stderr
    finally:
        subprocess.run([command, "stop"], env=env, capture_output=True, timeout=30)
