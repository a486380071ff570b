"""LSP-style ``Content-Length`` framing for byte-stream transports (stdio, unix, TCP).

``FrameDecoder`` is sans-IO: feed it bytes, get back message bodies and framing
faults. It never buffers more than one frame: the body of a frame over the
size limit is skipped as it arrives, and bytes that are not a header are
dropped up to the next ``Content-Length`` so the connection recovers.
"""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
_HEADER_END = b"\r\n\r\n"
_LENGTH = b"content-length"
_MAX_HEADER = 4096


def encode_frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)


def frame_header(body: bytes) -> bytes:
    """What goes before ``body`` in its frame (a writer that gathers buffers need not copy the body)."""
    return b"Content-Length: %d\r\n\r\n" % len(body)


class FrameFault(NamedTuple):
    """Bytes that could not be taken as a message: ``kind`` is "garbage" or "too_large"."""

    kind: str
    detail: str
    size: int = 0  # the declared length of a message too large; 0 for garbage


class FrameDecoder:
    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._skip = 0  # body bytes of an oversized frame still to drop
        self._in_garbage = False

    def feed(self, data: bytes) -> list[bytes | FrameFault]:
        """Take newly received bytes; return the complete bodies and faults, in order."""
        out: list[bytes | FrameFault] = []
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        buf = self._buf
        buf += data
        pos = 0
        while True:
            end = buf.find(_HEADER_END, pos)
            if end < 0:
                if len(buf) - pos > _MAX_HEADER:
                    pos = self._resync(buf, pos, len(buf) - len(_LENGTH), out)
                    continue
                break
            length = _content_length(buf, pos, end)
            if length is None:
                pos = self._resync(buf, pos, end + 4, out)
                continue
            self._in_garbage = False
            start = end + 4
            if length > self.max_size:
                out.append(FrameFault("too_large", f"a {length}-byte message is over the {self.max_size}-byte limit", length))
                available = len(buf) - start
                if available >= length:
                    pos = start + length
                    continue
                self._skip = length - available
                pos = len(buf)
                break
            if len(buf) - start < length:
                break
            out.append(bytes(buf[start : start + length]))
            pos = start + length
        if pos:
            del buf[:pos]
        return out

    def _resync(self, buf: bytearray, pos: int, limit: int, out: list[bytes | FrameFault]) -> int:
        """Drop bytes from ``pos`` up to the next header start (searched from pos+1)."""
        nxt = buf.lower().find(_LENGTH, pos + 1)
        if not self._in_garbage:
            out.append(FrameFault("garbage", "bytes that are not a Content-Length frame were dropped"))
            self._in_garbage = True
        if nxt < 0:
            return max(pos + 1, limit)
        return nxt


def _content_length(buf: bytearray, pos: int, end: int) -> int | None:
    """The Content-Length of the header block buf[pos:end], or None if it is not one."""
    if buf.startswith(b"Content-Length: ", pos):  # the usual, single-header frame
        digits = buf[pos + 16 : end]
        if digits.isdigit():
            return int(digits)
    if end - pos > _MAX_HEADER:
        return None
    length = None
    for line in bytes(buf[pos:end]).split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        if name.strip().lower() == _LENGTH:
            value = value.strip()
            if not value.isdigit():
                return None
            length = int(value)
    return length
