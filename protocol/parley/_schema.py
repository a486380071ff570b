"""protocol/schema.json: the wire contract as one JSON Schema (draft 2020-12) document.

Generated from the msgspec types (``parley._types``) and the method table
(``parley._methods``), never edited by hand::

    python -m parley._schema            # write protocol/schema.json
    python -m parley._schema --check    # exit 1 if it is stale

The document has a ``$defs`` entry for every type that crosses a connection
(names as in ``parley._types``; ``AnyEvent`` is the union of the events), and
non-standard top-level keys a plain validator ignores:

* ``x-parley-methods``: per direction (``clientRequests``,
  ``clientNotifications``, ``daemonNotifications``, ``daemonRequests``), each
  method's ``params`` and, for requests, ``result``, as ``$ref``s;
* ``x-parley-errors``: the JSON-RPC error codes (``code``, ``kind``, ``doc``);
* ``x-parley-errorKinds``: the ``code``s of ``error`` events, with their meaning;
* ``x-parley-finishReasons``: the ``finishReason``s of ``done`` events, with their meaning;
* ``x-parley-protocolVersion``.

The Event structs default ``responseId``/``seq``/``partIndex``/``messageIndex``
to sentinels ("", 0, -1) because models build events without them; the daemon
always stamps them, so here they are required and have no default.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from . import _types as t
from ._errors import ERROR_KINDS, REQUEST_ERRORS
from ._methods import CLIENT_NOTIFICATIONS, CLIENT_REQUESTS, DAEMON_NOTIFICATIONS, DAEMON_REQUESTS, Method

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_REF = "#/$defs/{name}"

#: The method tables, under the key each gets in ``x-parley-methods``.
TABLES: dict[str, dict[str, Method]] = {
    "clientRequests": CLIENT_REQUESTS,
    "clientNotifications": CLIENT_NOTIFICATIONS,
    "daemonNotifications": DAEMON_NOTIFICATIONS,
    "daemonRequests": DAEMON_REQUESTS,
}

#: Names for the unions, which msgspec inlines where they are used.
_UNIONS: dict[Any, str] = {t.AnyEvent: "AnyEvent"}


def _name(tp: Any) -> str:
    return _UNIONS.get(tp) or tp.__name__


def _ref(tp: Any) -> dict[str, str]:
    return {"$ref": _REF.format(name=_name(tp))}


def _method_types() -> list[Any]:
    """Every params and result type of the table, once, in table order."""
    seen: list[Any] = []
    for table in TABLES.values():
        for method in table.values():
            for tp in (method.params, method.result):
                if tp is not None and tp not in seen:
                    seen.append(tp)
    return seen


def _stamp_envelope(defs: dict[str, Any]) -> None:
    """Make the fields the daemon always stamps required, without their sentinel defaults."""
    indexed = {cls.__name__ for cls in t.INDEXED_EVENTS}
    for cls in t.AnyEvent.__args__:
        schema = defs[cls.__name__]
        stamped = {"responseId": {}, "seq": {"minimum": 1}}
        if cls.__name__ in indexed:
            stamped |= {"partIndex": {"minimum": 0}, "messageIndex": {"minimum": 0}}
        for field, extra in stamped.items():
            prop = schema["properties"][field]
            prop.pop("default", None)
            prop.update(extra)
            if field not in schema["required"]:
                schema["required"].append(field)


def build() -> dict[str, Any]:
    """The schema document as a dict."""
    types = _method_types()
    schemas, defs = msgspec.json.schema_components(types, ref_template=_REF)
    for tp, schema in zip(types, schemas):
        if tp in _UNIONS:
            defs[_UNIONS[tp]] = schema
    _stamp_envelope(defs)
    methods = {
        key: {
            name: {"params": _ref(m.params), **({"result": _ref(m.result)} if m.result is not None else {})}
            for name, m in table.items()
        }
        for key, table in TABLES.items()
    }
    return {
        "$schema": DIALECT,
        "title": f"parley protocol v{t.PROTOCOL_VERSION}",
        "description": (
            "Generated from parley._types and parley._methods by `python -m parley._schema`; do not edit. "
            "See PROTOCOL.md for the semantics."
        ),
        "$defs": defs,
        "x-parley-protocolVersion": t.PROTOCOL_VERSION,
        "x-parley-methods": methods,
        "x-parley-errors": [{"code": code, "kind": cls.kind, "doc": cls.__doc__} for code, cls in REQUEST_ERRORS.items()],
        "x-parley-errorKinds": dict(ERROR_KINDS),
        "x-parley-finishReasons": dict(t.FINISH_REASONS),
    }


def render() -> str:
    """The text of schema.json: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parley._schema", description="Generate protocol/schema.json.")
    parser.add_argument("--check", action="store_true", help="exit 1 if schema.json differs from the types, writing nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        try:
            current = SCHEMA_PATH.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            state = "is missing" if current is None else "is stale (the types changed)"
            print(f"{SCHEMA_PATH} {state}; run `python -m parley._schema` to regenerate it", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is up to date")
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
