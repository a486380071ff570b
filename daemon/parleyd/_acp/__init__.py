"""``parley acp``: parley as an Agent Client Protocol (ACP v1) agent over stdio.

An editor that speaks ACP (Zed, codecompanion.nvim, avante.nvim, …) launches
``parley acp`` and talks JSON-RPC 2.0 to it, one JSON message per line (NDJSON)
on stdin/stdout. Nothing but ACP is ever written to stdout (the process's fd 1
is pointed at stderr before anything runs; logs go to stderr). The bridge is a
client of the user's daemon, started if none runs, like ``parley stdio``: an
ACP session *is* a parley conversation (the session id is the conversation
id), so a conversation started in Zed shows in Neovim, VS Code and
``parley logs``, and the other way round. The daemon knows nothing of ACP.

The subset of ACP v1 (schema 1.19+) it speaks, and how it maps onto parley:

=============================  ===============================================================
ACP                            parley
=============================  ===============================================================
``initialize``                 ``loadSession``; ``promptCapabilities`` image/audio when a served
                               model takes them, ``embeddedContext``; ``sessionCapabilities``
                               list, resume, close, delete; no ``authMethods``
``session/new``                ``conversations/create {model, cwd}``; ``configOptions``
``session/load``               replays ``conversations/get`` (each response's record for the
                               ids) as ``session/update``s, user chunks included, then answers;
                               a response still running is subscribed (§7.1) and goes on after
``session/resume``             the same session, no replay
``session/list``               ``conversations/list {cwd, before}``; the cursor wraps ``before``
                               (the last item's ``updatedAt``, RFC 3339); 50 a page
``session/close``              cancels the turn (as ``session/cancel``), forgets the session
``session/delete``             ``conversations/delete`` (cancels what runs); idempotent
``session/prompt``             ``prompt {conversationId, messages: [the user message], model,
                               options, tools, chainLimit}``; answered after all its updates
``session/cancel``,            ``response/cancel``: the partial answer is stored, the turn
``$/cancel_request`` (prompt)  answers ``cancelled``, once, and nothing of it follows
``session/set_config_option``  ``model`` (``category: "model"``, ``models/list``) and
                               ``reasoning`` (``thought_level``): ``reasoningEffort``,
                               ``thinking`` or ``hideReasoning``; answers every option
=============================  ===============================================================

Events → updates: ``text`` → ``agent_message_chunk``; ``reasoning`` →
``agent_thought_chunk``; ``tool_call_name``/``tool_call_args`` → ``tool_call``
(pending) then ``tool_call_update`` (``rawInput``), ``in_progress`` when it
runs here, ``completed``/``failed`` with ``rawOutput`` and text content on its
``tool_result`` (a call that never ran is marked ``failed`` at ``done``);
``attachment`` → an image/audio/resource-link chunk; ``usage`` →
``usage_update`` (input + output tokens of the turn, of the model's
``contextWindow``); the conversation's title → ``session_info_update``; a
changed model list → ``config_option_update``. ``messageId``s and
``toolCallId``s are derived from parley's ids (``_translate``), so a replay
carries the ids the live turn did.

Stop reasons: ``done`` completed → ``end_turn``, or ``max_tokens`` when its
``finishReason`` is ``length``, ``max_turn_requests`` when ``chain_limit``;
cancelled → ``cancelled``; an ``error`` event → a JSON-RPC error (-32603)
whose ``data`` is ``{kind, retryable, retryAfter}``.

Prompt content (``_prompt_content``): text; ``resource_link`` ``file://`` read
with the client's ``fs/read_text_file`` when offered (unsaved buffers), else
from disk, and inlined; embedded ``resource`` text inlined; images, audio and
blobs as attachments.

Tools (``_tools``): when the client offers ``fs``, the model gets
``read_text_file``/``write_text_file``, which run through the client after
``session/request_permission`` (allow once / allow always in this session /
reject). ``parley acp --mcp NAME`` gives every prompt the tools of the daemon's MCP server NAME
(from its mcp.json): the daemon runs them, and asks here first (``tool/approve``), which
becomes the same ``session/request_permission``. The ``mcpServers`` an editor passes in
``session/new``/``load`` are validated and logged, not run: the daemon runs the user's own.
"""

from __future__ import annotations

from ._agent import Agent
from ._wire import Peer

__all__ = ["serve"]


async def serve(
    read_fd: int, write_fd: int, *, url: str | None = None, chain_limit: int = 10, offer_tools: bool = True, mcp_servers: list[str] | None = None
) -> None:
    """Serve one ACP client on these file descriptors until it closes its end."""
    peer = Peer(read_fd, write_fd)
    agent = Agent(peer, url=url, chain_limit=chain_limit, offer_tools=offer_tools, mcp_servers=mcp_servers)
    try:
        await peer.run(agent)
    finally:
        await agent.close()
