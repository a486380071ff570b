"""``-a/--attachment`` and ``--at PATH MIMETYPE``: llm's attachment options for ``parley prompt``.

As llm's: a value is a URL (it has ``://``), ``-`` (the bytes on stdin) or a
file path. A path is sent resolved, as ``path``: the CLI and the daemon share the
machine (the CLI talks to its unix socket). Stdin is sent as ``content``. A URL is
sent as ``url``, for the daemon or the model to fetch.

The MIME type: llm asks puremagic. parley sniffs the first bytes for the common
image, audio and document types (``parleyd._mime``), then goes by the file name's
extension (``mimetypes``). A URL takes the ``Content-Type`` of a HEAD request, as
llm's does, which also checks that the URL answers. When no type is found, the
attachment is refused with llm's message; ``--at`` names the type instead.
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
from pathlib import Path

import parley

from .._mime import HEAD, sniff

_URL_TIMEOUT = 10.0


class AttachmentError(Exception):
    """An attachment that cannot be sent: a missing file, an unknown type, a URL that does not answer."""


def add_attachment_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attachment", dest="attachments", action="append", default=[], metavar="PATH|URL|-", help="attach a file, a URL, or - for stdin; may repeat")
    p.add_argument(
        "--at", "--attachment-type", dest="attachment_types", nargs=2, action="append", default=[], metavar=("PATH|URL|-", "MIMETYPE"),
        help="an attachment with its MIME type given: --at image.jpg image/jpeg",
    )  # fmt: skip


def load_attachments(args: argparse.Namespace) -> list[parley.Attachment]:
    """The attachments the arguments ask for, ``-a`` first, then ``--at``; SystemExit with one line."""
    try:
        return [resolve(v) for v in args.attachments] + [resolve(v, mime) for v, mime in args.attachment_types]
    except AttachmentError as exc:
        raise SystemExit(f"parley: {exc}") from None


def reads_stdin(args: argparse.Namespace) -> bool:
    """Whether an attachment takes stdin, so that it is not read as prompt text too."""
    return "-" in args.attachments or any(v == "-" for v, _ in args.attachment_types)


def resolve(value: str, mime_type: str | None = None) -> parley.Attachment:
    """One ``-a`` (``mime_type`` None: guessed) or ``--at`` value as an attachment."""
    if "://" in value:
        return parley.attachment(url=value, mime_type=mime_type or _url_type(value))
    if value == "-":
        content = sys.stdin.buffer.read()
        mime_type = mime_type or sniff(content)
        if mime_type is None:
            raise AttachmentError("Could not determine mimetype of stdin (name it: --at - MIMETYPE)")
        return parley.attachment(content=content, mime_type=mime_type)
    path = Path(value)
    if not path.exists():
        raise AttachmentError(f"File {value} does not exist")
    path = path.resolve()
    if mime_type is None:
        mime_type = path_type(path)
        if mime_type is None:
            raise AttachmentError(f"Could not determine mimetype of {value} (name it: --at {value} MIMETYPE)")
    return parley.attachment(path=str(path), mime_type=mime_type)


def path_type(path: Path) -> str | None:
    """A file's MIME type: its bytes first (an extension can lie), then its extension."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD)
    except OSError as exc:
        raise AttachmentError(f"cannot read {path}: {exc.strerror or exc}") from None
    return sniff(head) or mimetypes.guess_type(path.name)[0]


def _url_type(url: str) -> str | None:
    """The ``Content-Type`` a HEAD request answers (without its parameters); AttachmentError if it fails."""
    import urllib.error  # with http.client and ssl: only for a prompt that attaches a URL
    import urllib.request

    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": f"parley/{parley.__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=_URL_TIMEOUT) as response:
            content_type = response.headers.get("Content-Type")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", None) or exc
        raise AttachmentError(f"{url}: {reason}") from None
    if not content_type:
        return mimetypes.guess_type(url)[0]
    return content_type.split(";")[0].strip() or None
