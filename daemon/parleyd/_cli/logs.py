"""``parley logs``: stored conversations, newest first, with full-text search and llm's filters.

``-q`` is the daemon's search (``conversations/list``'s ``query``). The daemon
has no model filter, so ``-m`` is applied here, page by page, to the model of each
conversation's latest response (the one ``conversations/list`` reports).
``--cid ID`` and ``-c`` (the latest conversation) show one conversation. ``-s``
is a short form in YAML, as llm's: one entry per conversation, its prompts cut.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

import msgspec

import parley
from parley._client._base import select_model

_PAGE = 50
_SHORT = 120  # characters of a prompt in the short form


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="show stored conversations, newest first")
    p.add_argument("-n", "--count", type=int, default=3, metavar="N", help="how many conversations (default 3)")
    p.add_argument("-q", "--query", help="full-text search over the stored text")
    p.add_argument("-m", "--model", help="only conversations whose latest response is by this model (id or alias)")
    p.add_argument("--cid", "--conversation", dest="cid", metavar="ID", help="show this conversation")
    p.add_argument("-c", "--current", action="store_true", help="show the latest conversation")
    p.add_argument("-s", "--short", action="store_true", help="short YAML: model, time and the prompts, cut")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.short and args.json:
        raise SystemExit("parley: cannot use --short and --json together")
    with parley.connect(client_name="parley-cli") as client:
        summaries = list(_chosen(client, args))
        conversations = [client.conversation(s.id) for s in summaries]
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(conversations)) + b"\n")
    elif args.short:
        for summary, conversation in zip(summaries, conversations):
            print(_short(summary, conversation))
    else:
        for summary, conversation in zip(summaries, conversations):
            print(_markdown(summary, conversation))
    return 0


def _chosen(client: parley.Client, args: argparse.Namespace) -> Iterator[parley.ConversationSummary]:
    """The summaries the arguments pick, newest first."""
    if args.cid is not None:
        yield _summary(client, args.cid)
        return
    if args.current:
        yield from client.conversations(limit=1)
        return
    model = None if args.model is None else _model_id(client, args.model)
    found = 0
    before = None
    while found < args.count:
        page = client.conversations(query=args.query, limit=args.count if model is None else _PAGE, before=before)
        for summary in page:
            if model is None or summary.model == model:
                yield summary
                found += 1
                if found == args.count:
                    return
        if model is None or len(page) < _PAGE:
            return
        before = page[-1].updated_at


def _model_id(client: parley.Client, name: str) -> str:
    """The id of the model with this id or alias; the name as given when no served model has it
    (conversations outlive a model's configuration)."""
    try:
        return select_model(client.models(), name).id
    except parley.UnknownModel:
        return name


def _summary(client: parley.Client, conversation_id: str) -> parley.ConversationSummary:
    """The listing's summary of one conversation: the daemon lists, it does not get, summaries."""
    conversation = client.conversation(conversation_id)  # UnknownConversation, with its message, if none
    before = None
    while page := client.conversations(limit=_PAGE, before=before):
        for summary in page:
            if summary.id == conversation.id:
                return summary
        before = page[-1].updated_at
    raise parley.UnknownConversation(f"unknown conversation {conversation_id!r}")


def _markdown(summary: parley.ConversationSummary, conversation: parley.Conversation) -> str:
    lines = [f"# {summary.title or '(untitled)'}", f"{summary.id}  {summary.model}  {summary.updated_at}  {summary.response_count} response(s)", ""]
    for message in conversation.messages:
        lines += [f"## {message.role}", "", parley.text_of(message)]
        lines += [f"[attachment: {_attachment(a)}]" for a in _attachments(message)]
        lines.append("")
    return "\n".join(lines)


def _short(summary: parley.ConversationSummary, conversation: parley.Conversation) -> str:
    """One YAML list item: the strings as JSON, which YAML reads as they are."""
    lines = [
        f"- conversation: {summary.id}",
        f"  model: {summary.model}",
        f"  datetime: {summary.updated_at.split('.')[0]}",
        f"  responses: {summary.response_count}",
        "  prompts:",
    ]
    for message in conversation.messages:
        if message.role == "user":
            lines.append(f"  - {json.dumps(_cut(parley.text_of(message)), ensure_ascii=False)}")
            lines += [f"    # attachment: {_attachment(a)}" for a in _attachments(message)]
    return "\n".join(lines)


def _attachments(message: parley.Message) -> list[parley.Attachment]:
    return [p.attachment for p in message.parts if isinstance(p, parley.AttachmentPart)]


def _attachment(attachment: parley.Attachment) -> str:
    where = attachment.path or attachment.url or f"{len(attachment.content or '') * 3 // 4} bytes"
    return f"{attachment.mime_type or '?'} {where}"


def _cut(text: str) -> str:
    """Whitespace collapsed, at most ``_SHORT`` characters: the start and the end, as llm keeps them."""
    line = " ".join(text.split())
    if len(line) <= _SHORT:
        return line
    half = (_SHORT - 5) // 2
    return f"{line[:half]} ... {line[-half:]}"
