"""The built-in ``echo`` model: a real model for debugging clients, with no network.

It streams the text of the last user message back in word-sized chunks. A
prompt that is a JSON object ``{"events": [...]}`` is a script: each entry is an
event in its wire form (without responseId/seq/indices), emitted exactly; an
entry may carry ``delayMs``, a pause before it is sent. ``{"rounds": [[...],
[...]]}`` scripts each round of a tool chain: round n plays the n-th list.
After the script, or for a plain prompt, a round that follows tool results
echoes those results as text (``name: output``), so chains end deterministically.

Its one option, ``schema``, is held by the daemon's check of the answer (``_structured``):
echo streams as ever, and a script or echoed text that is not JSON matching the schema ends
with ``schema_mismatch``, so the structured-output path can be tested with no model.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import math
import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from parley._builders import text_of
from parley._types import AnyEvent, Message, ModelCapabilities, TextEvent, ToolResultPart, UsageEvent

from ._base import Model, ModelFailure, ModelRequest

_WORDS = re.compile(r"\s*\S+\s*|\s+")
_YIELD_EVERY = 64
ECHO_CONTEXT_WINDOW = 131_072  # tokens (echo's are words); see EchoModel.context_window


class _Pacer:
    """The pauses of every echo stream, woken together: one timer per millisecond that has
    sleepers, not one per pause (a thousand paced streams are a thousand timers otherwise).
    A pause ends at the start of the millisecond after its deadline, up to 1 ms late."""

    def __init__(self) -> None:
        self._due: dict[int, list[asyncio.Future[None]]] = {}

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        tick = math.ceil((loop.time() + seconds) * 1000)
        sleepers = self._due.get(tick)
        if sleepers is None:
            sleepers = self._due[tick] = []
            loop.call_at(tick / 1000, self._wake, tick)
        pause = loop.create_future()
        sleepers.append(pause)
        await pause

    def _wake(self, tick: int) -> None:
        for pause in self._due.pop(tick):
            if not pause.done():  # not cancelled meanwhile
                pause.set_result(None)


_pacer = _Pacer()


class EchoOptions(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True, omit_defaults=True):
    """Echo takes one option: a JSON schema its answer is checked against."""

    schema: dict[str, Any] | None = None


class EchoModel(Model):
    Options = EchoOptions
    provider = "builtin"
    capabilities = ModelCapabilities(
        streaming=True, tools=True, reasoning=True, attachments=["image/*", "audio/*", "application/pdf", "text/*"], schema=True
    )
    #: A nominal window, so that clients can show one: echo holds its input to no limit.
    context_window = ECHO_CONTEXT_WINDOW

    async def stream(self, request: ModelRequest) -> AsyncIterator[AnyEvent]:
        last_user = max((i for i, m in enumerate(request.messages) if m.role == "user"), default=-1)
        prompt = text_of(request.messages[last_user]) if last_user >= 0 else ""
        round_index = sum(m.role == "assistant" for m in request.messages[last_user + 1 :])
        rounds = _script(prompt)
        if rounds is not None and round_index < len(rounds):
            for delay_ms, event in rounds[round_index]:
                if delay_ms:
                    await _pacer.sleep(delay_ms / 1000)
                yield copy.copy(event)  # the daemon stamps what it gets: the script's own stays as parsed
            return
        last = request.messages[-1] if request.messages else None
        text = _results(last) if last is not None and last.role == "tool" else prompt
        chunks = _WORDS.findall(text)
        for i, chunk in enumerate(chunks):
            yield TextEvent(chunk=chunk)
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)  # let writes flush and other connections run
        yield UsageEvent(input=self.count_tokens(request), output=len(chunks))

    def count_tokens(self, request: ModelRequest) -> int:
        """Echo's tokens are words: those of the messages' text, as its ``usage`` reports them."""
        return sum(_word_count(text_of(m)) for m in request.messages)


def _word_count(text: str) -> int:
    """Remembered for texts up to 64 KB: a client that re-sends its history each turn costs
    echo only its new text, as a model's prompt cache would."""
    return _remembered_word_count(text) if len(text) <= 65536 else len(text.split())


@functools.lru_cache(maxsize=4096)
def _remembered_word_count(text: str) -> int:
    return len(text.split())


def _results(message: Message) -> str:
    parts = [p for p in message.parts if isinstance(p, ToolResultPart)]
    return "\n".join(f"{p.name}: {p.exception if p.exception else p.output}" for p in parts)


def _script(text: str) -> list[list[tuple[float, AnyEvent]]] | None:
    """The scripted rounds of a ``{"events": [...]}`` / ``{"rounds": [[...]]}`` prompt, or None.

    Parsed once for many streams of one script (a load test): the events are shared, and
    each stream sends copies of them."""
    if not text.lstrip().startswith("{"):
        return None
    return _parsed(text)


@functools.lru_cache(maxsize=32)
def _parsed(text: str) -> list[list[tuple[float, AnyEvent]]] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("events"), list):
        rounds = [data["events"]]
    elif isinstance(data.get("rounds"), list) and all(isinstance(r, list) for r in data["rounds"]):
        rounds = data["rounds"]
    else:
        return None
    return [[_entry(entry, f"rounds[{r}][{i}]" if len(rounds) > 1 else f"events[{i}]") for i, entry in enumerate(events)] for r, events in enumerate(rounds)]


class _Entry(msgspec.Struct):
    """A script entry's event, typed by its tag. Converting to a Struct, whose decoding msgspec
    keeps, costs a tenth of converting to the bare union, which it works out anew each call."""

    event: AnyEvent


def _entry(entry: object, where: str) -> tuple[float, AnyEvent]:
    if not isinstance(entry, dict):
        raise ModelFailure("model_error", f"echo script: {where} is not an object")
    entry = dict(entry)
    delay = entry.pop("delayMs", 0)
    try:
        return float(delay), msgspec.convert({"event": entry}, _Entry).event
    except (msgspec.ValidationError, TypeError, ValueError) as exc:
        detail = str(exc).replace("`$.event", "`$")  # the path in the entry as the script wrote it
        raise ModelFailure("model_error", f"echo script: {where}: {detail}") from None
