"""The MCP pieces that need no server: mcp.json parsing, tool names, result conversion, approvals."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

from parleyd._mcp._approval import ApprovalStore, runs_unasked
from parleyd._mcp._config import load
from parleyd._mcp._naming import VALID, model_name
from parleyd._mcp._results import convert


def test_mcp_json_shapes_keys_and_bad_entries(tmp_path):
    path = tmp_path / "mcp.json"
    assert load(path) == {}
    path.write_text(json.dumps({
        "mcpServers": {"a": {"command": "x", "args": ["-v"], "env": {"K": "secret"}, "trusted": True}},
        "servers": {"b": {"url": "http://127.0.0.1:1/mcp", "headers": {"H": "v"}}, "a": {"command": "ignored"}},
        "context_servers": {"c": {"command": 3}, "d": {"command": "y", "disabled": True}, "e": {"url": "u", "type": "sse"}},
    }))  # fmt: skip
    servers = load(path)
    assert list(servers) == ["a", "b", "c", "e"]
    assert servers["a"].args == ("-v",) and servers["a"].trusted and servers["a"].transport == "stdio"
    assert servers["b"].transport == "http" and servers["b"].headers == (("H", "v"),)
    assert servers["c"].problem == """mcp.json: server 'c': "command" must be a non-empty string"""
    assert "SSE" in servers["e"].problem
    assert "secret" not in repr(servers["a"])  # env and headers never show
    edited = json.loads(path.read_text())
    edited["mcpServers"]["a"]["env"]["K"] = "other"
    path.write_text(json.dumps(edited))
    assert load(path)["a"].fingerprint != servers["a"].fingerprint and load(path)["a"] != servers["a"]


def test_tool_names_fit_providers_and_stay_distinct():
    assert model_name("time", "get_current_time") == "time__get_current_time"
    dotted, underscored = model_name("a.b", "t"), model_name("a_b", "t")
    assert dotted != underscored and dotted.startswith("a_b__t_")
    long = model_name("server", "x" * 100)
    assert len(long) == 64 and long == model_name("server", "x" * 100) != model_name("server", "x" * 101)
    assert all(VALID.match(n) for n in (dotted, underscored, long, model_name("ü", "ß/ç")))


def test_results_text_media_resources_structured_and_errors():
    result = NS(
        content=[
            NS(type="text", text="hello"),
            NS(type="image", data="iVBORw0KGgo=", mime_type="image/png"),
            NS(type="audio", data="UklGRg==", mime_type="audio/wav"),
            NS(type="resource_link", uri="file:///a.txt", name="a.txt", mime_type="text/plain"),
            NS(type="resource", resource=NS(uri="file:///b.txt", mime_type="text/plain", text="bee")),
            NS(type="resource", resource=NS(uri="file:///c.bin", mime_type="application/octet-stream", text=None, blob="AAE=")),
        ],
        structured_content={"n": 1},
        is_error=False,
    )
    out = convert(result)
    assert out.output.splitlines() == ["hello", "[resource: file:///a.txt name=a.txt type=text/plain]", "[resource: file:///b.txt type=text/plain]", "bee", "[resource: file:///c.bin type=application/octet-stream]"]
    assert [a.mime_type for a in out.attachments] == ["image/png", "audio/wav", "application/octet-stream"]
    assert out.structured == {"n": 1} and out.exception is None
    assert convert(NS(content=[], structured_content={"n": 2}, is_error=False)).output == '{"n": 2}'
    failed = convert(NS(content=[NS(type="text", text="bad timezone")], structured_content=None, is_error=True))
    assert failed.exception == "bad timezone" and failed.output == ""


def test_allow_always_is_per_tool_and_configuration(tmp_path):
    store = ApprovalStore(tmp_path / "mcp-approvals.json")
    key = {"server": "fs", "tool": "read", "fingerprint": "f1"}
    assert not runs_unasked(store, trusted=False, annotations=None, **key)
    store.allow_always(**key)
    assert runs_unasked(store, trusted=False, annotations=None, **key)
    assert not store.allowed("fs", "write", "f1") and not store.allowed("fs", "read", "f2")  # an edited server asks again
    store.allow_always("fs", "write", "f2")
    assert ApprovalStore(store.path).allowed("fs", "write", "f2") and not ApprovalStore(store.path).allowed("fs", "read", "f1")
    # a server's hints count only when the user trusts it
    assert not runs_unasked(store, server="x", tool="t", fingerprint="f", trusted=False, annotations={"readOnlyHint": True})
    assert runs_unasked(store, server="x", tool="t", fingerprint="f", trusted=True, annotations={"readOnlyHint": True})
    assert not runs_unasked(store, server="x", tool="t", fingerprint="f", trusted=True, annotations={"readOnlyHint": False})
