"""An event's envelope: the ``responseId`` and ``seq`` that end it on the wire.

Event structs declare both last and omit them at their defaults, so an event encoded
before it is stamped is its *body*, and the wire form is the body with
``,"responseId":"…","seq":N}`` in place of its closing brace: the same bytes msgspec
writes for the stamped event (a test holds every event type to that). The daemon keeps
both: it sends the wire form and stores the body, whose ever-changing seq would be most
of what compression leaves.
"""

from __future__ import annotations

__all__ = ["opening", "sealed"]


def opening(response_id: str) -> bytes:
    """What every envelope of the response starts with."""
    return b',"responseId":"%s","seq":' % response_id.encode()


def sealed(body: bytes, opening: bytes, seq: int) -> bytes:
    """The wire form of an event body."""
    return b"%b%b%d}" % (body[:-1], opening, seq)
