"""A file's MIME type told by its first bytes: the signatures of the types models take.

One table for the CLI (``parley prompt -a``: a file or stdin before it is sent) and the HTTP
providers (content that came without a type). No imports: the CLI's start stays light.
"""

from __future__ import annotations

#: (signature, its offset, MIME type).
SIGNATURES: list[tuple[bytes, int, str]] = [
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF8", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftypheic", 4, "image/heic"),
    (b"%PDF", 0, "application/pdf"),
    (b"WAVE", 8, "audio/wav"),
    (b"ID3", 0, "audio/mpeg"),
    (b"\xff\xfb", 0, "audio/mpeg"),
    (b"\xff\xf3", 0, "audio/mpeg"),
    (b"fLaC", 0, "audio/flac"),
    (b"OggS", 0, "audio/ogg"),
]

#: Bytes enough to hold every signature.
HEAD = max(offset + len(signature) for signature, offset, _ in SIGNATURES)


def sniff(head: bytes) -> str | None:
    """The MIME type the first bytes announce, if they are of a type in ``SIGNATURES``."""
    for signature, offset, mime_type in SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return mime_type
    return None
