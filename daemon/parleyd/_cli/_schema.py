"""``--schema`` and ``--schema-multi``: structured output from the command line, as llm's.

The value is read as llm's ``resolve_schema_input`` reads it: JSON when it starts
with ``{``; llm's concise form (``parley.schema_dsl``) when it has a space or a
comma; else the path of a JSON file. (llm also takes ``t:TEMPLATE`` and the id of
a logged schema; parley has neither.) ``--schema-multi`` asks for a list of such
objects, as ``{"items": [...]}``, llm's ``multi_schema``. The schema is sent as
the prompt's ``schema`` option; a model whose capabilities say it takes none is
refused here, before anything is sent, with a line that names the models that do.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import parley


def add_schema_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", metavar="SCHEMA", help="JSON schema for the answer: JSON, a .json file, or the concise form 'name, age int'")
    p.add_argument("--schema-multi", metavar="SCHEMA", help="as --schema, for a list of such objects: {\"items\": [...]}")


def load_schema(args: argparse.Namespace) -> dict[str, Any] | None:
    """The schema the arguments ask for (``--schema-multi`` wins, as in llm); SystemExit with one line."""
    value = args.schema_multi or args.schema
    if not value:
        return None
    try:
        schema = resolve(value)
    except ValueError as exc:
        raise SystemExit(f"parley: --schema: {exc}") from None
    return parley.multi_schema(schema) if args.schema_multi else schema


def resolve(value: str) -> dict[str, Any]:
    """JSON, the concise form or a file, as llm tells them apart; ValueError when it is none of them."""
    text = value.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # as llm: maybe the concise form, or a file name
    if " " in text or "," in value:
        return parley.schema_dsl(value)
    path = Path(value)
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:
            raise ValueError(f"{value} does not hold a JSON schema (invalid JSON)") from None
    raise ValueError(f"invalid schema {value!r}: neither JSON, nor the concise form ('name, age int'), nor a file")


def check_model_takes_schema(model: parley.Model, models: list[parley.ModelInfo]) -> None:
    """SystemExit when the model's capabilities say it takes no schema, naming the ones that do."""
    if model.info.capabilities.schema:
        return
    able = [m.id for m in models if m.capabilities.schema]
    which = f"models that do: {', '.join(able)}" if able else "no model this daemon serves does"
    raise SystemExit(f"parley: model {model.model_id!r} does not take a schema (--schema); {which}")
