"""Many paced streams at once: wall time against one stream alone, the daemon's CPU per event.

    python bench/load.py [--streams 500] [--connections 100] [--chunks 100] [--interval-ms 10]

Each stream is an echo script of ``--chunks`` text events ``--interval-ms`` apart (PROTOCOL.md
§8); all are started at once, spread over ``--connections`` unix connections, and this process
reads every connection as an independent client would (msgspec, no parley client), checking
that each response's seqs run 1, 2, 3… with none missing. First one stream runs alone, the
floor: at best the whole batch takes as long. The daemon's CPU is its user + system time
(/proc) over the batch, divided by the events it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path

import msgspec
from cli_warm import warm_daemon

from parley._framing import FrameDecoder, encode_frame
from parley._paths import socket_path


class _Event(msgspec.Struct):
    type: str
    responseId: str  # noqa: N815 - the wire's name
    seq: int


class _Message(msgspec.Struct):
    id: int | None = None
    method: str | None = None
    params: _Event | None = None


_decode = msgspec.json.Decoder(_Message).decode


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder()
        self.last_seq: dict[str, int] = {}
        self.done: dict[str, float] = {}
        self.answers: dict[int, asyncio.Future[None]] = {}
        self.events = 0

    def send(self, msg_id: int, method: str, params: dict) -> asyncio.Future[None]:
        self.answers[msg_id] = asyncio.get_running_loop().create_future()
        self.writer.write(encode_frame(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode()))
        return self.answers[msg_id]

    async def read(self, expected: int) -> None:
        """Until ``expected`` responses are done and every request is answered."""
        while len(self.done) < expected or self.answers:
            data = await self.reader.read(1 << 20)
            if not data:
                raise RuntimeError("the daemon closed a connection")
            for body in self.decoder.feed(data):
                message = _decode(body)
                event = message.params
                if message.method is None:
                    self.answers.pop(message.id).set_result(None)  # type: ignore[arg-type]
                elif event is not None and message.method == "response/event":
                    self.events += 1
                    last = self.last_seq.get(event.responseId, 0)
                    if event.seq != last + 1:
                        raise RuntimeError(f"{event.responseId}: seq {event.seq} after {last}")
                    self.last_seq[event.responseId] = event.seq
                    if event.type == "done":
                        self.done[event.responseId] = time.perf_counter()


async def batch(streams: int, connections: int, script: str, daemon_pid: int) -> tuple[float, float, int]:
    """Wall seconds from the first prompt to the last ``done``, daemon CPU seconds, events."""
    conns = []
    for _ in range(connections):
        conn = Connection(*await asyncio.open_unix_connection(str(socket_path()), limit=1 << 24))
        conn.send(0, "initialize", {"protocolVersion": 1, "clientInfo": {"name": "bench-load"}})
        await conn.read(0)
        conns.append(conn)
    per_conn = [streams // connections + (i < streams % connections) for i in range(connections)]
    cpu = _cpu_seconds(daemon_pid)
    start = time.perf_counter()
    readers = [asyncio.ensure_future(conn.read(n)) for conn, n in zip(conns, per_conn)]
    for conn, n in zip(conns, per_conn):
        for i in range(n):
            conn.send(i + 1, "prompt", {"model": "echo", "prompt": script, "newConversation": True})
    await asyncio.gather(*readers)
    end = max(t for conn in conns for t in conn.done.values())
    cpu = _cpu_seconds(daemon_pid) - cpu
    for conn in conns:
        conn.writer.close()
    return end - start, cpu, sum(conn.events for conn in conns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--interval-ms", type=float, default=10)
    args = parser.parse_args()
    script = json.dumps({"events": [{"type": "text", "chunk": f"w{i} ", "delayMs": args.interval_ms} for i in range(args.chunks)]})

    with warm_daemon("parley-bench-load-") as daemon:
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.chunks} chunks {args.interval_ms} ms apart per stream")
        alone, cpu, events = asyncio.run(batch(1, 1, script, daemon.pid))
        print(f"{1:5} stream  over {1:3} connection : {alone:6.2f} s, daemon CPU {cpu * 1e6 / events:6.1f} µs/event")
        for n in args.streams:
            wall, cpu, events = asyncio.run(batch(n, args.connections, script, daemon.pid))
            print(
                f"{n:5} streams over {args.connections:3} connections: {wall:6.2f} s ({wall / alone:.2f}x one stream), "
                f"daemon CPU {cpu:.2f} s = {cpu * 1e6 / events:6.1f} µs/event, {events} events, none lost or out of order"
            )


if __name__ == "__main__":
    main()
