"""Content that OpenAI's two APIs send alike: images by URL or data: URL, arguments as JSON text."""

from __future__ import annotations

import json
from typing import Any

from parley._types import Attachment

from ._errors import HttpError


def image_url(url: str) -> Attachment:
    """An image given as a URL, or inline as a base64 ``data:`` URL."""
    if not url.startswith("data:"):
        return Attachment(url=url)
    header, sep, data = url[5:].partition(",")
    mime_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64":
        raise HttpError.bad_request("an image data: URL must be base64 (data:image/png;base64,...)")
    return Attachment(mime_type=mime_type or None, content=data)


def json_arguments(arguments: str) -> dict[str, Any]:
    """A tool call's arguments, sent as JSON text, as the object parley keeps."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        raise HttpError.bad_request(f"tool call arguments are not JSON: {arguments[:80]!r}") from None
    if not isinstance(value, dict):
        raise HttpError.bad_request("tool call arguments must be a JSON object")
    return value
