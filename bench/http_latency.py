"""What the HTTP front door adds per streamed chunk, against the JSON-RPC path, side by side.

    python bench/http_latency.py [--chunks 1000] [--interval-ms 2] [--runs 3]

The upstream and the daemon are ``sse_latency``'s: the tests' replay server streams OpenAI
chat-completion chunks, each stamped with ``perf_counter_ns()`` as it is written, and
``parley serve`` serves them as the model ``bench-openai``, here with ``--http`` too. This
process then reads the same kind of response along each path, interleaved run by run:

- ``json-rpc``: parley's asyncio client on the unix socket (the editors' path);
- ``chat``, ``responses``, ``messages``: the front door's three APIs, read with httpx and
  parsed as their clients do (an SSE decoder, then JSON), without an SDK's own overhead.

Each text chunk's delay is its receipt time minus its upstream stamp; what the HTTP path
adds is the difference of the medians (and of the p99s) against ``json-rpc``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from parleyd._models._http._sse import SSEDecoder
from sse_latency import MODELS, ROOT, _summary, bench_daemon, through_daemon

sys.path.insert(0, str(ROOT / "tests"))
from conftest import free_port  # noqa: E402

MODEL = MODELS["openai"]


def _chat_text(data: dict[str, Any]) -> str | None:
    choices = data.get("choices") or [{}]
    return choices[0].get("delta", {}).get("content")


def _responses_text(data: dict[str, Any]) -> str | None:
    return data.get("delta") if data.get("type") == "response.output_text.delta" else None


def _messages_text(data: dict[str, Any]) -> str | None:
    return (data.get("delta") or {}).get("text") if data.get("type") == "content_block_delta" else None


#: Each API: its path, its request body, and how a client finds the text in one event.
APIS: dict[str, tuple[str, dict[str, Any], Callable[[dict[str, Any]], str | None]]] = {
    "chat": ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "go"}], "stream": True}, _chat_text),
    "responses": ("/v1/responses", {"model": MODEL, "input": "go", "stream": True}, _responses_text),
    "messages": ("/v1/messages", {"model": MODEL, "max_tokens": 4096, "messages": [{"role": "user", "content": "go"}], "stream": True}, _messages_text),
}


async def through_http(http: httpx.AsyncClient, api: str) -> list[int]:
    path, body, text_of = APIS[api]
    decode = msgspec.json.decode
    delays = []
    async with http.stream("POST", path, json=body) as response:
        response.raise_for_status()
        decoder = SSEDecoder()
        async for raw in response.aiter_bytes():
            for event in decoder.feed(raw):
                if event.data == "[DONE]":
                    continue
                text = text_of(decode(event.data))
                if text:
                    delays.append(time.perf_counter_ns() - int(text))
    return delays


async def _measure(http_url: str, token: str, runs: int, apis: list[str]) -> dict[str, list[int]]:
    results: dict[str, list[int]] = {"json-rpc": [], **{api: [] for api in apis}}
    headers = {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=http_url, headers=headers, timeout=60) as http:
        await through_daemon("openai")  # warm: connections, imports, the store
        for api in apis:
            await through_http(http, api)
        for _ in range(runs):  # interleaved, so that every path sees the same machine
            results["json-rpc"] += await through_daemon("openai")
            for api in apis:
                results[api] += await through_http(http, api)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000, help="text chunks per response")
    parser.add_argument("--interval-ms", type=float, default=2.0, help="pause between two upstream chunks")
    parser.add_argument("--runs", type=int, default=3, help="responses per path")
    parser.add_argument("--apis", default="chat,responses,messages", help="the front door's APIs to measure")
    args = parser.parse_args()
    apis = args.apis.split(",")

    load_before = os.getloadavg()[0]
    port = free_port()
    with bench_daemon(args.chunks, args.interval_ms, ("--http", f"127.0.0.1:{port}")) as (_upstream, home):
        token = (home / "run" / "parley.token").read_text().strip()
        results = asyncio.run(_measure(f"http://127.0.0.1:{port}", token, args.runs, apis))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"{args.chunks} chunks per response, one every {args.interval_ms:g} ms, {args.runs} responses per path")
    print(f"load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    print("| path | upstream → client, median (p99) | added against JSON-RPC, median (p99) | chunks |")
    print("|---|---|---|---|")
    base_med, base_p99, _ = _summary(results["json-rpc"])
    for path, delays in results.items():
        med, p99, count = _summary(delays)
        added = "" if path == "json-rpc" else f"{med - base_med:+.0f} us ({p99 - base_p99:+.0f} us)"
        print(f"| {path} | {med:.0f} us ({p99:.0f} us) | {added} | {count} |")


if __name__ == "__main__":
    main()
