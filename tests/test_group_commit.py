"""The group commit and the store's end of a response, on real database files.

What the daemon promises (PROTOCOL.md 7.4): what a client was told of is committed. An ending
is written at once but committed at the turn's barrier (a transport calls it before it writes),
so the endings of one turn share a commit; until then only the daemon's own connection sees it.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

from parley import assistant, user
from parleyd._group_commit import GroupCommit
from parleyd._store import EventBatch, Store
from test_store import bodies, count, event, turn


class Response:
    """What the group commit needs of a live response: its id and its event bodies."""

    def __init__(self, response_id: str, events: list[bytes]) -> None:
        self.id = response_id
        self.bodies = bodies(events)

    def ending(self, store: Store):
        return lambda stored: store.finish_response(
            self.id, status="completed", output=[assistant("done")], usage=None, error=None, duration_ms=1, events=self.bodies, stored=stored
        )


def status_seen_elsewhere(path: Path, response_id: str) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT status FROM responses WHERE id = ?", (response_id,)).fetchone()[0]
    finally:
        conn.close()


async def test_an_ending_is_committed_at_the_barrier_with_the_others_of_its_turn(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    store = Store(path)
    group = GroupCommit(store)
    responses = []
    for i in range(3):
        turn(store, f"conv_{i}", f"resp_{i}", user("count"), None)
        responses.append(Response(f"resp_{i}", [event(f"resp_{i}", seq, f"w{seq} ") for seq in range(1, 41)]))
    for response in responses:
        group.finish(response, response.ending(store))
        assert store.get_response(response.id).status == "completed"  # the daemon reads its own writes
        assert status_seen_elsewhere(path, response.id) == "running"  # not committed: no one was told
    group.barrier()  # a transport is about to write
    assert [status_seen_elsewhere(path, r.id) for r in responses] == ["completed"] * 3
    assert count(path, "event_batches") == 3
    for response in responses:
        assert store.read_events(response.id) == [event(response.id, seq, f"w{seq} ") for seq in range(1, 41)]
    store.close()


async def test_without_a_write_the_turn_still_commits(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    store = Store(path)
    group = GroupCommit(store)
    turn(store, "conv_1", "resp_1", user("count"), None)
    response = Response("resp_1", [event("resp_1", 1, "w")])
    group.finish(response, response.ending(store))
    await asyncio.sleep(0)  # the end of the turn
    assert status_seen_elsewhere(path, "resp_1") == "completed"
    store.close()


async def test_ticks_write_one_journal_row_for_every_stream_and_the_end_one_event_row(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    store = Store(path)
    group = GroupCommit(store, interval=0.01)
    streams = []
    for i in range(3):
        turn(store, f"conv_{i}", f"resp_{i}", user("count"), None)
        streams.append((Response(f"resp_{i}", []), [event(f"resp_{i}", seq, f"word{seq} ") for seq in range(1, 101)]))
    for start in range(0, 96, 5):  # 96 events of each over ticks; the last 4 go with the ending
        for response, events in streams:
            response.bodies += bodies(events[start : min(start + 5, 96)])
            group.mark(response)
        await asyncio.sleep(0.03)
        assert count(path, "event_journal") == start // 5 + 1  # one row a tick for all three, committed
    assert count(path, "event_batches") == 0
    for response, events in streams:
        response.bodies += bodies(events[96:])
        group.finish(response, response.ending(store))
    group.barrier()
    assert count(path, "event_batches") == 3
    for response, events in streams:
        assert store.read_events(response.id, 50) == events[50:]
    group.flush()  # the next tick: no running response needs the journal
    assert count(path, "event_journal") == 0
    store.close()


async def test_the_journal_keeps_only_what_running_responses_need(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    store = Store(path)
    group = GroupCommit(store)
    turn(store, "conv_1", "resp_1", user("long"), None)
    turn(store, "conv_2", "resp_2", user("short"), None)
    long, short = Response("resp_1", []), Response("resp_2", [])
    short.bodies += bodies([event("resp_2", 1, "a")])
    group.mark(short)
    group.flush()  # row 1: the short one's
    for seq in range(1, 4):  # rows 2-4: the long one's, then both
        long.bodies += bodies([event("resp_1", seq, "b")])
        group.mark(long)
        if seq == 3:
            short.bodies += bodies([event("resp_2", 2, "c")])
            group.mark(short)
        group.flush()
    assert count(path, "event_journal") == 4
    group.finish(short, short.ending(store))
    group.flush()
    assert count(path, "event_journal") == 3, "row 1 went with the short response; the long one needs 2-4"
    group.finish(long, long.ending(store))
    group.flush()
    assert count(path, "event_journal") == 0
    store.close()


async def test_a_long_response_is_spilled_to_its_event_log(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("parleyd._group_commit.SPILL_AFTER", 3)
    path = tmp_path / "parley.db"
    store = Store(path)
    group = GroupCommit(store)
    turn(store, "conv_1", "resp_1", user("long"), None)
    events = [event("resp_1", seq, f"w{seq} ") for seq in range(1, 11)]
    response = Response("resp_1", [])
    for e in events[:6]:  # a row a tick
        response.bodies += bodies([e])
        group.mark(response)
        group.flush()
    assert store.read_events("resp_1") == events[:4], "rows 1-4 spilled at the tick of row 4"
    assert count(path, "event_journal") == 2, "rows 5-6: the events after"
    response.bodies += bodies(events[6:])
    group.finish(response, response.ending(store))
    group.barrier()
    assert store.read_events("resp_1") == events
    store.close()


def test_after_a_crash_the_journal_ends_up_in_the_event_logs(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    store = Store(path)
    for i in (1, 2, 3):
        turn(store, f"conv_{i}", f"resp_{i}", user("count"), None)
    events = {i: [event(f"resp_{i}", seq, f"w{seq} ") for seq in range(1, 9)] for i in (1, 2, 3)}
    store.append_events("resp_1", 1, bodies(events[1][:3]))  # spilled before the crash
    store.journal_events([EventBatch("resp_1", 1, bodies(events[1][:4])), EventBatch("resp_2", 1, bodies(events[2][:2]))])
    store.journal_events([EventBatch("resp_1", 5, bodies(events[1][4:6])), EventBatch("resp_3", 1, bodies(events[3][:1]))])
    store.journal_events([EventBatch("resp_2", 3, bodies(events[2][2:5]))])
    store.finish_response("resp_3", status="completed", output=[], usage=None, error=None, duration_ms=1, events=bodies(events[3]))
    store.close()  # the daemon died here: resp_1 and resp_2 still running

    store = Store(path)
    store.settle_journal()
    assert store.read_events("resp_1") == events[1][:6]
    assert store.read_events("resp_2") == events[2][:5]
    assert store.read_events("resp_3") == events[3], "an ended response keeps its own log"
    assert count(path, "event_journal") == 0
    store.close()


def test_a_large_response_keeps_its_rows_and_appends_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    store = Store(path)
    turn(store, "conv_1", "resp_1", user("count"), None)
    noise = random.Random(16)
    events = [event("resp_1", seq, noise.randbytes(500).hex()) for seq in range(1, 1501)]  # 1.5 MB, hardly compressible
    for first in range(1, 1401, 100):
        store.append_events("resp_1", first, bodies(events[first - 1 : first + 99]))
    store.finish_response("resp_1", status="completed", output=[], usage=None, error=None, duration_ms=1, events=bodies(events), stored=1400)
    assert store.read_events("resp_1") == events
    assert count(path, "event_batches") > 1  # not compressed again as one
    store.close()
