"""Transports: one module per kind of connection, each with a sync and an async class."""
