"""Timestamps and ids as the protocol writes them."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

_last: datetime | None = None


def now() -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-21T09:00:00.123Z``: sortable as text.

    Strictly increasing within the daemon, so that no two conversations share an ``updatedAt``
    and a page of ``conversations/list`` cut at ``before`` never skips one; a burst of events in
    one millisecond takes the next ones."""
    global _last
    current = datetime.now(timezone.utc)
    moment = current.replace(microsecond=current.microsecond // 1000 * 1000)
    if _last is not None and moment <= _last:
        moment = _last + timedelta(milliseconds=1)
    _last = moment
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
