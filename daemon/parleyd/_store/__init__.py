"""The daemon's SQLite store: the message graph, conversations, responses and their events."""

from ._schema import SchemaError
from ._store import Store

__all__ = ["SchemaError", "Store"]
