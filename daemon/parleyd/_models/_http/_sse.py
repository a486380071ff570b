"""A Server-Sent Events decoder that works on bytes as they arrive.

It follows the WHATWG event-stream rules: lines end with CRLF, LF or CR (a CR
at the end of one network chunk may pair with an LF at the start of the next);
a blank line dispatches the event; ``:`` starts a comment; ``data`` lines are
joined with LF; one space after the colon is dropped; a leading BOM is ignored.
One deviation, on purpose: an event left without its blank line when the
stream ends is still dispatched, because some servers end that way.
"""

from __future__ import annotations


_BOM = b"\xef\xbb\xbf"


class ServerSentEvent:
    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, event: str = "message", data: str = "", id: str | None = None, retry: int | None = None) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def __repr__(self) -> str:
        return f"ServerSentEvent(event={self.event!r}, data={self.data!r})"


class SSEDecoder:
    """Feed it bytes; it returns the events those bytes complete."""

    __slots__ = ("_after_cr", "_data", "_event", "_id", "_rest", "_retry", "_started")

    def __init__(self) -> None:
        self._rest = b""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._started = False
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if not chunk:
            return []
        if self._after_cr and chunk[:1] == b"\n":  # the LF of a CRLF split across chunks
            chunk = chunk[1:]
        self._after_cr = False
        buf = self._rest + chunk if self._rest else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._rest = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        lines = buf.splitlines(keepends=True)
        if lines and lines[-1][-1:] not in (b"\n", b"\r"):
            self._rest = lines.pop()
        else:
            self._rest = b""
            self._after_cr = buf[-1:] == b"\r"
        events: list[ServerSentEvent] = []
        for raw in lines:
            event = self._line(raw.rstrip(b"\r\n"))
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[ServerSentEvent]:
        """The end of the stream: an unterminated last line and event, if any."""
        events = []
        if self._rest:
            event = self._line(self._rest)
            self._rest = b""
            if event is not None:
                events.append(event)
        event = self._line(b"")
        if event is not None:
            events.append(event)
        return events

    def _line(self, line: bytes) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[:1] == b":":
            return None
        text = line.decode("utf-8", "replace")
        field, colon, value = text.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id, self._retry)
        self._event = ""
        self._data = []
        return event
