"""Whether an MCP tool call may run: the user's ``allow_always`` answers, and the rule for asking.

Nothing from an MCP server runs unasked. A call runs without asking only when the
user answered ``allow_always`` for that tool of that server *as configured then*
(an edit of the server's entry in mcp.json changes its fingerprint, and it asks
again), or when the server is marked ``trusted`` and the tool says it is read-only
(a server's annotations are hints from the server itself: shown, never believed
unless the user trusts that server). The answers live in ``mcp-approvals.json`` in
the data dir, 0600: ``{server: {"fingerprint": …, "tools": [tool, …]}}``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ApprovalStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] | None = None

    def allowed(self, server: str, tool: str, fingerprint: str) -> bool:
        entry = self._load().get(server)
        return isinstance(entry, dict) and entry.get("fingerprint") == fingerprint and tool in entry.get("tools", [])

    def allow_always(self, server: str, tool: str, fingerprint: str) -> None:
        data = self._load()
        entry = data.get(server)
        if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint:
            entry = data[server] = {"fingerprint": fingerprint, "tools": []}  # an edited server starts afresh
        if tool not in entry["tools"]:
            entry["tools"].append(tool)
        self._save(data)

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                self._data = loaded if isinstance(loaded, dict) else {}
            except FileNotFoundError:
                self._data = {}
            except ValueError:
                log.error("%s is not JSON; MCP approvals start afresh", self.path)
                self._data = {}
        return self._data

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def runs_unasked(store: ApprovalStore, *, server: str, tool: str, fingerprint: str, trusted: bool, annotations: dict | None) -> bool:
    """Whether this call may run without asking the user."""
    if store.allowed(server, tool, fingerprint):
        return True
    return trusted and bool(annotations) and annotations.get("readOnlyHint") is True  # type: ignore[union-attr]
