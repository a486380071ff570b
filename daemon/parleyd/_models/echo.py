"""The built-in ``echo`` model: a real model for debugging clients, with no network.

It streams the text of the last user message back in word-sized chunks. A
prompt that is a JSON object ``{"events": [...]}`` is a script: each entry is an
event in its wire form (without responseId/seq/indices), emitted exactly; an
entry may carry ``delayMs``, a pause before it is sent.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import msgspec

from parley._builders import text_of
from parley._types import AnyEvent, ModelCapabilities, TextEvent, UsageEvent

from ._base import Model, ModelFailure, ModelRequest

_WORDS = re.compile(r"\s*\S+\s*|\s+")
_YIELD_EVERY = 64


class EchoModel(Model):
    provider = "builtin"
    capabilities = ModelCapabilities(
        streaming=True, tools=True, reasoning=True, attachments=["image/*", "audio/*", "application/pdf", "text/*"]
    )

    async def stream(self, request: ModelRequest) -> AsyncIterator[AnyEvent]:
        text = next((text_of(m) for m in reversed(request.messages) if m.role == "user"), "")
        script = _script(text)
        if script is None:
            chunks = _WORDS.findall(text)
            for i, chunk in enumerate(chunks):
                yield TextEvent(chunk=chunk)
                if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                    await asyncio.sleep(0)  # let writes flush and other connections run
            yield UsageEvent(input=len(_WORDS.findall(" ".join(map(text_of, request.messages)))), output=len(chunks))
            return
        for delay_ms, event in script:
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            yield event


def _script(text: str) -> list[tuple[float, AnyEvent]] | None:
    """The scripted events of a ``{"events": [...]}`` prompt, or None for plain text."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        return None
    script = []
    for i, entry in enumerate(data["events"]):
        if not isinstance(entry, dict):
            raise ModelFailure("model_error", f"echo script: events[{i}] is not an object")
        entry = dict(entry)
        delay = entry.pop("delayMs", 0)
        try:
            script.append((float(delay), msgspec.convert(entry, AnyEvent)))
        except (msgspec.ValidationError, TypeError, ValueError) as exc:
            raise ModelFailure("model_error", f"echo script: events[{i}]: {exc}") from None
    return script
