"""What the daemon knows of a plugin model without importing llm, and what it sends to run one.

``Described`` is written by the discovery process (``_discover``) and cached on disk, so the
daemon lists plugin models at start without loading a plugin. ``LlmJob`` is one round of a
prompt as the bridge (``_bridge``) takes it, in the daemon's event loop or in a worker process.
"""

from __future__ import annotations

from typing import Any

import msgspec

from parley._types import Message, ToolSpec

#: The prefix of every plugin model's id and alias: ``llm/echo`` never clashes with parley's ``echo``.
PREFIX = "llm/"


class Described(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One model a plugin registered, as its model objects describe it."""

    plugin: str  # the name llm registered the plugin under: its entry point's name
    provider: str  # the distribution that holds it, e.g. ``llm-echo``
    model_id: str  # llm's own id
    aliases: list[str] = []
    sync: bool = False  # it has an ``llm.Model`` / ``llm.KeyModel``
    has_async: bool = False  # it has an ``llm.AsyncModel`` / ``llm.AsyncKeyModel``
    streaming: bool = False
    tools: bool = False
    schema: bool = False
    reasoning: bool = False
    attachments: list[str] = []
    options: dict[str, Any] = {}  # the JSON schema of its Options class

    @property
    def id(self) -> str:
        return PREFIX + self.model_id

    @property
    def in_process(self) -> bool:
        """The rule (see the package's docstring): a model with an async implementation runs in
        the daemon's event loop; one with only a sync implementation, in a worker process."""
        return self.has_async


class LlmJob(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One round: the whole input chain, llm's options by llm's names, and parley's schema option."""

    messages: list[Message]
    system: str | None = None
    options: dict[str, Any] = {}
    schema: dict[str, Any] | None = None
    tools: list[ToolSpec] = []
