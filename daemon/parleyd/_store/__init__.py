"""The daemon's SQLite store: the message graph, conversations, responses and their events."""

from ._schema import SchemaError
from ._store import EventBatch, Store

__all__ = ["EventBatch", "SchemaError", "Store"]
