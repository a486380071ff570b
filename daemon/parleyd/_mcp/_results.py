"""An MCP ``CallToolResult`` as a parley tool result.

Text blocks are the output the model reads. Images and audio become the result's
attachments (base64, with their MIME type). A resource link is a line naming its
URI; an embedded resource is that line and its text (a binary one becomes an
attachment too). ``structuredContent`` is kept whole in ``structuredContent``, and
is the output when the server sent no text. ``isError`` makes the text the result's
``exception``, which the model sees as the tool failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from parley._types import Attachment


@dataclass
class Converted:
    output: str = ""
    exception: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    structured: Any = None


def convert(result: Any) -> Converted:
    """``result``: an ``mcp_types.CallToolResult`` (read by attribute, so no import is needed here)."""
    texts: list[str] = []
    out = Converted(structured=getattr(result, "structured_content", None))
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind in ("image", "audio"):
            out.attachments.append(Attachment(mime_type=block.mime_type, content=block.data))
        elif kind == "resource_link":
            texts.append(_reference(block.uri, getattr(block, "mime_type", None), getattr(block, "name", None)))
        elif kind == "resource":
            resource = block.resource
            texts.append(_reference(resource.uri, resource.mime_type, None))
            if getattr(resource, "text", None) is not None:
                texts.append(resource.text)
            elif getattr(resource, "blob", None) is not None:
                out.attachments.append(Attachment(mime_type=resource.mime_type, content=resource.blob))
    text = "\n".join(texts)
    if not text and out.structured is not None:
        text = json.dumps(out.structured, ensure_ascii=False)
    if getattr(result, "is_error", False):
        out.exception = text or "the tool reported an error"
    else:
        out.output = text
    return out


def _reference(uri: str, mime_type: str | None, name: str | None) -> str:
    bits = [f"[resource: {uri}"] + ([f"name={name}"] if name else []) + ([f"type={mime_type}"] if mime_type else [])
    return " ".join(bits) + "]"
