"""The store survives restarts and crashes."""

from __future__ import annotations

import asyncio
import signal

from rpc import echo_script


async def test_kill_9_mid_stream_reads_back_as_interrupted(daemon):
    conn = await daemon.connect("unix")
    script = echo_script(*({"type": "text", "chunk": f"w{i} ", "delayMs": 20} for i in range(500)))
    started = await conn.request("prompt", {"prompt": script})
    rid = started["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= 20 else None)
    await asyncio.sleep(0.2)  # past one store flush
    received = "".join(e["chunk"] for e in conn.events(rid))
    daemon.stop(signal.SIGKILL)
    await conn.close()

    daemon.start()
    conn = await daemon.connect("unix")
    record = await conn.request("response/get", {"responseId": rid})
    assert record["status"] == "interrupted"
    assert record["error"]["code"] == "interrupted"
    kept = record["messages"][0]["parts"][0]["text"]
    assert len(kept) >= len("w0 ") * 10 and received.startswith(kept[: len(received)]) or kept.startswith(received)
    conversation = await conn.request("conversations/get", {"conversationId": started["conversationId"]})
    assert conversation["responseIds"] == [rid]
    # the conversation goes on after the crash
    again = await conn.request("reply", {"responseId": rid, "prompt": "still there?"})
    events = await conn.until_done(again["responseId"])
    assert events[-1]["status"] == "completed"


async def test_graceful_stop_interrupts_running_responses(daemon):
    conn = await daemon.connect("unix")
    script = echo_script(*({"type": "text", "chunk": "x ", "delayMs": 20} for i in range(500)))
    started = await conn.request("prompt", {"prompt": script})
    rid = started["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= 3 else None)
    stop = asyncio.get_running_loop().run_in_executor(None, daemon.stop)
    events = await conn.until_done(rid)
    assert await stop == 0
    assert events[-2]["type"] == "error" and events[-2]["code"] == "interrupted"
    assert events[-1] == {"type": "done", "status": "error", "finishReason": "interrupted", "responseId": rid, "seq": len(events)}
    daemon.start()
    conn = await daemon.connect("unix")
    record = await conn.request("response/get", {"responseId": rid})
    assert record["status"] == "interrupted"


async def test_conversations_survive_restart_and_search(daemon):
    conn = await daemon.connect("unix")
    for text in ["the quick brown fox", "a lazy dog sleeps", "quick thinking wins"]:
        started = await conn.request("prompt", {"prompt": text})
        await conn.until_done(started["responseId"])
    daemon.stop()
    daemon.start()
    conn = await daemon.connect("unix")
    listed = await conn.request("conversations/list", {})
    assert [c["title"] for c in listed["conversations"]] == ["quick thinking wins", "a lazy dog sleeps", "the quick brown fox"]
    assert all(c["responseCount"] == 1 and c["model"] == "echo" for c in listed["conversations"])
    found = await conn.request("conversations/list", {"query": "quick"})
    assert sorted(c["title"] for c in found["conversations"]) == ["quick thinking wins", "the quick brown fox"]
    assert (await conn.request("conversations/list", {"query": 'fox" OR (('}))["conversations"] == []
    limited = await conn.request("conversations/list", {"limit": 1, "before": listed["conversations"][0]["updatedAt"]})
    assert [c["title"] for c in limited["conversations"]] == ["a lazy dog sleeps"]
    victim = listed["conversations"][1]["id"]
    await conn.request("conversations/delete", {"conversationId": victim})
    assert len((await conn.request("conversations/list", {}))["conversations"]) == 2
    assert (await conn.call("conversations/get", {"conversationId": victim}))["error"]["code"] == -32012


async def test_replay_of_an_interrupted_response_ends_with_done(daemon):
    conn = await daemon.connect("unix")
    script = echo_script(*({"type": "text", "chunk": "x ", "delayMs": 20} for i in range(500)))
    started = await conn.request("prompt", {"prompt": script})
    rid = started["responseId"]
    await conn.wait_for(lambda: True if len(conn.events(rid)) >= 5 else None)
    await asyncio.sleep(0.2)
    daemon.stop(signal.SIGKILL)
    daemon.start()
    conn = await daemon.connect("unix")
    await conn.request("response/subscribe", {"responseId": rid})
    events = await conn.until_done(rid)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events[-2:]] == ["error", "done"]
    assert events[-2]["code"] == "interrupted" and events[-1]["status"] == "error"
