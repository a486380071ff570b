"""The tools the model is offered in an ACP session: the client's own file system, when it offers it.

``read_text_file`` (``fs/read_text_file``: what the editor holds, unsaved edits
included) and ``write_text_file`` (``fs/write_text_file``: the editor sees and
can undo the change). The daemon runs the chain and sends each call back here
(``tool/execute``); the session asks the user first (``session/request_permission``).
Relative paths are taken from the session's ``cwd``. MCP servers' tools will join
these (the MCP issue).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import msgspec

from ._types import (
    ClientCapabilities,
    Diff,
    ReadTextFileRequest,
    ReadTextFileResponse,
    ToolCallLocation,
    WriteTextFileRequest,
)
from ._wire import AcpError, Peer

READ = {
    "name": "read_text_file",
    "description": "Read a text file in the user's workspace, as the editor has it (unsaved changes included). "
    "`path` is absolute or relative to the working directory; `line` (1-based) and `limit` select lines.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "line": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1},
        },
        "required": ["path"],
    },
}

WRITE = {
    "name": "write_text_file",
    "description": "Write a text file in the user's workspace (created if missing, replaced whole otherwise). "
    "`path` is absolute or relative to the working directory.",
    "inputSchema": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
}

_decode_read = msgspec.json.Decoder(ReadTextFileResponse).decode


class ToolFailed(Exception):
    """The tool ran and failed; the model is told why."""


@dataclass
class FsTools:
    peer: Peer
    capabilities: ClientCapabilities

    def specs(self) -> list[dict[str, Any]]:
        fs = self.capabilities.fs
        return ([READ] if fs.read_text_file else []) + ([WRITE] if fs.write_text_file else [])

    def offers(self, name: str) -> bool:
        return any(spec["name"] == name for spec in self.specs())

    @staticmethod
    def locations(cwd: str, arguments: dict[str, Any]) -> list[ToolCallLocation] | None:
        path = arguments.get("path")
        if not isinstance(path, str) or not path:
            return None
        line = arguments.get("line")
        return [ToolCallLocation(path=os.path.join(cwd, path), line=line if isinstance(line, int) else None)]

    async def read(self, session_id: str, path: str, line: int | None = None, limit: int | None = None) -> str:
        request = ReadTextFileRequest(session_id=session_id, path=path, line=line, limit=limit)
        return (await self.peer.request("fs/read_text_file", request, _decode_read)).content

    async def run(self, session_id: str, cwd: str, name: str, arguments: dict[str, Any]) -> tuple[str, list[Diff]]:
        """The tool's output for the model, and a diff to show for a write."""
        path = arguments.get("path")
        if not isinstance(path, str) or not path:
            raise ToolFailed("`path` (a string) is required")
        path = os.path.join(cwd, path)
        try:
            if name == READ["name"]:
                line, limit = arguments.get("line"), arguments.get("limit")
                return await self.read(session_id, path, line if isinstance(line, int) else None, limit if isinstance(limit, int) else None), []
            if name == WRITE["name"]:
                content = arguments.get("content")
                if not isinstance(content, str):
                    raise ToolFailed("`content` (a string) is required")
                old = None
                if self.capabilities.fs.read_text_file:
                    try:
                        old = await self.read(session_id, path)
                    except AcpError:
                        old = None  # a new file
                await self.peer.request("fs/write_text_file", WriteTextFileRequest(session_id=session_id, path=path, content=content), lambda raw: raw)
                return f"wrote {len(content)} characters to {path}", [Diff(path=path, new_text=content, old_text=old)]
        except AcpError as exc:
            raise ToolFailed(exc.message) from exc
        raise ToolFailed(f"no tool named {name!r}")
