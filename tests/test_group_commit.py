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
    """What the group commit needs of a live response: its event bodies, and how many are stored."""

    def __init__(self, response_id: str, events: list[bytes]) -> None:
        self.id = response_id
        self.bodies = bodies(events)
        self.stored_count = 0

    def unstored(self) -> EventBatch | None:
        if self.stored_count == len(self.bodies):
            return None
        return EventBatch(self.id, self.stored_count + 1, self.bodies[self.stored_count :])

    def stored(self, count: int) -> None:
        self.stored_count += count

    def ending(self, store: Store):
        return lambda: store.finish_response(
            self.id, status="completed", output=[assistant("done")], usage=None, error=None, duration_ms=1, events=self.bodies, stored=self.stored_count
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


async def test_ticks_write_rows_and_the_end_replaces_them_with_one(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    store = Store(path)
    group = GroupCommit(store, interval=0.01)
    turn(store, "conv_1", "resp_1", user("count"), None)
    events = [event("resp_1", seq, f"word{seq} ") for seq in range(1, 101)]
    response = Response("resp_1", [])
    for start in range(0, 96, 5):  # 96 events over ticks; the last 4 go with the ending
        response.bodies += bodies(events[start : min(start + 5, 96)])
        group.mark(response)
        await asyncio.sleep(0.03)
    assert count(path, "event_batches") > 1 and response.stored_count == 96
    response.bodies += bodies(events[96:])
    group.finish(response, response.ending(store))
    group.barrier()
    assert count(path, "event_batches") == 1 and response.stored_count == 100
    assert store.read_events("resp_1", 50) == events[50:]
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
