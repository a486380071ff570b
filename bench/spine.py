"""Benchmarks of the spine: throughput, latency, store cost and memory of a real daemon.

    python bench/spine.py            # every figure, printed as a table for bench/RESULTS.md

Each run starts its own daemon (by the client's autostart) in a fresh
PARLEY_HOME and stops it at the end; nothing is mocked.
"""

from __future__ import annotations

import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "protocol"), str(ROOT / "daemon")]
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "protocol"), str(ROOT / "daemon"), os.environ.get("PYTHONPATH", "")])

import parley  # noqa: E402
from parley import assistant, user  # noqa: E402
from parleyd._store import Store  # noqa: E402

WORDS = (
    "the of and to in is was for that with as on by it at from his an are were which be this have or had not "
    "but one their they all been has its more other new some there time would when can two into first also "
    "after most only about over many such city made may years these where year people part world between"
).split()


def english(n_chars: int, rng: random.Random) -> str:
    out, size = [], 0
    while size < n_chars:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:n_chars]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def events_per_second(client: parley.Client, words: int = 300_000) -> tuple[float, int]:
    model = client.get_model("echo")
    response = model.prompt("w " * words)
    count, first = 0, None
    for _ in response.stream_events():
        if first is None:
            first = time.perf_counter()
        count += 1
    return count / (time.perf_counter() - first), count


def models_list_round_trip(client: parley.Client, n: int = 5000) -> tuple[float, float]:
    for _ in range(200):
        client.models()
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        client.models()
        times.append(time.perf_counter_ns() - t0)
    times.sort()
    return statistics.median(times) / 1000, times[int(len(times) * 0.99)] / 1000


def store_turns(home: Path, turns: int = 100, text_bytes: int = 250_000) -> tuple[float, float, float]:
    """A 100-turn conversation through the Store itself: ms per turn (median, p95) and the file size."""
    rng = random.Random(7)
    path = home / "turns.db"
    store = Store(path)
    per_side = text_bytes // turns // 2
    store.create_conversation("conv", title="bench", model="echo", created_at="2026-01-01T00:00:00.000Z")
    tip, costs = None, []
    for i in range(turns):
        question, answer = english(per_side, rng), english(per_side, rng)
        events = [  # as the daemon stores them: bodies, without responseId and seq (parleyd._envelope)
            b'{"type":"text","chunk":"%s ","partIndex":0,"messageIndex":0}' % w.encode() for w in answer.split()
        ]
        t0 = time.perf_counter()
        input_tip = store.put_chain([user(question)], parent=tip)
        store.start_response(response_id=f"resp_{i:016d}", conversation_id="conv", model="echo", input_tip=input_tip, system=None, options=None, created_at="2026-01-01T00:00:00.000Z")
        for start in range(0, len(events), 64):  # the daemon flushes in batches
            store.append_events(f"resp_{i:016d}", start + 1, events[start : start + 64])
        store.finish_response(f"resp_{i:016d}", status="completed", output=[assistant(answer)], usage=None, error=None, duration_ms=1)
        costs.append((time.perf_counter() - t0) * 1000)
        tip = store.conversation_tip("conv")
    store.close()
    costs.sort()
    return statistics.median(costs), costs[int(len(costs) * 0.95)], path.stat().st_size / 1e6


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    os.environ["PARLEY_HOME"] = str(home)
    client = parley.connect(client_name="bench")
    pid = client.status().pid
    try:
        time.sleep(1.0)
        idle = rss_mib(pid)
        rate, count = max((events_per_second(client) for _ in range(3)), key=lambda r: r[0])
        median_us, p99_us = models_list_round_trip(client)
        after = rss_mib(pid)
    finally:
        client.close()
        os.kill(pid, signal.SIGTERM)
    turn_median, turn_p95, size_mb = store_turns(home)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print("| figure | target | measured |")
    print("|---|---|---|")
    print(f"| events/s, echo stream to one client over the unix socket ({count} events, best of 3) | >= 150,000 | {rate:,.0f} |")
    print(f"| models/list round trip, median (p99) | <= 200 us | {median_us:.0f} us ({p99_us:.0f} us) |")
    print(f"| store one turn of a 100-turn conversation, median (p95) | <= 1 ms | {turn_median:.2f} ms ({turn_p95:.2f} ms) |")
    print(f"| database size, 100 turns carrying 250 KB of text, FTS included | <= 0.75 MB | {size_mb:.2f} MB |")
    print(f"| daemon idle memory (RSS), after start (after the runs above) | <= 80 MB | {idle:.1f} MB ({after:.1f} MB) |")


if __name__ == "__main__":
    main()
