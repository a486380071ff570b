"""A prompt's model options as llm takes them: keyword arguments, ``options=``, ``schema=``.

``model.prompt("Hi", temperature=0.5, max_tokens=100)`` sends the ``options``
``{"temperature": 0.5, "maxTokens": 100}``: llm's snake_case option names are
the wire's camelCase ones (a name already in camelCase is kept). The model
checks them: an option it does not take fails the prompt with an error naming it.

``schema=`` is the ``schema`` option: a JSON schema dict (``parley.schema_dsl``
writes one from llm's concise form), a msgspec Struct class, or a pydantic model class.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["json_schema", "wire_name", "wire_options"]


def wire_name(name: str) -> str:
    """``max_tokens`` → ``maxTokens``; ``maxTokens`` and ``temperature`` as they are."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def wire_options(options: dict[str, Any] | None, keywords: dict[str, Any], schema: Any = None) -> dict[str, Any] | None:
    """The ``options`` of a prompt: ``options=`` and the option keywords, which may not both name one.

    None when there are none, so that a prompt without options sends none.
    """
    if "key" in keywords:
        raise TypeError("key=: parley's daemon holds the API keys (`parley keys set NAME` or the provider's env var); a script sends none")
    given = {wire_name(k): v for k, v in (options or {}).items()}
    extra = {wire_name(k): v for k, v in keywords.items()}
    if schema is not None:
        extra["schema"] = json_schema(schema)
    if overlap := sorted(given.keys() & extra.keys()):
        raise TypeError(f"got values for these options both in options= and as keyword arguments: {overlap}")
    merged = {**given, **extra}
    return merged or None


def json_schema(schema: Any) -> dict[str, Any]:
    """``schema=`` as a JSON schema: a dict as is, a Struct or pydantic class described."""
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, type) and issubclass(schema, msgspec.Struct):
        from ._toolspec import struct_schema

        return struct_schema(schema)
    model_json_schema = getattr(schema, "model_json_schema", None)  # a pydantic model, as llm takes it
    if isinstance(schema, type) and callable(model_json_schema):
        return model_json_schema()
    raise TypeError(f"schema= takes a JSON schema dict, a msgspec Struct or a pydantic model class (see parley.schema_dsl), not {schema!r}")
