"""Fewer, larger events for a connection that reads slowly (PROTOCOL.md §7.2).

Once a connection's backlog passes a threshold, the live events of each response it
follows are held instead of written. Consecutive deltas of one part (text, reasoning,
tool-call arguments) merge into one event whose ``seq``…``seqEnd`` covers them, its
chunk all of theirs; every other event is held as it is. What is held goes out when
the backlog has drained, or before any other message to the connection, so the order
a client sees never changes. Only a response whose held events still outgrow the
backlog limit ends with ``response/lagged``, the last resort.
"""

from __future__ import annotations

import msgspec

from parley._types import AnyEvent, DeltaEvent, ReasoningEvent, ToolCallArgsEvent

from ._live import event_message

__all__ = ["HeldEvents"]

_MAX_CHUNK = 64 * 1024  # characters in one merged event: a slow reader still gets steady frames
_encode = msgspec.json.Encoder().encode


class _Run:
    """Consecutive deltas of one part, merged."""

    __slots__ = ("first", "message", "chunks", "size", "seq_end")

    def __init__(self, event: DeltaEvent, message: bytes) -> None:
        self.first = event
        self.message = message  # the first event's own notification, sent as it is if nothing joins it
        self.chunks = [event.chunk]
        self.size = len(event.chunk)
        self.seq_end = event.seq

    def takes(self, event: AnyEvent) -> bool:
        first = self.first
        if type(event) is not type(first) or event.seq != self.seq_end + 1 or self.size + len(event.chunk) > _MAX_CHUNK:
            return False
        if event.part_index != first.part_index or event.message_index != first.message_index:  # type: ignore[union-attr]
            return False
        if type(event) is ToolCallArgsEvent:
            return event.tool_call_id == first.tool_call_id  # type: ignore[union-attr]
        if type(event) is ReasoningEvent:  # a signature or a redaction stays an event of its own
            return not (event.redacted or first.redacted or event.provider_metadata or first.provider_metadata)  # type: ignore[union-attr]
        return True

    def add(self, event: AnyEvent) -> None:
        self.chunks.append(event.chunk)
        self.size += len(event.chunk)
        self.seq_end = event.seq

    def encoded(self) -> bytes:
        if len(self.chunks) == 1:
            return self.message
        merged = msgspec.structs.replace(self.first, chunk="".join(self.chunks), seq_end=self.seq_end)
        return event_message(_encode(merged))


class HeldEvents:
    """One response's events held for one connection, merged where they can be."""

    __slots__ = ("first_seq", "size", "_held")

    def __init__(self, first_seq: int) -> None:
        self.first_seq = first_seq  # the first seq held: lagging, the client has up to the one before
        self.size = 0  # about the bytes the held events will take on the wire
        self._held: list[_Run | bytes] = []

    def add(self, event: AnyEvent, message: bytes) -> None:
        last = self._held[-1] if self._held else None
        if isinstance(last, _Run) and last.takes(event):
            last.add(event)
            self.size += len(event.chunk)
        elif isinstance(event, DeltaEvent):
            self._held.append(_Run(event, message))
            self.size += len(message)
        else:
            self._held.append(message)
            self.size += len(message)

    def messages(self) -> list[bytes]:
        """The notifications to send, in seq order."""
        return [item if isinstance(item, bytes) else item.encoded() for item in self._held]
