"""Property tests, with hypothesis: the framing decoder, params validation, and a real daemon fed
random requests. Thousands of cases a run; a failing one is printed, shrunk.

- Frames cut at any points decode to the same bodies; an oversized frame is one fault in its
  place, its body never held; garbage before a frame is one fault and the frame still decodes.
- Any JSON as any method's params either validates or is a ``msgspec.ValidationError``.
- A daemon answers every random request with a result or a documented error (never the
  internal -32603 of its own bugs), keeps serving, and logs no traceback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DaemonProcess
from parley._errors import REQUEST_ERRORS
from parley._framing import _MAX_HEADER, FrameDecoder, FrameFault, encode_frame
from parley._methods import CLIENT_REQUESTS

MAX = 256  # the decoder's size limit in these tests

bodies = st.binary(min_size=0, max_size=2 * MAX)
#: Bytes that cannot start or join a header: no colon, no whitespace (a header's name may be padded with it).
garbage = st.binary(min_size=1, max_size=64).map(lambda b: b.translate(bytes.maketrans(b": \t\r\n\x0b\x0c", b"_______")))


def feed_in_pieces(data: bytes, cuts: list[int], max_size: int = MAX) -> tuple[list[bytes | FrameFault], int]:
    """Feed ``data`` cut at ``cuts``; return what came out and the most the decoder held."""
    decoder = FrameDecoder(max_size=max_size)
    out: list[bytes | FrameFault] = []
    held = 0
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:]):
        out += decoder.feed(data[start:end])
        held = max(held, len(decoder._buf))
    return out, held


@settings(max_examples=2000)
@given(st.lists(bodies, max_size=8), st.lists(st.integers(min_value=0), max_size=20))
def test_frames_cut_anywhere_decode_to_their_bodies(messages, cuts):
    data = b"".join(encode_frame(m) for m in messages)
    out, held = feed_in_pieces(data, cuts)
    assert out == [m if len(m) <= MAX else FrameFault("too_large", f"a {len(m)}-byte message is over the {MAX}-byte limit", len(m)) for m in messages]
    assert held <= MAX + _MAX_HEADER  # a frame within the limit, at most: an oversized body is never held


@settings(max_examples=1000)
@given(st.lists(st.tuples(st.one_of(st.none(), garbage), bodies.filter(lambda b: len(b) <= MAX)), min_size=1, max_size=6), st.lists(st.integers(min_value=0), max_size=10))
def test_garbage_before_a_frame_is_one_fault_and_the_frame_survives(frames, cuts):
    data = b"".join((junk or b"") + encode_frame(body) for junk, body in frames)
    out, _ = feed_in_pieces(data, cuts)
    assert [x for x in out if isinstance(x, bytes)] == [body for _, body in frames]
    assert sum(isinstance(x, FrameFault) and x.kind == "garbage" for x in out) == sum(j is not None for j, _ in frames)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
#: Objects shaped like params: the real field names, with random values, and random names.
FIELDS = sorted({f for m in CLIENT_REQUESTS.values() for f in m.params.__struct_encode_fields__})
params_like = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=5) | json_values


@settings(max_examples=3000)
@given(st.sampled_from(sorted(CLIENT_REQUESTS)), params_like)
def test_any_json_as_params_validates_or_is_a_validation_error(method, params):
    raw = msgspec.json.encode(params)
    try:
        msgspec.json.decode(raw, type=CLIENT_REQUESTS[method].params)
    except msgspec.ValidationError:
        pass


# ---- a real daemon -------------------------------------------------------------


class SyncConnection:
    """Frames over the daemon's unix socket, read until a given answer."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.decoder = FrameDecoder()
        self.pending: list[dict] = []
        self.ids = iter(range(1, 10**9))

    def call(self, method: str, params: object) -> dict:
        msg_id = next(self.ids)
        self.sock.sendall(encode_frame(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}, allow_nan=False).encode()))
        while True:
            for message in self.pending:
                if message.get("id") == msg_id and "method" not in message:
                    self.pending.remove(message)
                    return message
            self.pending = [m for m in self.pending if "method" not in m]  # events of responses it started
            for item in self.decoder.feed(self.sock.recv(1 << 16)):
                assert not isinstance(item, FrameFault), item
                self.pending.append(json.loads(item))


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[DaemonProcess, SyncConnection]]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    home.mkdir()
    daemon = DaemonProcess(home)
    daemon.start()
    conn = SyncConnection(str(daemon.socket))
    assert "result" in conn.call("initialize", {"protocolVersion": 1, "clientInfo": {"name": "fuzz"}})
    yield daemon, conn
    conn.sock.close()
    daemon.stop()
    assert "Traceback" not in daemon.log


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(sorted(CLIENT_REQUESTS)), params=params_like)
def test_a_daemon_answers_random_requests_with_documented_errors(served, method, params):
    _, conn = served
    answer = conn.call(method, params)
    if "error" in answer:
        assert answer["error"]["code"] in REQUEST_ERRORS and answer["error"]["code"] != -32603, answer
        assert "Traceback" not in json.dumps(answer)
    else:
        assert "result" in answer
    assert "echo" in [m["id"] for m in conn.call("models/list", {})["result"]["models"]]
