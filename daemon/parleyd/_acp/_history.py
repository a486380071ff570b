"""A stored conversation as ``session/load`` replays it: its chain of messages, and which
response produced each one (for the derived ``messageId``s)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from parley._types import Message, ResponseRecord

from ._link import Link


@dataclass
class History:
    chain: list[Message]
    owners: list[tuple[str, int] | None]  # per message: (response id, output index), None for input
    model: str | None  # the model of the latest response, else the one the conversation was created with
    running: str | None  # the latest response's id, when it is still running (its output is not in chain)
    title: str
    cwd: str | None


async def load(link: Link, conversation_id: str) -> History:
    conversation = await link.conversation(conversation_id)
    records: list[ResponseRecord] = list(await asyncio.gather(*(link.response(r) for r in conversation.response_ids)))
    latest = records[-1] if records else None
    running = latest.id if latest is not None and latest.status == "running" else None
    if latest is None:
        chain = list(conversation.messages)
    elif running is not None:
        chain = list(latest.prompt.messages)  # the output so far comes as events
    else:
        chain = latest.prompt.messages + latest.messages
    owners: list[tuple[str, int] | None] = [None] * len(chain)
    for record in records:  # in the order they started: a retry, later, wins its positions
        if record.id == running:
            continue
        start = len(record.prompt.messages)
        for index, message in enumerate(record.messages):
            position = start + index
            if position < len(chain) and chain[position] == message:
                owners[position] = (record.id, index)
    return History(
        chain=chain,
        owners=owners,
        model=latest.model if latest is not None else conversation.model,
        running=running,
        title=conversation.title,
        cwd=conversation.cwd,
    )
