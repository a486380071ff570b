"""The daemon's JSON-RPC fast paths against a stock pygls 2 server, side by side, over stdio.

    python bench/pygls_peer.py [--calls 2000] [--events 100000]

Both are driven by the same raw client (Content-Length frames over the child's pipes, parsed
with parley's FrameDecoder and msgspec): a request's round trip (the daemon's ``models/list``;
a pygls ``LanguageServer`` feature that returns the same list), and a stream of notifications
(the daemon's events of an echo answer of ``--events`` words; pygls sending as many
notifications from one request). The pygls server is the library used as its docs show, with
nothing of parley in it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from parley._framing import FrameDecoder, encode_frame

PYGLS_SERVER = '''
from pygls.lsp.server import LanguageServer

server = LanguageServer("bench-pygls", "v1")
MODELS = {"models": [{"id": "echo", "provider": "builtin", "aliases": [], "default": True,
                      "capabilities": {"streaming": True, "tools": True, "reasoning": True, "attachments": [], "schema": True}}]}

@server.feature("models/list")
def models(ls, params):
    return MODELS

@server.feature("flood")
def flood(ls, params):
    for seq in range(1, params.n + 1):
        ls.protocol.notify("response/event", {"type": "text", "chunk": "word ", "responseId": "r", "seq": seq})
    return {}

server.start_io()
'''


class Peer:
    """A child process spoken to in Content-Length frames on its stdin/stdout."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.decoder = FrameDecoder()
        self.pending: list[bytes] = []
        self.next_id = 0

    def send(self, method: str, params: object) -> int:
        self.next_id += 1
        self.process.stdin.write(encode_frame(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}).encode()))
        self.process.stdin.flush()
        return self.next_id

    def messages(self) -> Iterator[bytes]:
        while True:
            while self.pending:
                yield self.pending.pop(0)
            data = os.read(self.process.stdout.fileno(), 1 << 20)
            if not data:
                raise RuntimeError("the peer closed its stdout")
            self.pending.extend(b for b in self.decoder.feed(data) if isinstance(b, bytes))

    def call(self, method: str, params: object) -> dict:
        msg_id = self.send(method, params)
        for body in self.messages():
            message = msgspec.json.decode(body)
            if message.get("id") == msg_id and "method" not in message:
                return message
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.terminate()
        self.process.wait(10)


def round_trip_us(peer: Peer, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        answer = peer.call("models/list", {})
        times.append(time.perf_counter() - start)
        assert "result" in answer, answer
    return statistics.median(times) * 1e6


def events_per_second(peer: Peer, method: str, params: object, is_last: Callable[[bytes, int], bool]) -> float:
    start = time.perf_counter()
    peer.send(method, params)
    seen = 0
    for body in peer.messages():
        if b'"response/event"' in body:
            seen += 1
            if is_last(body, seen):
                break
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="parley-bench-pygls-"))
    (home / "config").mkdir(mode=0o700)
    (home / "config" / "config.toml").write_text('default_model = "echo"\n')
    env = dict(os.environ, PARLEY_HOME=str(home), PARLEY_LLM_PLUGINS="0")
    script = home / "pygls_server.py"
    script.write_text(PYGLS_SERVER)

    daemon = Peer([sys.executable, "-m", "parleyd", "serve", "--stdio"], env)
    daemon.call("initialize", {"protocolVersion": 1, "clientInfo": {"name": "bench"}})
    stock = Peer([sys.executable, str(script)], env)
    try:
        rounds = {"parley": [], "pygls": []}
        streams = {"parley": [], "pygls": []}
        words = " ".join(["word"] * args.events)
        for _ in range(3):  # interleaved, so that a busy moment falls on both
            rounds["parley"].append(round_trip_us(daemon, args.calls))
            rounds["pygls"].append(round_trip_us(stock, args.calls))
            streams["parley"].append(events_per_second(daemon, "prompt", {"prompt": words, "newConversation": True}, lambda b, n: b'"done"' in b))
            streams["pygls"].append(events_per_second(stock, "flood", {"n": args.events}, lambda b, n: n == args.events))
    finally:
        daemon.close()
        stock.close()
    best = {k: min(v) for k, v in rounds.items()}
    rate = {k: max(v) for k, v in streams.items()}
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; best of 3 interleaved runs")
    print(f"round trip (median of {args.calls}): parley {best['parley']:.0f} µs, pygls {best['pygls']:.0f} µs: {best['pygls'] / best['parley']:.1f}x")
    print(f"notification stream ({args.events} events): parley {rate['parley']:,.0f}/s, pygls {rate['pygls']:,.0f}/s: {rate['parley'] / rate['pygls']:.2f}x")


if __name__ == "__main__":
    main()
