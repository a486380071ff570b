"""llm's concise schema form: ``schema_dsl("name, age int, bio: a short bio")`` → a JSON schema.

The grammar is llm's (``llm.schema_dsl``), so a script gets the same schema from
either: fields are separated by newlines when there is one, else by commas; a
field is ``NAME [TYPE][: DESCRIPTION]`` with TYPE one of ``str`` (the default),
``int``, ``float``, ``bool``; every field is required.
"""

from __future__ import annotations

from typing import Any

__all__ = ["multi_schema", "schema_dsl"]

_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def schema_dsl(schema_dsl: str, multi: bool = False) -> dict[str, Any]:
    """The JSON schema of an object with these fields; with ``multi``, of ``{"items": [such objects]}``."""
    separator = "\n" if "\n" in schema_dsl else ","
    properties: dict[str, Any] = {}
    for field in filter(None, (f.strip() for f in schema_dsl.split(separator))):
        declaration, _, description = field.partition(":")
        words = declaration.split()
        if not words:
            raise ValueError(f"Invalid schema DSL: field {field!r} is missing a name before ':'")
        name = words[0]
        if len(words) > 1 and words[1] not in _TYPES:
            raise ValueError(f"Invalid schema DSL: unknown type {words[1]!r} for field {name!r}")
        if name in properties:
            raise ValueError(f"Invalid schema DSL: duplicate field name {name!r}")
        properties[name] = {"type": _TYPES[words[1] if len(words) > 1 else "str"]}
        if description := description.strip():
            properties[name]["description"] = description
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    return multi_schema(schema) if multi else schema


def multi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """llm's ``multi_schema``: an object whose ``items`` are a list of objects of ``schema``."""
    return {"type": "object", "properties": {"items": {"type": "array", "items": schema}}, "required": ["items"]}
