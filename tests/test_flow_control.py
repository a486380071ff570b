"""A client that stops reading never blocks the others; it lags, then catches up without a gap."""

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


async def test_stuck_client_lags_and_catches_up(daemon):
    sock = socket.socket(socket.AF_UNIX)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(str(daemon.socket))
    decoder = FrameDecoder()
    seen: list[dict] = []
    blocking_call(sock, decoder, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1, "clientInfo": {"name": "stuck"}}}, seen)
    words = 150_000  # ~16 MB of events: over the 8 MiB backlog limit
    started = blocking_call(sock, decoder, {"jsonrpc": "2.0", "id": 2, "method": "prompt", "params": {"prompt": "word " * words}}, seen)
    rid = started["result"]["responseId"]

    # the stuck client reads nothing; another client is served meanwhile and sees the response finish
    other = await daemon.connect("tcp")
    await other.request("response/subscribe", {"responseId": rid})
    events, _ = await other.follow(rid)  # a reading client may lag too at this rate; it catches up
    assert [e["seq"] for e in events] == list(range(1, words + 3))
    assert (await other.request("models/list"))["models"]

    # now the stuck client reads what it was sent: a prefix, then response/lagged
    sock.setblocking(False)
    seqs, lagged = [m["params"]["seq"] for m in seen], None
    loop = asyncio.get_running_loop()
    while lagged is None:
        data = await loop.sock_recv(sock, 1 << 20)
        assert data, "the daemon closed the stuck connection"
        for body in decoder.feed(data):
            message = json.loads(body)
            if message["method"] == "response/lagged":
                lagged = message["params"]
            else:
                seqs.append(message["params"]["seq"])
    assert lagged["responseId"] == rid
    assert seqs == list(range(1, lagged["lastSeq"] + 1))
    assert lagged["lastSeq"] < words

    # catching up from lastSeq gives exactly the rest
    sock.setblocking(True)
    sock.sendall(encode_frame(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "response/subscribe", "params": {"responseId": rid, "afterSeq": lagged["lastSeq"]}}).encode()))
    rest = []
    while not rest or rest[-1]["type"] != "done":
        for body in decoder.feed(await loop.run_in_executor(None, sock.recv, 1 << 20)):
            message = json.loads(body)
            if message.get("method") == "response/event":
                rest.append(message["params"])
    assert [e["seq"] for e in rest] == list(range(lagged["lastSeq"] + 1, words + 3))
    sock.close()
    rss_kib = int(next(line.split()[1] for line in open(f"/proc/{daemon.process.pid}/status") if line.startswith("VmRSS")))
    assert rss_kib < 400 * 1024, f"daemon RSS {rss_kib} KiB"
    assert os.path.exists(daemon.socket)
