"""`conversations/create`: an empty conversation, with the settings its prompts inherit and a
working directory (`cwd`) that `conversations/list` filters on."""

from __future__ import annotations

import pytest

import parley
from conftest import DaemonProcess, free_port
from rpc import RawConnection

WEATHER = {"name": "get_weather", "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}}
SCHEMA = {"type": "object"}


@pytest.fixture
def two_models(tmp_path):
    """A daemon serving echo (the default) and `far`, an OpenAI-compatible model with no key and no
    server: a prompt to it fails, but its record names the model it was sent to."""
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True, mode=0o700)
    (home / "config" / "config.toml").write_text(
        f"""default_model = "echo"

[[endpoints]]
name = "nowhere"
type = "openai"
base_url = "http://127.0.0.1:{free_port()}/v1"
models = [{{ id = "far", aliases = ["distant"] }}]
"""
    )
    proc = DaemonProcess(home)
    proc.start()
    yield proc
    proc.stop()


async def turn(conn: RawConnection, params: dict) -> dict:
    started = await conn.request("prompt", params)
    events = await conn.until_done(started["responseId"], timeout=30)
    assert events[-1]["type"] == "done", events
    return await conn.request("response/get", {"responseId": started["responseId"]})


async def test_a_created_conversation_is_empty_and_its_first_prompt_inherits_its_settings(conn):
    created = await conn.request(
        "conversations/create",
        {"model": "echo", "system": "be brief", "options": {"schema": SCHEMA}, "tools": [WEATHER], "cwd": "/work/project", "title": "Weather talk"},
    )
    cid = created["conversationId"]
    assert set(created) == {"conversationId"} and cid.startswith("conv_")
    listed = (await conn.request("conversations/list", {}))["conversations"]
    summary = next(c for c in listed if c["id"] == cid)
    assert summary["title"] == "Weather talk" and summary["model"] == "echo" and summary["cwd"] == "/work/project"
    assert summary["responseCount"] == 0 and summary["createdAt"] == summary["updatedAt"]
    assert await conn.request("conversations/get", {"conversationId": cid}) == {"id": cid, "title": "Weather talk", "messages": [], "responseIds": [], "cwd": "/work/project", "model": "echo"}

    first = await turn(conn, {"prompt": '{"a": 1}', "conversationId": cid})
    assert first["conversationId"] == cid and first["model"] == "echo" and first["status"] == "completed"
    assert first["prompt"]["system"] == "be brief" and first["prompt"]["options"] == {"schema": SCHEMA}
    assert [t["name"] for t in first["prompt"]["tools"]] == ["get_weather"]
    assert first["prompt"]["messages"] == [{"role": "user", "parts": [{"type": "text", "text": '{"a": 1}'}]}], "no history yet"
    # the inherited schema holds the answer: plain text is a mismatch
    mismatch = await turn(conn, {"prompt": "not json", "conversationId": cid})
    assert mismatch["status"] == "error" and mismatch["error"]["code"] == "schema_mismatch"
    # a prompt's own settings replace the created ones, and the next prompt inherits those
    await turn(conn, {"prompt": "plain", "conversationId": cid, "options": {}, "system": "be kind"})
    later = await turn(conn, {"prompt": "still plain", "conversationId": cid})
    assert later["status"] == "completed" and later["prompt"]["system"] == "be kind" and not later["prompt"].get("options")
    conversation = await conn.request("conversations/get", {"conversationId": cid})
    assert conversation["title"] == "Weather talk", "a given title stays"
    assert len(conversation["responseIds"]) == 4 and conversation["cwd"] == "/work/project"


async def test_untitled_it_takes_its_first_prompts_title_and_it_can_be_deleted(daemon):
    conn = await daemon.connect("unix")
    cid = (await conn.request("conversations/create", {}))["conversationId"]
    summary = (await conn.request("conversations/list", {}))["conversations"][0]
    assert summary["id"] == cid and summary["title"] == "" and summary["model"] == "echo", "the default model, resolved"
    assert "cwd" not in summary and "cwd" not in await conn.request("conversations/get", {"conversationId": cid})
    await turn(conn, {"prompt": "   Capital   of\nFrance?  ", "conversationId": cid})
    summary = (await conn.request("conversations/list", {}))["conversations"][0]
    assert summary["id"] == cid and summary["title"] == "Capital of France?" and summary["responseCount"] == 1
    await turn(conn, {"prompt": "And Germany?", "conversationId": cid})
    assert (await conn.request("conversations/get", {"conversationId": cid}))["title"] == "Capital of France?"

    empty = (await conn.request("conversations/create", {"title": "never used"}))["conversationId"]
    assert await conn.request("conversations/delete", {"conversationId": empty}) == {}
    gone = await conn.call("conversations/get", {"conversationId": empty})
    assert gone["error"]["code"] == -32012 and gone["error"]["data"]["conversationId"] == empty
    assert [c["id"] for c in (await conn.request("conversations/list", {}))["conversations"]] == [cid]
    await conn.close()


async def test_its_model_is_inherited_until_a_prompt_names_another(two_models):
    conn = await two_models.connect("unix")
    cid = (await conn.request("conversations/create", {"model": "distant", "options": {"temperature": 0}}))["conversationId"]
    assert (await conn.request("conversations/list", {}))["conversations"][0]["model"] == "far", "the alias is stored as the id"
    first = await turn(conn, {"prompt": "hello", "conversationId": cid})
    assert first["model"] == "far" and first["prompt"]["options"] == {"temperature": 0}
    assert first["status"] == "error", "it has no key, nor a server"
    # naming a model overrides it; options that model does not take are refused
    refused = await conn.call("prompt", {"prompt": "hello", "conversationId": cid, "model": "echo"})
    assert refused["error"]["code"] == -32602 and "temperature" in refused["error"]["message"]
    second = await turn(conn, {"prompt": "hello", "conversationId": cid, "model": "echo", "options": {}})
    assert second["model"] == "echo" and second["status"] == "completed"
    third = await turn(conn, {"prompt": "again", "conversationId": cid})
    assert third["model"] == "echo", "the conversation goes on with its latest response's model"
    await conn.close()


async def test_bad_create_params_are_refused(two_models):
    conn = await two_models.connect("unix")
    unknown = await conn.call("conversations/create", {"model": "gpt-9"})
    assert unknown["error"]["code"] == -32010 and unknown["error"]["data"] == {"kind": "unknown_model", "model": "gpt-9"}
    options = await conn.call("conversations/create", {"model": "echo", "options": {"temperature": 0}})
    assert options["error"]["code"] == -32602 and "unknown option `temperature`" in options["error"]["message"]
    relative = await conn.call("conversations/create", {"cwd": "src/project"})
    assert relative["error"]["code"] == -32602 and "`cwd` must be an absolute path" in relative["error"]["message"]
    typo = await conn.call("conversations/create", {"titel": "x"})
    assert typo["error"]["code"] == -32602 and "titel" in typo["error"]["message"]
    prompt = await conn.call("prompt", {"prompt": "hi", "cwd": "relative"})
    assert prompt["error"]["code"] == -32602 and "`cwd` must be an absolute path" in prompt["error"]["message"]
    assert (await conn.request("conversations/list", {}))["conversations"] == [], "nothing was created"
    await conn.close()


async def test_cwd_is_set_by_a_prompt_that_starts_a_conversation_and_filters_the_list(daemon):
    conn = await daemon.connect("unix")
    a1 = await turn(conn, {"prompt": "alpha one", "cwd": "/src/a"})
    b1 = await turn(conn, {"prompt": "alpha two", "cwd": "/src/b"})
    none = await turn(conn, {"prompt": "alpha three"})
    a2 = (await conn.request("conversations/create", {"cwd": "/src/a", "title": "beta"}))["conversationId"]
    # continuing a conversation does not move it: a prompt's cwd applies only to one it starts
    again = await turn(conn, {"prompt": "alpha four", "conversationId": a1["conversationId"], "cwd": "/src/b"})
    assert again["conversationId"] == a1["conversationId"]

    async def listed(**params) -> list[str]:
        return [c["id"] for c in (await conn.request("conversations/list", params))["conversations"]]

    assert await listed(cwd="/src/a") == [a1["conversationId"], a2]
    assert await listed(cwd="/src/b") == [b1["conversationId"]]
    assert await listed(cwd="/src") == [] and await listed(cwd="/src/a/") == [], "an exact match"
    assert await listed(cwd="/src/a", query="alpha") == [a1["conversationId"]]
    assert await listed(cwd="/src/a", limit=1) == [a1["conversationId"]]
    first_page_end = (await conn.request("conversations/list", {"cwd": "/src/a", "limit": 1}))["conversations"][0]["updatedAt"]
    assert await listed(cwd="/src/a", before=first_page_end) == [a2]
    assert none["conversationId"] in await listed() and len(await listed()) == 4
    got = await conn.request("conversations/get", {"conversationId": b1["conversationId"]})
    assert got["cwd"] == "/src/b"
    await conn.close()


def test_the_sync_client_creates_conversations(daemon):
    with parley.connect(f"unix://{daemon.socket}") as client:
        cid = client.create_conversation(system="be brief", tools=[parley.ToolSpec(name="lookup")], cwd="/home/me/code", title="Sync")
        assert client.conversation(cid).messages == [] and client.conversation(cid).cwd == "/home/me/code"
        [summary] = client.conversations(cwd="/home/me/code")
        assert (summary.id, summary.title, summary.response_count, summary.cwd) == (cid, "Sync", 0, "/home/me/code")
        response = client.get_model("echo").prompt("hello", conversation_id=cid)
        assert response.text() == "hello" and response.conversation_id == cid
        assert response.prompt().system == "be brief" and [t.name for t in response.prompt().tools] == ["lookup"]
        started = client.get_model("echo").prompt("elsewhere", cwd="/home/me/other")
        assert [c.id for c in client.conversations(cwd="/home/me/other")] == [started.conversation_id]
        with pytest.raises(parley.UnknownModel):
            client.create_conversation(model="gpt-9")


async def test_the_async_client_creates_conversations(daemon):
    client = await parley.connect_async(f"unix://{daemon.socket}")
    try:
        cid = await client.create_conversation(model="echo", options={"schema": SCHEMA}, cwd="/tmp/async")
        model = await client.get_model("echo")
        response = await model.prompt('{"ok": true}', conversation_id=cid)
        assert await response.text() == '{"ok": true}' and (await response.prompt()).options == {"schema": SCHEMA}
        assert [c.id for c in await client.conversations(cwd="/tmp/async")] == [cid]
        with pytest.raises(ValueError, match="absolute"):  # checked before it is sent, as params are
            await client.create_conversation(cwd="relative/path")
    finally:
        await client.close()
