"""Timestamps and ids as the protocol writes them."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone


def now() -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-21T09:00:00.123Z``: sortable as text."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
