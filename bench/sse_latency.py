"""The daemon's added latency from an upstream SSE chunk to the client's receipt.

    python bench/sse_latency.py [--chunks 2000] [--interval-ms 2]

Three processes, nothing mocked:

- an upstream: the tests' replay server (tests/replay_server.py) serving OpenAI chat-completion
  chunks on ``/v1/chat/completions`` and Anthropic Messages events on ``/v1/messages``; each
  text chunk carries ``time.perf_counter_ns()`` taken just before its bytes are written to the
  socket, one chunk every ``--interval-ms`` (paced, so that latency and not a queue is measured);
- a daemon: ``parley serve`` with the HTTP providers registered against that upstream
  (``OpenAIChatModel`` and ``AnthropicModel``, real httpx clients over loopback TCP);
- this process: the asyncio client (``parley.connect_async()`` on the unix socket), which reads
  each ``text`` event and takes ``perf_counter_ns()`` again. ``perf_counter`` is CLOCK_MONOTONIC
  on Linux, one clock for every process.

The baseline is the same upstream read directly by this process (httpx, the providers' own SSE
decoder, msgspec), with no daemon between: what the daemon adds is the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "protocol"), str(ROOT / "daemon"), str(ROOT / "tests")]

import httpx
import msgspec
import parley
from parleyd._models._http._sse import SSEDecoder
from replay_server import (
    Pause,
    Received,
    ReplayServer,
    Reply,
    anthropic_message_start,
    openai_chunk,
    sse,
)

MODELS = {"openai": "bench-openai", "anthropic": "bench-anthropic"}


# ---- the upstream --------------------------------------------------------------------------


def _stamp_openai() -> bytes:
    return sse(openai_chunk({"content": f"{time.perf_counter_ns()} "}))


def _stamp_anthropic() -> bytes:
    return sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"{time.perf_counter_ns()} "}},
        "content_block_delta",
    )


def _responder(chunks: int, interval: float):  # type: ignore[no-untyped-def]
    def reply(request: Received) -> Reply:
        body: list = []
        if request.path.endswith("/messages"):
            head = [anthropic_message_start(), {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
            body += [sse(e, e["type"]) for e in head]
            stamp = _stamp_anthropic
            tail = [
                sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": chunks}}, "message_delta"),
                sse({"type": "message_stop"}, "message_stop"),
            ]
        else:
            body.append(sse(openai_chunk({"role": "assistant", "content": ""})))
            stamp = _stamp_openai
            tail = [sse(openai_chunk({}, "stop")), b"data: [DONE]\n\n"]
        for _ in range(chunks):
            body += [Pause(interval), stamp]
        return Reply(body=body + tail)

    return reply


def _upstream(chunks: int, interval: float, port: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    server = ReplayServer(_responder(chunks, interval)).start()
    port.put(server.port)
    signal.sigwait({signal.SIGTERM})
    server.close()


# ---- the daemon ------------------------------------------------------------------------------


def _config(upstream: str) -> str:
    """config.toml for a daemon that serves one model per provider, against the upstream."""
    return f"""
[[endpoints]]
name = "bench-openai"
type = "openai"
base_url = "{upstream}/v1"
api_key_env = "BENCH_KEY"
models = [{{ id = "{MODELS['openai']}", name = "gpt-bench" }}]

[[endpoints]]
name = "bench-anthropic"
type = "anthropic"
base_url = "{upstream}"
api_key_env = "BENCH_KEY"
models = [{{ id = "{MODELS['anthropic']}", name = "claude-bench" }}]
"""


# ---- the client --------------------------------------------------------------------------------


async def through_daemon(kind: str) -> list[int]:
    client = await parley.connect_async(autostart=False, client_name="bench")
    try:
        model = await client.get_model(MODELS[kind])
        response = await model.prompt("go")
        delays = []
        async for event in response.astream_events():
            if event.type == "text":
                now = time.perf_counter_ns()
                delays.append(now - int(event.chunk))
            elif event.type == "error":
                raise RuntimeError(event.message)
        return delays
    finally:
        await client.close()


async def direct(upstream: str, kind: str) -> list[int]:
    """The upstream read by this process itself: the baseline."""
    decode = msgspec.json.decode
    if kind == "openai":
        url, body = upstream + "/v1/chat/completions", {"model": "x", "messages": [], "stream": True}
    else:
        url, body = upstream + "/v1/messages", {"model": "x", "messages": [], "stream": True}
    delays = []
    async with httpx.AsyncClient(timeout=60) as http, http.stream("POST", url, json=body) as response:
        decoder = SSEDecoder()
        async for raw in response.aiter_bytes():
            for event in decoder.feed(raw):
                if event.data == "[DONE]":
                    continue
                data = decode(event.data)
                if kind == "openai":
                    choices = data.get("choices") or [{}]
                    text = choices[0].get("delta", {}).get("content")
                else:
                    text = (data.get("delta") or {}).get("text")
                if text:
                    delays.append(time.perf_counter_ns() - int(text))
    return delays


def parse_cost(kind: str, n: int = 100_000) -> float:
    """Microseconds the provider spends on one chunk: SSE decoding, JSON, the event (no I/O)."""
    from parleyd._models._http import AnthropicModel, OpenAIChatModel
    from parleyd._models._http.anthropic import _StreamState as AnthropicState
    from parleyd._models._http.openai import _StreamState as OpenAIState

    if kind == "openai":
        model = OpenAIChatModel("x", base_url="http://127.0.0.1:9/v1")
        state, chunk = OpenAIState(model), _stamp_openai()
    else:
        model = AnthropicModel("x", base_url="http://127.0.0.1:9")
        state, chunk = AnthropicState(model), _stamp_anthropic()
        state.event("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}')
    decoder = SSEDecoder()
    started = time.perf_counter()
    for _ in range(n):
        for event in decoder.feed(chunk):
            state.event(event.event, event.data)
    return (time.perf_counter() - started) / n * 1e6


def _summary(delays: list[int]) -> tuple[float, float, int]:
    ordered = sorted(delays)
    return statistics.median(ordered) / 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000, len(ordered)


async def _measure(upstream: str, runs: int) -> dict[str, dict[str, list[int]]]:
    results: dict[str, dict[str, list[int]]] = {}
    for kind in ("openai", "anthropic"):
        await through_daemon(kind)  # warm: connections, imports, the store
        await direct(upstream, kind)
        results[kind] = {"daemon": [], "direct": []}
        for _ in range(runs):  # interleaved, so that both see the same machine
            results[kind]["daemon"] += await through_daemon(kind)
            results[kind]["direct"] += await direct(upstream, kind)
    return results


@contextlib.contextmanager
def bench_daemon(chunks: int, interval_ms: float, serve_args: tuple[str, ...] = ()) -> Iterator[tuple[str, Path]]:
    """The upstream (a process of its own) and a daemon serving it, started and answering:
    yields the upstream's URL and the daemon's home (``PARLEY_HOME`` is set to it)."""
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    upstream_process = multiprocessing.Process(target=_upstream, args=(chunks, interval_ms / 1000, ports), daemon=True)
    upstream_process.start()
    upstream = f"http://127.0.0.1:{ports.get(timeout=20)}"
    home = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    os.environ["PARLEY_HOME"] = str(home)
    (home / "config").mkdir(mode=0o700)
    (home / "config" / "config.toml").write_text(_config(upstream))
    env = dict(os.environ, BENCH_KEY="sk-bench", PYTHONPATH=os.pathsep.join([str(ROOT / "protocol"), str(ROOT / "daemon")]))
    with open(home / "daemon.log", "wb") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "parleyd", "serve", *serve_args], env=env, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                parley.connect(autostart=False, client_name="bench-probe").close()
                break
            except (OSError, parley.ParleyError):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "daemon.log").read_text()) from None
                time.sleep(0.1)
        yield upstream, home
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(15)
        upstream_process.terminate()
        upstream_process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000, help="text chunks per response")
    parser.add_argument("--interval-ms", type=float, default=2.0, help="pause between two upstream chunks")
    parser.add_argument("--runs", type=int, default=3, help="responses per provider and path")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with bench_daemon(args.chunks, args.interval_ms) as (upstream, _home):
        results = asyncio.run(_measure(upstream, args.runs))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"{args.chunks} chunks per response, one every {args.interval_ms:g} ms, {args.runs} responses per provider and path")
    print(f"load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    print(
        "| provider | upstream → client through the daemon, median (p99) | upstream → this process directly, median (p99) "
        "| added by the daemon, median (p99) | provider's own cost per chunk | chunks |"
    )
    print("|---|---|---|---|---|---|")
    for kind, paths in results.items():
        d_med, d_p99, count = _summary(paths["daemon"])
        b_med, b_p99, _ = _summary(paths["direct"])
        cost = parse_cost(kind)
        print(
            f"| {kind} | {d_med:.0f} us ({d_p99:.0f} us) | {b_med:.0f} us ({b_p99:.0f} us) "
            f"| {d_med - b_med:.0f} us ({d_p99 - b_p99:.0f} us) | {cost:.1f} us | {count} |"
        )


if __name__ == "__main__":
    main()
