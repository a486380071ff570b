"""protocol/schema.json is generated from the types, and says what the wire carries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from parley import _schema
from parley import _types as t
from parley._errors import ERROR_KINDS, REQUEST_ERRORS
from parley._methods import CLIENT_NOTIFICATIONS, CLIENT_REQUESTS, DAEMON_NOTIFICATIONS, DAEMON_REQUESTS


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(_schema.render())


def test_schema_json_is_up_to_date() -> None:
    assert _schema.SCHEMA_PATH.exists(), f"{_schema.SCHEMA_PATH} is missing: run `python -m parley._schema`"
    stored = _schema.SCHEMA_PATH.read_text(encoding="utf-8")
    assert stored == _schema.render(), f"{_schema.SCHEMA_PATH} is stale: run `python -m parley._schema`"


def test_render_is_deterministic_and_sorted() -> None:
    text = _schema.render()
    assert text == _schema.render()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_check_flag(tmp_path, monkeypatch, capsys) -> None:
    target = tmp_path / "schema.json"
    monkeypatch.setattr(_schema, "SCHEMA_PATH", target)
    assert _schema.main(["--check"]) == 1
    assert "python -m parley._schema" in capsys.readouterr().err
    assert _schema.main([]) == 0
    assert _schema.main(["--check"]) == 0
    target.write_text(target.read_text().replace('"seq"', '"sequence"', 1))
    assert _schema.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err


def test_every_method_is_listed_with_resolvable_refs(schema: dict) -> None:
    methods = schema["x-parley-methods"]
    tables = {
        "clientRequests": CLIENT_REQUESTS,
        "clientNotifications": CLIENT_NOTIFICATIONS,
        "daemonNotifications": DAEMON_NOTIFICATIONS,
        "daemonRequests": DAEMON_REQUESTS,
    }
    assert set(methods) == set(tables)
    for key, table in tables.items():
        assert set(methods[key]) == set(table), key
        for name, method in table.items():
            entry = methods[key][name]
            assert ("result" in entry) == (method.result is not None), name
            for ref in entry.values():
                target = ref["$ref"].removeprefix("#/$defs/")
                assert target in schema["$defs"], f"{name}: {ref} points nowhere"


def test_every_ref_resolves(schema: dict) -> None:
    def refs(node: object):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"], ref


def test_events_require_the_stamped_envelope(schema: dict) -> None:
    defs = schema["$defs"]
    any_event = defs["AnyEvent"]
    assert any_event["discriminator"]["propertyName"] == "type"
    assert set(any_event["discriminator"]["mapping"]) == set(t.EVENT_TYPES)
    indexed = {cls.__name__ for cls in t.INDEXED_EVENTS}
    for cls in t.AnyEvent.__args__:
        event = defs[cls.__name__]
        stamped = ["responseId", "seq"] + (["partIndex", "messageIndex"] if cls.__name__ in indexed else [])
        for field in stamped:
            assert field in event["required"], (cls.__name__, field)
            assert "default" not in event["properties"][field], (cls.__name__, field)
        if cls.__name__ not in indexed:
            assert "partIndex" not in event["properties"]
    assert defs["TextEvent"]["properties"]["seq"]["minimum"] == 1


def test_wire_names_are_camel_case(schema: dict) -> None:
    defs = schema["$defs"]
    assert "responseId" in defs["StartedResult"]["required"]
    assert "protocolVersion" in defs["InitializeParams"]["required"]
    assert "authToken" in defs["InitializeParams"]["properties"]
    assert defs["InitializeParams"]["additionalProperties"] is False  # inputs reject unknown fields
    assert "additionalProperties" not in defs["ResponseRecord"]  # outputs may grow


def test_errors_and_error_kinds(schema: dict) -> None:
    assert [e["code"] for e in schema["x-parley-errors"]] == list(REQUEST_ERRORS)
    assert {e["kind"] for e in schema["x-parley-errors"]} == {cls.kind for cls in REQUEST_ERRORS.values()}
    assert schema["x-parley-errorKinds"] == ERROR_KINDS
    assert schema["x-parley-protocolVersion"] == t.PROTOCOL_VERSION
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_protocol_md_lists_every_error_code_and_kind():
    """The spec's error tables are written by hand: they must name exactly what _errors.py defines."""
    text = (Path(__file__).resolve().parents[1] / "protocol" / "PROTOCOL.md").read_text()
    kinds_table = text[text.index("### 10.2") : text.index("## 11.")]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", kinds_table, re.MULTILINE)) == set(ERROR_KINDS)
    codes_table = text[text.index("### 10.1") : text.index("### 10.2")]
    assert {int(c) for c in re.findall(r"^\| `?(-\d+)`? \|", codes_table, re.MULTILINE)} == set(REQUEST_ERRORS)
