"""ACP → parley: a ``session/prompt``'s content blocks as the parts of one user message.

* ``text`` → a text part.
* ``resource`` (embedded) with ``text`` → a text part holding it, in a
  ``<resource uri="…">`` element; with ``blob`` → an attachment (base64 content).
* ``resource_link`` to a ``file://`` URI → the file's text, read with the
  client's ``fs/read_text_file`` when it offers it (so an unsaved buffer is
  what the model sees), else from disk; inlined like an embedded resource.
  A file that is not text (an image, a PDF, or bytes that are not UTF-8) is
  attached. A link to another scheme is attached by URL when it names an
  image, else mentioned in the text.
* ``image`` and ``audio`` → attachments.
"""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

from parley._types import AnyPart, Attachment, AttachmentPart, TextPart

from ._types import AudioContent, ContentBlock, EmbeddedResource, ImageContent, ResourceLink, TextContent
from ._wire import AcpError, invalid_params

#: Reads a file's text through the client; None when the client offers no ``fs/read_text_file``.
ReadText = Callable[[str], Awaitable[str]] | None

_MAX_FILE = 16 * 1024 * 1024  # bytes of a linked file taken from disk


def inlined(uri: str, text: str, mime_type: str | None = None) -> str:
    mime = f' mimeType="{mime_type}"' if mime_type else ""
    return f'<resource uri="{uri}"{mime}>\n{text}\n</resource>'


async def user_parts(blocks: list[ContentBlock], read_text: ReadText) -> list[AnyPart]:
    parts: list[AnyPart] = []
    for block in blocks:
        kind = type(block)
        if kind is TextContent:
            parts.append(TextPart(text=block.text))  # type: ignore[union-attr]
        elif kind is ImageContent or kind is AudioContent:
            parts.append(_attachment(block.mime_type, content=block.data))  # type: ignore[union-attr]
        elif kind is EmbeddedResource:
            parts.append(_embedded(block))  # type: ignore[arg-type]
        elif kind is ResourceLink:
            parts.append(await _linked(block, read_text))  # type: ignore[arg-type]
    if not parts:
        raise invalid_params("params.prompt: a prompt needs at least one content block")
    return parts


def _attachment(mime_type: str | None, *, content: str | None = None, url: str | None = None) -> AttachmentPart:
    return AttachmentPart(attachment=Attachment(mime_type=mime_type, content=content, url=url))


def _embedded(block: EmbeddedResource) -> AnyPart:
    resource = block.resource
    uri = resource.get("uri")
    if not isinstance(uri, str):
        raise invalid_params("params.prompt: an embedded resource needs a `uri`")
    mime = resource.get("mimeType") if isinstance(resource.get("mimeType"), str) else None
    if isinstance(resource.get("text"), str):
        return TextPart(text=inlined(uri, resource["text"], mime))
    if isinstance(resource.get("blob"), str):
        return _attachment(mime or _guess(uri), content=resource["blob"])
    raise invalid_params("params.prompt: an embedded resource needs `text` or `blob`")


async def _linked(link: ResourceLink, read_text: ReadText) -> AnyPart:
    parsed = urlsplit(link.uri)
    mime = link.mime_type or _guess(link.uri)
    if parsed.scheme != "file":
        if mime and mime.startswith("image/") and parsed.scheme in ("http", "https"):
            return _attachment(mime, url=link.uri)
        return TextPart(text=f"[{link.title or link.name}]({link.uri})")
    path = unquote(parsed.path)
    textual = mime is None or mime.startswith("text/") or mime in ("application/json", "application/xml")
    if textual and read_text is not None:
        try:
            return TextPart(text=inlined(link.uri, await read_text(path), mime))
        except AcpError:
            pass  # not open in the editor, or not text: read it here
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as exc:
        raise invalid_params(f"params.prompt: cannot read {link.uri}: {exc.strerror or exc}") from exc
    if len(data) > _MAX_FILE:
        raise invalid_params(f"params.prompt: {link.uri} is over {_MAX_FILE} bytes")
    if textual:
        try:
            return TextPart(text=inlined(link.uri, data.decode("utf-8"), mime))
        except UnicodeDecodeError:
            pass
    return _attachment(mime or "application/octet-stream", content=base64.b64encode(data).decode())


def _guess(uri: str) -> str | None:
    return mimetypes.guess_type(os.path.basename(urlsplit(uri).path))[0]
