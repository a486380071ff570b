"""Benchmark of a replayed history: a chat-completions-style client re-sending the whole conversation each turn.

    python bench/replay.py [--turns 100] [--runs 5] [--openai] [--llm-python PATH]

Each turn appends a 1.25 KB user message to the history and sends the whole history,
the model's earlier answers included, as ``prompt {model: "echo", messages}`` with no
``conversationId``; the answer is appended as the client saw it. Printed: the database's
bytes against the text it holds (the event log included), the conversations it made,
and the wall time of early and late turns (medians of the first and last 10). Each
replay runs ``--runs`` times, each on a fresh database; a turn's wall is its median
over the runs (a 2-core VM is noisy), sizes are those of the last run.

With ``--openai``, the same replay also runs through the official ``openai`` SDK against the
daemon's HTTP front door (``chat.completions.create(messages=history)``), and with plain httpx
posting the same JSON, side by side: the SDK's own request building grows with the history
(about 60 ms of a late turn here), the daemon's side is the httpx column.

With ``--llm-python`` (a Python with ``llm`` 0.36 and ``llm-echo`` 0.5 installed, e.g.
``python -m venv /tmp/llm && /tmp/llm/bin/pip install llm==0.36 llm-echo==0.5``), the same
replay runs in that interpreter through the llm library (in process, no daemon: each
turn is ``model.prompt(messages=history)`` then ``log_to_db``), and both are printed side
by side. Its echo answers with its own JSON, so each side is measured against the text it
holds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "protocol"), str(ROOT / "daemon")]
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "protocol"), str(ROOT / "daemon"), os.environ.get("PYTHONPATH", "")])

import parley  # noqa: E402
from parley import assistant, user  # noqa: E402

WORDS = "the quick brown fox jumps over a lazy dog while parley keeps every turn of the talk".split()


def turn_text(turn: int, size: int = 1250) -> str:
    """A distinct user message of ``size`` bytes."""
    words, length, i = [f"turn{turn}:"], 0, turn
    while length < size:
        word = WORDS[i % len(WORDS)]
        words.append(word)
        length += len(word) + 1
        i += 7
    return " ".join(words)[:size]


def _daemon(extra_args: list[str]) -> tuple[Path, subprocess.Popen]:
    """A fresh daemon serving echo by default, started and answering."""
    home = Path(tempfile.mkdtemp(prefix="parley-bench-replay-"))
    (home / "config").mkdir(mode=0o700)
    (home / "config" / "config.toml").write_text('default_model = "echo"\n')
    env = dict(os.environ, PARLEY_HOME=str(home))
    log = open(home / "daemon.log", "ab")
    daemon = subprocess.Popen([sys.executable, "-m", "parleyd", "serve", *extra_args], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    socket = home / "run" / "parley.sock"
    deadline = time.monotonic() + 20
    while not socket.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the daemon did not start")
        time.sleep(0.05)
    os.environ["PARLEY_HOME"] = str(home)
    return home, daemon


def _stopped(home: Path, daemon: subprocess.Popen, result: dict) -> dict:
    """Stop the daemon; ``result`` with the database's size and the conversations stored."""
    with parley.connect(client_name="bench-replay", autostart=False) as client:
        result["conversations"] = len(client.conversations(limit=1000))
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=30)
    database = home / "data" / "parley.db"
    return {**result, "bytes": sum(p.stat().st_size for p in database.parent.glob("parley.db*"))}


def parley_replay(turns: int) -> dict:
    """Through parley's own client, over the unix socket."""
    home, daemon = _daemon([])
    walls, history, text = [], [], 0
    with parley.connect(client_name="bench-replay", autostart=False) as client:
        model = client.get_model("echo")
        for turn in range(turns):
            history.append(user(turn_text(turn)))
            t0 = time.perf_counter()
            answer = model.prompt(messages=history).text()
            walls.append(time.perf_counter() - t0)
            history.append(assistant(answer))
            text += len(turn_text(turn).encode()) + len(answer.encode())
    return _stopped(home, daemon, {"text": text, "walls": walls})


def http_replay(turns: int, sdk: bool) -> dict:
    """Through the daemon's chat completions endpoint: with the official ``openai`` SDK, or with
    plain httpx (the same JSON, without the SDK's own request building, which grows with the history)."""
    import httpx
    import openai

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import free_port

    port = free_port()
    home, daemon = _daemon(["--http", f"127.0.0.1:{port}"])
    token = (home / "run" / "parley.token").read_text().strip()
    url = f"http://127.0.0.1:{port}/v1"
    walls, history, text = [], [], 0
    with openai.OpenAI(base_url=url, api_key=token, max_retries=0) as client, httpx.Client(headers={"authorization": f"Bearer {token}"}) as http:
        for turn in range(turns):
            history.append({"role": "user", "content": turn_text(turn)})
            t0 = time.perf_counter()
            if sdk:
                answer = client.chat.completions.create(model="echo", messages=history).choices[0].message.content
            else:
                answer = http.post(url + "/chat/completions", json={"model": "echo", "messages": history}).json()["choices"][0]["message"]["content"]
            walls.append(time.perf_counter() - t0)
            history.append({"role": "assistant", "content": answer})
            text += len(turn_text(turn).encode()) + len(answer.encode())
    return _stopped(home, daemon, {"text": text, "walls": walls})


LLM_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile, time, pathlib
    import llm, sqlite_utils
    from llm.migrations import migrate
    texts = json.loads(pathlib.Path(sys.argv[1]).read_text())
    path = pathlib.Path(tempfile.mkdtemp()) / "logs.db"
    db = sqlite_utils.Database(path)
    migrate(db)
    model = llm.get_model("echo")
    walls, history, text = [], [], 0
    for turn_text in texts:
        history.append(llm.user(turn_text))
        t0 = time.perf_counter()
        response = model.prompt(messages=history)
        answer = response.text()
        response.log_to_db(db)
        walls.append(time.perf_counter() - t0)
        history.append(llm.assistant(answer))
        text += len(turn_text.encode()) + len(answer.encode())
    conversations = db.execute("select count(*) from threads").fetchone()[0]  # llm 0.36 logs threads of turns
    db.conn.close()
    size = sum(p.stat().st_size for p in path.parent.glob("logs.db*"))
    print(json.dumps({"bytes": size, "text": text, "conversations": conversations, "walls": walls}))
    """
)


def llm_replay(python: str, turns: int) -> dict:
    texts = Path(tempfile.mkdtemp(prefix="parley-bench-replay-")) / "turns.json"
    texts.write_text(json.dumps([turn_text(turn) for turn in range(turns)]))
    out = subprocess.run([python, "-c", LLM_SCRIPT, str(texts)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the llm replay failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def repeated(replay, runs: int) -> dict:
    """The last run's figures, with each turn's wall the median over ``runs`` runs."""
    results = [replay() for _ in range(runs)]
    return {**results[-1], "walls": [statistics.median(walls) for walls in zip(*(r["walls"] for r in results))]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--llm-python", help="a Python with llm 0.36 and llm-echo 0.5 installed")
    parser.add_argument("--openai", action="store_true", help="also replay through the openai SDK and the HTTP front door")
    args = parser.parse_args()
    results = {"parley (JSON-RPC)": repeated(lambda: parley_replay(args.turns), args.runs)}
    if args.openai:
        results["parley (openai SDK, HTTP)"] = repeated(lambda: http_replay(args.turns, sdk=True), args.runs)
        results["parley (httpx, HTTP)"] = repeated(lambda: http_replay(args.turns, sdk=False), args.runs)
    if args.llm_python:
        results["llm 0.36 + llm-echo 0.5"] = repeated(lambda: llm_replay(args.llm_python, args.turns), args.runs)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"{args.turns} turns, each a {len(turn_text(0))}-byte user message, the whole history sent every turn; {args.runs} runs")
    print()
    print("| figure | target | " + " | ".join(results) + " |")
    print("|---|---|" + "---|" * len(results))
    row = lambda name, target, f: print(f"| {name} | {target} | " + " | ".join(f(r) for r in results.values()) + " |")  # noqa: E731
    row("database bytes (text held)", "", lambda r: f"{r['bytes'] / 1e6:.2f} MB ({r['text'] / 1e3:.0f} KB)")
    row("database / text", "<= 2x", lambda r: f"{r['bytes'] / r['text']:.2f}x")
    row("conversations", "1", lambda r: str(r["conversations"]))
    early = lambda r: statistics.median(r["walls"][:10])  # noqa: E731
    late = lambda r: statistics.median(r["walls"][-10:])  # noqa: E731
    row("turn wall, early (median of the first 10)", "", lambda r: f"{early(r) * 1000:.1f} ms")
    row("turn wall, late (median of the last 10)", "below llm's", lambda r: f"{late(r) * 1000:.1f} ms")
    row("late / early", "<= 1.5", lambda r: f"{late(r) / early(r):.2f}")


if __name__ == "__main__":
    main()
