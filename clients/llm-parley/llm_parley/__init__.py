"""llm's side of parley: the daemon's models as llm models named ``parley/<id>``.

Each prompt is a ``prompt`` to the daemon; its events become llm's stream events. The parley
conversation's id rides along in every part's ``provider_metadata`` (``{"parley":
{"conversationId": …}}``), which llm keeps in its logs and hands back as the history of the
next turn: a continued llm conversation (``llm -c``, ``conversation.prompt()``,
``response.reply()``) is a prompt in that parley conversation, which the daemon continues with
its own stored history. A history with no parley id (a conversation begun with another llm
model) is sent whole, as a new parley conversation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import llm
from pydantic import ConfigDict

from ._convert import attachment, parley_messages, parley_tool_results, stream_event

PREFIX = "parley/"
META = "parley"

_client: Any = None


def client(*, autostart: bool = True) -> Any:
    """This process's one connection to the daemon, made at first use."""
    global _client
    if _client is None:
        import parley

        _client = parley.connect(autostart=autostart, client_name="llm-parley")
    return _client


def _model(parley_id: str) -> Any:
    """The daemon's model, over this process's connection, made again if the daemon restarted."""
    global _client
    import parley

    try:
        return client().get_model(parley_id)
    except parley.ConnectionClosed:
        _client = None
        return client().get_model(parley_id)


@llm.hookimpl
def register_models(register: Any) -> None:
    for info in _model_infos():
        register(ParleyModel(info["id"], info.get("capabilities", {})), aliases=[PREFIX + a for a in info.get("aliases", [])])


def _model_infos() -> list[dict[str, Any]]:
    """The daemon's models; when it is not running, those it listed last time (it is not
    started only to list them: llm loads its plugins for every command)."""
    cache = Path(llm.user_dir()) / "parley-models.json"
    try:
        infos = [{"id": m.id, "aliases": m.aliases, "capabilities": {"tools": m.capabilities.tools, "schema": m.capabilities.schema, "attachments": m.capabilities.attachments}} for m in client(autostart=False).models()]
    except Exception:  # noqa: BLE001 - no daemon (or an old one): the cached list
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            return []
    try:
        cache.write_text(json.dumps(infos))
    except OSError:
        pass
    return infos


class _Types(frozenset):
    """Attachment types as parley lists them, ``image/*`` matching ``image/png``."""

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        return frozenset.__contains__(self, item) or frozenset.__contains__(self, item.split("/")[0] + "/*")


class ParleyModel(llm.Model):
    can_stream = True

    class Options(llm.Options):
        """Any option: the daemon checks them against the model (an error names a wrong one)."""

        model_config = ConfigDict(extra="allow")

    def __init__(self, parley_id: str, capabilities: dict[str, Any]) -> None:
        self.parley_id = parley_id
        self.model_id = PREFIX + parley_id
        self.supports_tools = bool(capabilities.get("tools"))
        self.supports_schema = bool(capabilities.get("schema"))
        self.attachment_types = _Types(capabilities.get("attachments") or [])

    def execute(self, prompt: Any, stream: bool, response: Any, conversation: Any) -> Any:
        import parley

        history = _history(prompt)
        conversation_id = _conversation_id(history)
        options = {k: v for k, v in {**dict(prompt.options), **(prompt.options.model_extra or {})}.items() if v is not None}
        if prompt.schema:
            options["schema"] = prompt.schema
        kwargs: dict[str, Any] = {
            "attachments": [attachment(a) for a in prompt.attachments] or None,
            "tools": [parley.ToolSpec(name=t.name, description=t.description, input_schema=t.input_schema or {"type": "object", "properties": {}}) for t in prompt.tools if isinstance(t, llm.Tool)] or None,
            "options": options or None,
        }
        if conversation_id is not None:
            kwargs["conversation_id"] = conversation_id
            kwargs["messages"] = parley_tool_results(prompt.tool_results) or None
        else:
            kwargs["system"] = prompt.system or None
            kwargs["messages"] = (parley_messages([m for m in history if m.role != "system"]) + parley_tool_results(prompt.tool_results)) or None
        answer = _model(self.parley_id).prompt(prompt.prompt or None, **kwargs)
        meta = {META: {"conversationId": answer.conversation_id, "responseId": answer.id}}
        for event in answer.stream_events():
            if event.type == "usage":
                response.set_usage(input=event.input, output=event.output, details=event.details)
            elif event.type == "error":
                raise llm.ModelError(f"{event.code}: {event.message}")
            elif (mapped := stream_event(event, meta)) is not None:
                yield mapped
        for call in answer.tool_calls():
            response.add_tool_call(llm.ToolCall(name=call.name, arguments=call.arguments, tool_call_id=call.tool_call_id))


def _history(prompt: Any) -> list[Any]:
    """The messages before this turn's input (llm appends the tool results, then the user's
    message, to the chain it gives the model)."""
    rest = list(prompt.messages)
    if rest and rest[-1].role == "user" and (prompt.prompt or prompt.attachments):
        rest.pop()
    if rest and rest[-1].role == "tool" and prompt.tool_results:
        rest.pop()
    return rest


def _conversation_id(history: list[Any]) -> str | None:
    """The parley conversation the history's latest assistant turn was answered in, if any."""
    for message in reversed(history):
        for part in message.parts if message.role == "assistant" else ():
            found = ((getattr(part, "provider_metadata", None) or {}).get(META) or {}).get("conversationId")
            if found:
                return found
    return None
