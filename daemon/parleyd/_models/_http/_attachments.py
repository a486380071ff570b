"""Attachments as bytes a provider can take: from base64 content, a path, or a URL."""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import mimetypes
import os
import urllib.parse
from dataclasses import dataclass

import httpx
from parley._types import Attachment

from ..._mime import sniff
from .._base import ModelFailure

MAX_DOWNLOAD = 50 * 1024 * 1024

_ALIASES = {
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}


@dataclass
class Blob:
    """One attachment, ready to send: a remote ``url`` left for the provider to fetch, or ``b64``."""

    mime_type: str
    b64: str | None = None
    url: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        mime = self.mime_type.split(";")[0].strip().lower()
        self.mime_type = _ALIASES.get(mime, mime)

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.b64}"

    def text(self) -> str:
        return base64.b64decode(self.b64 or "").decode("utf-8", "replace")


def accepts(patterns: list[str], mime_type: str) -> bool:
    return any(fnmatch.fnmatchcase(mime_type, pattern) for pattern in patterns)


def _guess(name: str | None) -> str | None:
    return mimetypes.guess_type(name)[0] if name else None


def _bad(message: str) -> ModelFailure:
    return ModelFailure("bad_request", message)


async def load(attachment: Attachment, *, fetch: bool, client: httpx.AsyncClient | None = None) -> Blob:
    """The attachment as a Blob; a remote URL is downloaded only when ``fetch``."""
    mime = attachment.mime_type
    if attachment.content is not None:
        try:
            head = base64.b64decode("".join(attachment.content[:96].split())[:64])
        except (binascii.Error, ValueError):
            head = b""
        return Blob(mime or sniff(head) or "application/octet-stream", b64=attachment.content)
    if attachment.path is not None:
        return await _from_path(attachment.path, mime)
    url = attachment.url or ""
    if url.startswith("data:"):
        return _from_data_url(url, mime)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        return await _from_path(urllib.parse.unquote(parsed.path), mime)
    if parsed.scheme not in ("http", "https"):
        raise _bad(f"attachment URL scheme {parsed.scheme!r} is not supported (http, https, data, file)")
    name = os.path.basename(parsed.path) or None
    if not fetch:
        return Blob(mime or _guess(parsed.path) or "application/octet-stream", url=url, name=name)
    data, content_type = await _download(url, client)
    mime = mime or content_type or _guess(parsed.path) or sniff(data[:16]) or "application/octet-stream"
    return Blob(mime, b64=base64.b64encode(data).decode("ascii"), name=name)


async def _from_path(path: str, mime: str | None) -> Blob:
    full = os.path.expanduser(path)
    try:
        data = await asyncio.to_thread(_read, full)
    except OSError as exc:
        raise _bad(f"cannot read attachment {path}: {exc.strerror or exc}") from None
    return Blob(
        mime or _guess(full) or sniff(data[:16]) or "application/octet-stream",
        b64=base64.b64encode(data).decode("ascii"),
        name=os.path.basename(full),
    )


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _from_data_url(url: str, mime: str | None) -> Blob:
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise _bad("an attachment's data: URL has no comma")
    params = header.split(";")
    declared = params[0] or None
    if "base64" in params[1:]:
        b64 = payload
    else:
        b64 = base64.b64encode(urllib.parse.unquote_to_bytes(payload)).decode("ascii")
    return Blob(mime or declared or "application/octet-stream", b64=b64)


async def _download(url: str, client: httpx.AsyncClient | None) -> tuple[bytes, str | None]:
    own = client is None
    client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0))
    try:
        async with client.stream("GET", url, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise ModelFailure("bad_request", f"attachment {url}: the server answered {response.status_code}")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_DOWNLOAD:
                    raise _bad(f"attachment {url} is larger than {MAX_DOWNLOAD // 2**20} MiB")
            content_type = response.headers.get("content-type", "").split(";")[0].strip() or None
            return bytes(data), content_type
    except httpx.HTTPError as exc:
        raise ModelFailure("network", f"could not download attachment {url}: {type(exc).__name__}", retryable=True) from None
    finally:
        if own:
            await client.aclose()
