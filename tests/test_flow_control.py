"""A client that stops reading never blocks the others: it gets the same text in fewer, merged
events, or (having opted out of ranges, or past what merging can hold) lags and catches up
without a gap."""

from __future__ import annotations

import asyncio
import json
import os
import socket

from parley._framing import FrameDecoder, encode_frame


def blocking_call(sock: socket.socket, decoder: FrameDecoder, message: dict, seen: list[dict]) -> dict:
    """Send a request and read until its answer; notifications read meanwhile go to ``seen``."""
    sock.sendall(encode_frame(json.dumps(message).encode()))
    answer = None
    while answer is None:
        for body in decoder.feed(sock.recv(1 << 20)):
            reply = json.loads(body)
            if reply.get("id") == message["id"]:
                answer = reply
            else:
                seen.append(reply)
    return answer


def stuck_client(daemon, prompt: str, *, ranges: bool | None = None) -> tuple[socket.socket, FrameDecoder, list[dict], str]:
    """A unix connection with a small receive buffer that starts a response and then reads nothing."""
    sock = socket.socket(socket.AF_UNIX)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(str(daemon.socket))
    decoder = FrameDecoder()
    seen: list[dict] = []
    params: dict = {"protocolVersion": 1, "clientInfo": {"name": "stuck"}}
    if ranges is not None:
        params["capabilities"] = {"eventRanges": ranges}
    answer = blocking_call(sock, decoder, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}, seen)
    assert answer["result"]["capabilities"]["eventRanges"] is (ranges is not False)
    started = blocking_call(sock, decoder, {"jsonrpc": "2.0", "id": 2, "method": "prompt", "params": {"prompt": prompt}}, seen)
    return sock, decoder, seen, started["result"]["responseId"]


def covered(events: list[dict]) -> list[int]:
    """The seqs a list of events stands for, merged deltas (seq…seqEnd) counted whole."""
    return [seq for e in events for seq in range(e["seq"], e.get("seqEnd", e["seq"]) + 1)]


async def read_until(sock: socket.socket, decoder: FrameDecoder, seen: list[dict], last: str) -> None:
    """Read, non-blocking, until a notification of method ``last`` or a `done` event arrives."""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    while not seen or not (seen[-1]["method"] == last or seen[-1]["params"].get("type") == "done"):
        data = await loop.sock_recv(sock, 1 << 20)
        assert data, "the daemon closed the stuck connection"
        seen.extend(json.loads(body) for body in decoder.feed(data))


async def test_stuck_client_gets_merged_deltas(daemon):
    words = 150_000  # ~16 MB of events one by one: over the 8 MiB backlog limit
    sock, decoder, seen, rid = stuck_client(daemon, "word " * words)

    # the stuck client reads nothing; another client is served meanwhile and sees the response finish
    other = await daemon.connect("tcp")
    await other.request("response/subscribe", {"responseId": rid})
    events, lags = await other.follow(rid)
    assert covered(events) == list(range(1, words + 3)) and lags == 0
    assert "".join(e.get("chunk", "") for e in events) == "word " * words

    # now the stuck client reads what it was sent: every seq once, in fewer events, never lagged
    await read_until(sock, decoder, seen, "response/lagged")
    assert all(m["method"] == "response/event" for m in seen)
    events = [m["params"] for m in seen]
    assert covered(events) == list(range(1, words + 3))
    assert "".join(e["chunk"] for e in events if e["type"] == "text") == "word " * words
    merged = [e for e in events if "seqEnd" in e]
    assert merged and all(e["type"] == "text" and e["seqEnd"] > e["seq"] for e in merged)
    assert len(events) < words / 2, f"{len(events)} events for {words + 2} seqs"
    sock.close()
    await other.close()


async def test_held_events_that_cannot_merge_end_in_lagged(daemon):
    """Reasoning and text in turn never merge: held, they outgrow the limit, and the connection lags."""
    entries = [{"type": "reasoning" if i % 2 else "text", "chunk": "w "} for i in range(120_000)]
    sock, decoder, seen, rid = stuck_client(daemon, json.dumps({"events": entries}))
    other = await daemon.connect("unix")
    await other.request("response/subscribe", {"responseId": rid})
    await other.until_done(rid, timeout=60)
    await read_until(sock, decoder, seen, "response/lagged")
    lagged = seen[-1]["params"]
    assert seen[-1]["method"] == "response/lagged" and lagged["responseId"] == rid
    assert covered([m["params"] for m in seen[:-1]]) == list(range(1, lagged["lastSeq"] + 1))
    sock.close()
    await other.close()


async def test_stuck_client_without_ranges_lags_and_catches_up(daemon):
    words = 150_000
    sock, decoder, seen, rid = stuck_client(daemon, "word " * words, ranges=False)

    # the stuck client reads nothing; another client is served meanwhile and sees the response finish
    other = await daemon.connect("tcp")
    await other.request("response/subscribe", {"responseId": rid})
    events, _ = await other.follow(rid)
    assert covered(events) == list(range(1, words + 3))
    assert (await other.request("models/list"))["models"]

    # now the stuck client reads what it was sent: a prefix, one event per seq, then response/lagged
    await read_until(sock, decoder, seen, "response/lagged")
    lagged = seen[-1]["params"]
    assert seen[-1]["method"] == "response/lagged" and lagged["responseId"] == rid
    assert [m["params"]["seq"] for m in seen[:-1]] == list(range(1, lagged["lastSeq"] + 1))
    assert lagged["lastSeq"] < words

    # catching up from lastSeq gives exactly the rest
    sock.setblocking(True)
    loop = asyncio.get_running_loop()
    sock.sendall(encode_frame(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "response/subscribe", "params": {"responseId": rid, "afterSeq": lagged["lastSeq"]}}).encode()))
    rest = []
    while not rest or rest[-1]["type"] != "done":
        for body in decoder.feed(await loop.run_in_executor(None, sock.recv, 1 << 20)):
            message = json.loads(body)
            if message.get("method") == "response/event":
                rest.append(message["params"])
    assert [e["seq"] for e in rest] == list(range(lagged["lastSeq"] + 1, words + 3))
    sock.close()
    await other.close()
    rss_kib = int(next(line.split()[1] for line in open(f"/proc/{daemon.process.pid}/status") if line.startswith("VmRSS")))
    assert rss_kib < 400 * 1024, f"daemon RSS {rss_kib} KiB"
    assert os.path.exists(daemon.socket)
