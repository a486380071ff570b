"""A client that reads at Python speed, with and without merged deltas (PROTOCOL.md §7.2).

    python bench/slow_reader.py [--words 100000] [--read-us 20]

One echo answer of ``--words`` one-word chunks; the client decodes every message with
``json.loads`` and spends ``--read-us`` more per message (a client doing something with each
event), reading 64 KiB at a time. Once with ``capabilities.eventRanges`` (the default), once
opted out: how many frames and bytes it read, how long until it had the whole text, and
whether it lagged (an opted-out client then subscribes again from ``lastSeq``, as it should).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import time

from cli_warm import warm_daemon

from parley._framing import FrameDecoder, encode_frame
from parley._paths import socket_path


def _send(sock: socket.socket, msg_id: int, method: str, params: dict) -> None:
    sock.sendall(encode_frame(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode()))


def read_answer(words: int, read_us: float, ranges: bool) -> dict:
    sock = socket.socket(socket.AF_UNIX)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(str(socket_path()))
    decoder = FrameDecoder()
    _send(sock, 1, "initialize", {"protocolVersion": 1, "clientInfo": {"name": "bench-slow"}, "capabilities": {"eventRanges": ranges}})
    start = time.perf_counter()
    _send(sock, 2, "prompt", {"model": "echo", "prompt": "word " * words, "newConversation": True})
    frames = size = lags = 0
    text: list[str] = []
    last = 0
    done = False
    while not done:
        data = sock.recv(65536)
        size += len(data)
        for body in decoder.feed(data):
            message = json.loads(body)
            frames += 1
            spin = time.perf_counter() + read_us / 1e6
            while time.perf_counter() < spin:
                pass
            params = message.get("params") or {}
            if message.get("method") == "response/lagged":
                lags += 1
                _send(sock, 10 + lags, "response/subscribe", {"responseId": params["responseId"], "afterSeq": params["lastSeq"]})
            elif message.get("method") == "response/event":
                if params["seq"] != last + 1:
                    continue  # what was sent before the lag notice, past lastSeq: it comes again
                last = params.get("seqEnd", params["seq"])
                text.append(params.get("chunk", "") if params["type"] == "text" else "")
                done = params["type"] == "done"
    sock.close()
    assert "".join(text) == "word " * words and last == words + 2
    return {"frames": frames, "bytes": size, "seconds": time.perf_counter() - start, "lags": lags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--read-us", type=float, default=20)
    args = parser.parse_args()
    with warm_daemon("parley-bench-slow-"):
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.words} words, {args.read_us} µs per message")
        for ranges in (True, False):
            r = read_answer(args.words, args.read_us, ranges)
            print(
                f"eventRanges {str(ranges).lower():5}: {r['frames']:7} frames, {r['bytes'] / 1e6:5.1f} MB, "
                f"{r['seconds']:5.2f} s to the whole text, {r['lags']} response/lagged"
            )


if __name__ == "__main__":
    main()
