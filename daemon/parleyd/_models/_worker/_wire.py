"""What the daemon and a model worker process say to each other, and how it is framed.

One socket pair per worker. A frame is a 4-byte big-endian length and a msgpack body
holding one tagged struct. The daemon sends ``Start`` once, then ``Job`` and
``Cancel``; the worker answers ``Ready`` (or ``LoadFailed``, then exits) and, for each
job, its events as ``Emitted`` and then ``Finished``, after which it is free for the
next job. The events are parley's own (``AnyEvent``): a runner produces the same
parts as any model, and the daemon only passes them on.
"""

from __future__ import annotations

import socket
from typing import Any, Literal, Union

import msgspec

from parley._types import AnyEvent

_HEADER = 4
MAX_FRAME = 256 * 1024 * 1024  # a job carries the whole chat: its attachments too


class _Message(msgspec.Struct, tag=True, array_like=True):
    pass


# ---- daemon -> worker ----


class Start(_Message):
    """The runner to load (a name in the worker's table) and its settings."""

    runner: str
    settings: dict[str, Any]


class Job(_Message):
    id: int
    request: dict[str, Any]


class Cancel(_Message):
    id: int


# ---- worker -> daemon ----


class Ready(_Message):
    """Loaded; ``info`` is what the runner reports of itself (context size, threads…)."""

    load_s: float
    info: dict[str, Any]


class LoadFailed(_Message):
    kind: str
    message: str


class Emitted(_Message):
    job: int
    event: AnyEvent


class Finished(_Message):
    """The job is over and the worker is free. ``stats``: counts the runner keeps."""

    job: int
    status: Literal["completed", "cancelled", "failed"]
    kind: str | None = None
    message: str | None = None
    stats: dict[str, int] = {}


ToWorker = Union[Start, Job, Cancel]
FromWorker = Union[Ready, LoadFailed, Emitted, Finished]

_encode = msgspec.msgpack.Encoder().encode


def frame(message: _Message) -> bytes:
    body = _encode(message)
    return len(body).to_bytes(_HEADER, "big") + body


def frame_length(header: bytes) -> int:
    length = int.from_bytes(header, "big")
    if length > MAX_FRAME:
        raise ValueError(f"a worker frame of {length} bytes is over the limit")
    return length


decode_to_worker = msgspec.msgpack.Decoder(ToWorker).decode
decode_from_worker = msgspec.msgpack.Decoder(FromWorker).decode


def receive(sock: socket.socket) -> ToWorker | None:
    """The worker's blocking read of the next message; None when the daemon closed its end."""
    header = _read_exactly(sock, _HEADER)
    if header is None:
        return None
    body = _read_exactly(sock, frame_length(header))
    return None if body is None else decode_to_worker(body)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
