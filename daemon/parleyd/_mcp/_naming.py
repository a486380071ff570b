"""The names models see for MCP tools: ``<server>__<tool>``, held to ``^[A-Za-z0-9_-]{1,64}$``.

Providers accept only such names (OpenAI's and Anthropic's rule), while MCP allows
dots, slashes and any length. A character outside the set becomes ``_``; a name too
long keeps its head and ends with a hash of the whole, so that it stays unique and
the same from one start to the next. The tool's own name is what goes to its server.
"""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 64
SEPARATOR = "__"
_BAD = re.compile(r"[^A-Za-z0-9_-]")
VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def model_name(server: str, tool: str) -> str:
    """The name a model calls this tool by."""
    raw = f"{server}{SEPARATOR}{tool}"
    name = _BAD.sub("_", raw)
    if name == raw and len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]  # changed or cut: keep two raw names apart
    return f"{name[: MAX_LENGTH - 9]}_{digest}"


def file_name(server: str) -> str:
    """A server's name as a file name (its log)."""
    return _BAD.sub("_", server)[:MAX_LENGTH] or "_"
