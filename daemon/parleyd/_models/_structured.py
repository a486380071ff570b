"""Structured output: the ``schema`` option, and the daemon's check of an answer against it.

Each model holds its answer to the schema as its provider can (OpenAI's ``json_schema``
response format, Anthropic's ``output_config.format``, a llama.cpp grammar; echo plays its
script as written). Whatever the model, the daemon then checks the final answer here, so
that text which is not JSON, or JSON that does not match, ends the response with a
``schema_mismatch`` error rather than passing for an answer. Validation is ``jsonschema``'s
(every draft, ``$ref``, error paths): a schema language is too large to re-implement well.
It is imported when a request first has a schema: it costs the daemon's start ~0.1 s.
"""

from __future__ import annotations

import json
from typing import Any

from parley._types import Message, TextPart, ToolCallPart

SCHEMA_MISMATCH = "schema_mismatch"
_SHOWN = 120  # characters of the answer an error message quotes


def check_schema_option(options: Any) -> None:
    """Raise ValueError when the ``schema`` option is set and is not a valid JSON schema: a bad
    option, refused before the model runs (the registry makes it a -32602)."""
    schema = getattr(options, "schema", None)
    if schema is None:
        return
    from jsonschema.exceptions import SchemaError

    try:
        _validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        where = exc.json_path.replace("$", "schema", 1)
        raise ValueError(f"option schema is not a valid JSON schema: {_cut(exc.message)}, at {where}") from None


def answer_text(output: list[Message]) -> str | None:
    """The text to check: that of the last output message, or None when that message ends in
    tool calls for the client to run (the answer comes in a later response)."""
    if not output:
        return ""
    last = output[-1]
    if last.role == "assistant" and any(isinstance(p, ToolCallPart) and not p.server_executed for p in last.parts):
        return None
    return "".join(p.text for p in last.parts if isinstance(p, TextPart))


def mismatch(schema: dict[str, Any], text: str) -> str | None:
    """Why ``text`` does not answer ``schema`` (the error message), or None when it does."""
    if not text.strip():
        return "the answer is empty, not JSON matching the schema"
    try:
        value = json.loads(text)
    except ValueError as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return f"the answer is not JSON ({detail}): {_shown(text)}"
    from jsonschema.exceptions import best_match

    validator = _validator_class(schema)(schema)
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    return f"the answer does not match the schema at {error.json_path}: {_cut(error.message)}"


def _validator_class(schema: dict[str, Any]) -> type[Any]:
    """The validator of the draft the schema names in ``$schema``; 2020-12 when it names none."""
    import jsonschema

    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)


def _shown(text: str) -> str:
    return repr(_cut(text.strip()))


def _cut(text: str, limit: int = _SHOWN) -> str:
    """At most ``limit`` characters: a message quotes the answer, which may be long."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
