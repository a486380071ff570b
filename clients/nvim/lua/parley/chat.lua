--- Chat buffers: a markdown buffer per conversation. The user writes below the last answer
--- (under "## You") and sends; the answer streams in under "## parley · <model>".
---
--- Streaming never writes per event: events are queued and written every `update_interval` ms,
--- consecutive chunks in one edit, so a fast stream costs a few edits a second.
local api = vim.api
local config = require("parley.config")
local client = require("parley.client")
local render = require("parley.render")

local uv = vim.uv or vim.loop
local ns = render.ns

local M = {}

---@class parley.Running
---@field id? string the responseId, once `prompt`/`reply` answered
---@field renderer parley.Renderer
---@field header_mark integer
---@field pending table[] events not yet written
---@field cancel_requested? boolean
---@field state string "starting"|"streaming"|"cancelling"

---@class parley.Chat
---@field buf integer
---@field model? string
---@field conversation_id? string
---@field title? string
---@field last_response_id? string the parent of the next `reply`
---@field last_status? string
---@field running? parley.Running
---@field input_mark integer where the user's input starts
---@field timer? uv.uv_timer_t
---@field armed? boolean

---@type table<integer, parley.Chat>
local chats = {}
local last_buf = nil
local counter = 0

client.on_state(function()
  for _, chat in pairs(chats) do
    M.refresh(chat)
  end
end)

local function notify(msg, level)
  vim.notify("parley: " .. msg, level or vim.log.levels.INFO)
end

--- The chat of a buffer (default: the current one), or nil.
---@return parley.Chat?
function M.get(buf)
  buf = buf or api.nvim_get_current_buf()
  return chats[buf]
end

--- The chat of the current buffer, else the last chat used.
---@return parley.Chat?
function M.current()
  local chat = chats[api.nvim_get_current_buf()]
  if chat then
    return chat
  end
  if last_buf and chats[last_buf] and api.nvim_buf_is_valid(last_buf) then
    return chats[last_buf]
  end
end

function M.all()
  return chats
end

--- The model a chat uses, for people: the chosen one, else the daemon's default.
function M.model_label(chat)
  local model = chat and chat.model or config.options.model
  if model then
    return model
  end
  local default = client.default_model()
  return default and (default .. " (default)") or "default model"
end

local function esc(s)
  return (tostring(s):gsub("%%", "%%%%"))
end

--- The winbar of a chat window (a 'statusline' expression).
function M.winbar()
  local chat = chats[api.nvim_get_current_buf()]
  if not chat then
    return ""
  end
  local out = { "%#ParleyWinbar# parley%* %#ParleyModel#" .. esc(M.model_label(chat)) .. "%*" }
  local r = chat.running
  local state = client.state()
  if r then
    local what = r.state == "cancelling" and "cancelling…" or (r.state == "starting" and "starting…" or "streaming…")
    if state ~= "ready" then
      what = "reconnecting…"
    end
    out[#out + 1] = "%#ParleyStreaming#" .. what .. "%*"
  elseif state == "disconnected" and client.last_error then
    out[#out + 1] = "%#ParleyError#not connected%*"
  end
  if chat.title then
    out[#out + 1] = esc(chat.title)
  end
  return table.concat(out, " · ")
end

--- For a user's statusline: "parley: <model>" in a chat buffer, "" elsewhere.
function M.statusline()
  local chat = chats[api.nvim_get_current_buf()]
  if not chat then
    return ""
  end
  return "parley: " .. M.model_label(chat) .. (chat.running and " (streaming)" or "")
end

local function refresh(chat)
  if chat and api.nvim_buf_is_valid(chat.buf) then
    vim.b[chat.buf].parley_model = M.model_label(chat)
    vim.b[chat.buf].parley_conversation = chat.conversation_id
    vim.b[chat.buf].parley_running = chat.running ~= nil
  end
  pcall(vim.cmd.redrawstatus, { bang = true })
end
M.refresh = refresh

--- 'foldexpr' of chat windows: reasoning lines are a fold.
function M.foldexpr(lnum)
  local buf = api.nvim_get_current_buf()
  local row = lnum - 1
  local marks = api.nvim_buf_get_extmarks(buf, render.ns_reasoning, { row, 0 }, { row, -1 }, { overlap = true, details = true })
  for _, m in ipairs(marks) do
    local srow, d = m[2], m[4]
    local erow, ecol = d.end_row or srow, d.end_col or 0
    if row >= srow and (row < erow or (row == erow and (ecol > 0 or erow == srow))) then
      return "1"
    end
  end
  return "0"
end

function M.foldtext()
  local n = vim.v.foldend - vim.v.foldstart + 1
  return ("▸ reasoning · %d line%s"):format(n, n == 1 and "" or "s")
end

local function set_window_options(win)
  local function set(name, value)
    pcall(api.nvim_win_call, win, function()
      vim.opt_local[name] = value -- like :setlocal: for this buffer in this window
    end)
  end
  set("foldmethod", "expr")
  set("foldexpr", "v:lua.require'parley.chat'.foldexpr(v:lnum)")
  set("foldtext", "v:lua.require'parley.chat'.foldtext()")
  set("foldlevel", config.options.fold_reasoning and 0 or 99)
  set("foldenable", true)
  set("wrap", true)
  set("linebreak", true)
  if config.options.winbar then
    set("winbar", "%{%v:lua.require'parley.chat'.winbar()%}")
  end
end

local function input_row(chat)
  local p = api.nvim_buf_get_extmark_by_id(chat.buf, ns, chat.input_mark, {})
  if p[1] then
    return p[1]
  end
  return api.nvim_buf_line_count(chat.buf)
end

--- What the user wrote below the last answer, without the blank lines around it.
function M.input_text(chat)
  local lines = api.nvim_buf_get_lines(chat.buf, input_row(chat), -1, false)
  while #lines > 0 and vim.trim(lines[1]) == "" do
    table.remove(lines, 1)
  end
  while #lines > 0 and vim.trim(lines[#lines]) == "" do
    table.remove(lines)
  end
  return table.concat(lines, "\n")
end

--- Replaces the input with text.
function M.set_input(chat, text)
  local lines = vim.split(text, "\n", { plain = true })
  api.nvim_buf_set_lines(chat.buf, input_row(chat), -1, false, lines)
end

--- Puts the cursor at the end of the input in the chat's windows.
local function cursor_to_input(chat)
  local last = api.nvim_buf_line_count(chat.buf)
  local line = api.nvim_buf_get_lines(chat.buf, last - 1, last, false)[1] or ""
  for _, win in ipairs(vim.fn.win_findbuf(chat.buf)) do
    pcall(api.nvim_win_set_cursor, win, { last, #line })
  end
end
M.cursor_to_input = cursor_to_input

--- Opens the "## You" section at row (0-based; the rows from there on become the input).
local function open_input(chat, row)
  local lines = api.nvim_buf_get_lines(chat.buf, math.max(row - 1, 0), row, false)
  local new = {}
  if row > 0 and lines[1] ~= "" then
    new[#new + 1] = ""
  end
  new[#new + 1] = "## You"
  new[#new + 1] = ""
  api.nvim_buf_set_text(chat.buf, row, 0, row, 0, new)
  local input = row + #new - 1
  if chat.input_mark then
    pcall(api.nvim_buf_del_extmark, chat.buf, ns, chat.input_mark)
  end
  chat.input_mark = api.nvim_buf_set_extmark(chat.buf, ns, input, 0, { right_gravity = false })
end

local function on_wipe(buf)
  local chat = chats[buf]
  if not chat then
    return
  end
  chats[buf] = nil
  if chat.running and chat.running.id then
    client.unsubscribe(chat.running.id)
  end
  if chat.timer then
    chat.timer:stop()
    chat.timer:close()
    chat.timer = nil
  end
  if last_buf == buf then
    last_buf = nil
  end
end

local function map_keys(chat)
  local keys = config.options.keys or {}
  local buf = chat.buf
  local function map(mode, lhs, fn, desc)
    if lhs and lhs ~= "" then
      vim.keymap.set(mode, lhs, fn, { buffer = buf, silent = true, desc = desc })
    end
  end
  map("n", keys.send, function()
    M.send(chats[buf])
  end, "parley: send what is written below the last answer")
  map("i", keys.send_insert, function()
    vim.cmd.stopinsert()
    M.send(chats[buf])
  end, "parley: send what is written below the last answer")
  map("n", keys.cancel, function()
    M.cancel(chats[buf])
  end, "parley: cancel the running response")
end

--- A new, empty chat buffer (not shown).
---@return parley.Chat
function M.new()
  counter = counter + 1
  local buf = api.nvim_create_buf(true, false)
  local name = "parley://chat/" .. counter
  if vim.fn.bufexists(name) == 1 then
    name = name .. "-" .. buf
  end
  api.nvim_buf_set_name(buf, name)
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = "markdown"
  api.nvim_buf_set_lines(buf, 0, -1, false, { "## You", "" })
  ---@type parley.Chat
  local chat = { buf = buf, model = config.options.model }
  chat.input_mark = api.nvim_buf_set_extmark(buf, ns, 1, 0, { right_gravity = false })
  chats[buf] = chat
  last_buf = buf
  map_keys(chat)
  local group = api.nvim_create_augroup("parley_chat_" .. buf, { clear = true })
  api.nvim_create_autocmd("BufWinEnter", {
    group = group,
    buffer = buf,
    callback = function()
      set_window_options(api.nvim_get_current_win())
      last_buf = buf
    end,
  })
  api.nvim_create_autocmd("BufEnter", {
    group = group,
    buffer = buf,
    callback = function()
      last_buf = buf
    end,
  })
  api.nvim_create_autocmd({ "BufWipeout", "BufDelete" }, {
    group = group,
    buffer = buf,
    callback = function()
      on_wipe(buf)
    end,
  })
  refresh(chat)
  return chat
end

--- Shows a chat buffer: focuses its window, else opens one as `window` says.
function M.show(chat)
  local buf = chat.buf
  local win = vim.fn.bufwinid(buf)
  if win ~= -1 then
    api.nvim_set_current_win(win)
  else
    local cur = api.nvim_get_current_buf()
    local empty = api.nvim_buf_get_name(cur) == ""
      and not vim.bo[cur].modified
      and api.nvim_buf_line_count(cur) == 1
      and (api.nvim_buf_get_lines(cur, 0, 1, false)[1] or "") == ""
      and vim.bo[cur].buftype == ""
    local how = config.options.window
    if how == "current" or empty then
      api.nvim_set_current_buf(buf)
    elseif how == "tab" then
      vim.cmd("tab sbuffer " .. buf)
    elseif how == "split" then
      vim.cmd("belowright sbuffer " .. buf)
    else
      vim.cmd("vertical belowright sbuffer " .. buf)
    end
    set_window_options(api.nvim_get_current_win())
  end
  last_buf = buf
  return api.nvim_get_current_win()
end

--- The chat to use: the current buffer's, the last one, or a new one (always new with `new`).
function M.get_or_create(new)
  if not new then
    local chat = M.current()
    if chat then
      return chat
    end
  end
  return M.new()
end

-- streaming -----------------------------------------------------------------------------------

local function followers(buf)
  local wins = {}
  if not config.options.follow then
    return wins
  end
  local last = api.nvim_buf_line_count(buf)
  local cur = api.nvim_get_current_win()
  local inserting = api.nvim_get_mode().mode:sub(1, 1) == "i"
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    if api.nvim_win_get_cursor(win)[1] >= last and not (win == cur and inserting) then
      wins[#wins + 1] = win
    end
  end
  return wins
end

local set_header_label

local function set_header(chat, r, extra)
  local parts = {}
  local u = r.renderer.usage
  if u and (u.input or u.output) then
    parts[#parts + 1] = ("%s in · %s out"):format(u.input or "?", u.output or "?")
  end
  if extra then
    parts[#parts + 1] = extra
  end
  local p = api.nvim_buf_get_extmark_by_id(chat.buf, ns, r.header_mark, {})
  if not p[1] then
    return
  end
  api.nvim_buf_set_extmark(chat.buf, ns, p[1], 0, {
    id = r.header_mark,
    right_gravity = false,
    virt_text = #parts > 0 and { { "  " .. table.concat(parts, " · "), "ParleyInfo" } } or nil,
    virt_text_pos = "eol",
  })
end

--- Rewrites the answer's header line ("## parley · model") once the model is known.
set_header_label = function(chat, r, model)
  local p = api.nvim_buf_get_extmark_by_id(chat.buf, ns, r.header_mark, {})
  if not p[1] or not model then
    return
  end
  local line = api.nvim_buf_get_lines(chat.buf, p[1], p[1] + 1, false)[1]
  local want = "## parley · " .. model
  if line and line:match("^## parley") and line ~= want then
    api.nvim_buf_set_text(chat.buf, p[1], 0, p[1], #line, { want })
  end
end

local function finish(chat, r, status)
  local renderer = r.renderer
  if status == "cancelled" then
    renderer:note("_cancelled_")
  end
  local row = renderer:finish()
  set_header(chat, r, status ~= "completed" and status or nil)
  chat.running = nil
  if r.id then
    chat.last_response_id = r.id
  end
  chat.last_status = status
  open_input(chat, row)
  if chat.draft then
    local typed = M.input_text(chat)
    M.set_input(chat, typed ~= "" and (chat.draft .. "\n\n" .. typed) or chat.draft)
    chat.draft = nil
  end
  refresh(chat)
  if not r.quiet then
    api.nvim_exec_autocmds("User", {
      pattern = "ParleyDone",
      modeline = false,
      data = { buf = chat.buf, response_id = r.id, status = status, conversation_id = chat.conversation_id },
    })
  end
end

--- Writes the queued events of the running response.
function M.flush(chat)
  local r = chat.running
  if not r or #r.pending == 0 or not api.nvim_buf_is_valid(chat.buf) then
    return
  end
  local events = r.pending
  r.pending = {}
  local follow = followers(chat.buf)
  r.renderer:process(events)
  local done = r.renderer.status
  if done then
    finish(chat, r, done)
  end
  r.renderer:close_folds()
  if #follow > 0 then
    local last = api.nvim_buf_line_count(chat.buf)
    for _, win in ipairs(follow) do
      pcall(api.nvim_win_set_cursor, win, { last, 0 })
    end
  end
end

local function arm(chat)
  if chat.armed then
    return
  end
  chat.armed = true
  chat.timer = chat.timer or uv.new_timer()
  chat.timer:start(config.options.update_interval, 0, function()
    vim.schedule(function()
      chat.armed = false
      if chats[chat.buf] == chat then
        M.flush(chat)
      end
    end)
  end)
end

local function on_event(chat, r, ev)
  if chat.running ~= r or chats[chat.buf] ~= chat then
    return
  end
  if r.state == "starting" then
    r.state = "streaming"
    refresh(chat)
  end
  table.insert(r.pending, ev)
  if ev.type == "error" then
    local msg = ("%s: %s"):format(render.error_label(ev.code), tostring(ev.message or ""))
    if ev.retryAfter then
      msg = msg .. (" (retry after %s s)"):format(ev.retryAfter)
    end
    notify(msg, vim.log.levels.ERROR)
  end
  if ev.type == "done" then
    M.flush(chat)
  else
    arm(chat)
  end
end

--- Opens an answer section ("## parley · model") at the end of the buffer and returns its
--- running state; events given to the returned handler are rendered there.
local function begin_answer(chat, model)
  local buf = chat.buf
  local count = api.nvim_buf_line_count(buf)
  local last = api.nvim_buf_get_lines(buf, count - 1, count, false)[1]
  local header = "## parley" .. (model and (" · " .. model) or "")
  local start, lines
  if count == 1 and last == "" then
    start, lines = 0, { header, "" }
  elseif last == "" then
    start, lines = count, { header, "" }
  else
    start, lines = count, { "", header, "" }
  end
  api.nvim_buf_set_lines(buf, start, start == 0 and -1 or start, false, lines)
  local header_row = start + #lines - 2
  ---@type parley.Running
  local r = {
    renderer = render.new(buf, header_row + 1),
    header_mark = api.nvim_buf_set_extmark(buf, ns, header_row, 0, { right_gravity = false }),
    pending = {},
    state = "starting",
  }
  chat.running = r
  set_header(chat, r, nil)
  return r
end

local function fail_start(chat, r, err, text)
  local kind = err.data and err.data.kind or "error"
  notify(("%s: %s"):format(render.error_label(kind), tostring(err.message)), vim.log.levels.ERROR)
  r.renderer:process({ { type = "error", code = kind, message = err.message } })
  local row = r.renderer:finish()
  set_header(chat, r, "not sent")
  chat.running = nil
  open_input(chat, row)
  if text then
    M.set_input(chat, text) -- give the text back, to fix and send again
  end
  refresh(chat)
  api.nvim_exec_autocmds("User", {
    pattern = "ParleyDone",
    modeline = false,
    data = { buf = chat.buf, status = "error", conversation_id = chat.conversation_id },
  })
end

--- Sends what is written below the last answer: `prompt` for a new conversation, else `reply`
--- to the last response. Returns false when nothing was sent.
function M.send(chat)
  chat = chat or M.current()
  if not chat then
    notify("no chat buffer", vim.log.levels.WARN)
    return false
  end
  if chat.running then
    notify("a response is still running; cancel it first (" .. tostring(config.options.keys.cancel or ":ParleyCancel") .. ")", vim.log.levels.WARN)
    return false
  end
  local text = M.input_text(chat)
  if text == "" then
    notify("nothing to send: write below the last answer", vim.log.levels.WARN)
    return false
  end
  local row = input_row(chat)
  api.nvim_buf_set_lines(chat.buf, row, -1, false, vim.split(text, "\n", { plain = true }))
  local r = begin_answer(chat, chat.model or client.default_model())
  -- a window whose cursor was in the input now follows the answer
  local last = api.nvim_buf_line_count(chat.buf)
  for _, win in ipairs(vim.fn.win_findbuf(chat.buf)) do
    if api.nvim_win_get_cursor(win)[1] > row then
      pcall(api.nvim_win_set_cursor, win, { last, 0 })
    end
  end
  local params = { prompt = text, model = chat.model }
  if config.options.hide_reasoning then
    params.hideReasoning = true
  end
  if config.options.mcp_servers and #config.options.mcp_servers > 0 then
    params.mcpServers = config.options.mcp_servers
  end
  local method = "prompt"
  if chat.last_response_id then
    method = "reply"
    params.responseId = chat.last_response_id
  else
    params.conversationId = chat.conversation_id
    params.system = config.options.system
  end
  client.start_response(method, params, function(ev)
    on_event(chat, r, ev)
  end, function(err, result)
    if chat.running ~= r then
      return
    end
    if err then
      fail_start(chat, r, err, text)
      return
    end
    r.id = result.responseId
    chat.conversation_id = result.conversationId
    set_header_label(chat, r, chat.model or client.default_model())
    if not chat.title then
      chat.title = (text:gsub("%s+", " ")):sub(1, 60)
    end
    refresh(chat)
    if r.cancel_requested then
      M.cancel(chat)
    end
  end)
  refresh(chat)
  return true
end

--- Cancels the running response of a chat (the current one by default); the partial answer stays.
function M.cancel(chat)
  chat = chat or M.current()
  local r = chat and chat.running
  if not r then
    notify("nothing is running")
    return false
  end
  r.state = "cancelling"
  refresh(chat)
  if not r.id then
    r.cancel_requested = true -- sent once `prompt` answers
    return true
  end
  client.request("response/cancel", { responseId = r.id }, function(err)
    if err then
      notify("cancel: " .. tostring(err.message), vim.log.levels.ERROR)
    end
  end)
  return true
end

-- history -------------------------------------------------------------------------------------

local function append_lines(buf, lines)
  local count = api.nvim_buf_line_count(buf)
  local last = api.nvim_buf_get_lines(buf, count - 1, count, false)[1]
  if count == 1 and last == "" then
    api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  else
    if last ~= "" then
      table.insert(lines, 1, "")
    end
    api.nvim_buf_set_lines(buf, count, count, false, lines)
  end
end

--- Renders stored parts under a header, like a stream (same blocks, same highlights).
local function render_parts(buf, header, parts)
  append_lines(buf, { header, "" })
  local renderer = render.new(buf, api.nvim_buf_line_count(buf) - 1)
  renderer:process(render.parts_to_events(parts, config.options.hide_reasoning))
  return renderer
end

local function render_history(chat, record)
  local buf = chat.buf
  local prompt = record.prompt or {}
  if prompt.system then
    append_lines(buf, { "## System", unpack(vim.split(prompt.system, "\n", { plain = true })) })
  end
  for _, msg in ipairs(prompt.messages or {}) do
    if msg.role == "user" then
      append_lines(buf, { "## You", unpack(vim.split(render.user_text(msg.parts), "\n", { plain = true })) })
    elseif msg.role == "assistant" or msg.role == "tool" then
      local renderer = render_parts(buf, msg.role == "tool" and "## Tool results" or "## parley", msg.parts)
      renderer:finish()
      table.insert(chat.fold_later, renderer)
    elseif msg.role == "system" then
      append_lines(buf, { "## System", unpack(vim.split(render.user_text(msg.parts), "\n", { plain = true })) })
    end
  end
end

local function clear(chat)
  api.nvim_buf_clear_namespace(chat.buf, ns, 0, -1)
  api.nvim_buf_clear_namespace(chat.buf, render.ns_reasoning, 0, -1)
  api.nvim_buf_set_lines(chat.buf, 0, -1, false, {})
  chat.input_mark = api.nvim_buf_set_extmark(chat.buf, ns, 0, 0, { right_gravity = false })
end

--- Fills a chat with a stored conversation; when its latest response is still running
--- (started by any client), attaches to it and streams the rest.
local function load(chat, conv, record, draft)
  clear(chat)
  chat.conversation_id = conv.id
  chat.title = conv.title
  chat.model = record.model
  chat.last_response_id = nil
  chat.fold_later = {}
  render_history(chat, record)
  local r = begin_answer(chat, record.model)
  r.id = record.id
  if record.status == "running" then
    -- replay from the first event, then live: no gap, no duplicate (PROTOCOL.md 7.1)
    r.state = "streaming"
    client.subscribe(record.id, 0, function(ev)
      on_event(chat, r, ev)
    end, function(err)
      if err and chat.running == r and not client.last_seq(record.id) then
        on_event(chat, r, { type = "error", code = err.data and err.data.kind or "internal", message = err.message })
        on_event(chat, r, { type = "done", status = "error" })
      end
    end)
  else
    local events = {}
    local out = record.messages and record.messages[1]
    if out then
      events = render.parts_to_events(out.parts, config.options.hide_reasoning)
    end
    if record.error then
      events[#events + 1] = { type = "error", code = record.error.code, message = record.error.message, retryAfter = record.error.retryAfter }
    end
    if record.usage then
      events[#events + 1] = vim.tbl_extend("force", { type = "usage" }, record.usage)
    end
    local status = record.status == "interrupted" and "interrupted" or record.status
    events[#events + 1] = { type = "done", status = status }
    r.quiet = true -- history, not a new answer: no ParleyDone
    table.insert(chat.fold_later, r.renderer)
    r.pending = events
    M.flush(chat)
  end
  if draft and draft ~= "" then
    if chat.running then
      chat.draft = draft -- given back below the answer when it ends
    else
      M.set_input(chat, draft)
    end
  end
  refresh(chat)
end

--- Opens a stored conversation in a chat buffer (reusing the one already showing it).
function M.open_conversation(conversation_id, cb)
  client.request("conversations/get", { conversationId = conversation_id }, function(err, conv)
    if err then
      notify("conversation: " .. tostring(err.message), vim.log.levels.ERROR)
      return cb and cb(err)
    end
    local latest = conv.responseIds[#conv.responseIds]
    client.request("response/get", { responseId = latest }, function(err2, record)
      if err2 then
        notify("response: " .. tostring(err2.message), vim.log.levels.ERROR)
        return cb and cb(err2)
      end
      local chat
      for _, c in pairs(chats) do
        if c.conversation_id == conversation_id then
          chat = c
        end
      end
      if chat and (chat.running and chat.running.id == latest or (not chat.running and chat.last_response_id == latest)) then
        M.show(chat) -- already up to date
        return cb and cb(nil, chat)
      end
      local draft
      if chat and not chat.running then
        draft = M.input_text(chat)
      elseif chat then
        chat = nil -- busy with another response: use a new buffer
      end
      chat = chat or M.new()
      load(chat, conv, record, draft)
      M.show(chat)
      for _, renderer in ipairs(chat.fold_later or {}) do
        renderer:close_folds()
      end
      chat.fold_later = nil
      cursor_to_input(chat)
      if cb then
        cb(nil, chat)
      end
    end)
  end)
end

return M
