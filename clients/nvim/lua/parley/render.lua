--- Renders a response's events into a buffer, at an extmark (the "tail") that moves down as text
--- goes in, so the user may type elsewhere in the buffer meanwhile.
---
--- The events build parts as the protocol says (PROTOCOL.md 6.3): a text or reasoning chunk
--- continues its part, tool-call chunks go to their call's block (parallel calls interleave),
--- and tool results, attachments and errors are blocks of their own. Reasoning gets the
--- `ParleyReasoning` highlight through a range extmark in its own namespace, which the chat
--- window's 'foldexpr' folds.
local api = vim.api

local M = {}

M.ns = api.nvim_create_namespace("parley")
M.ns_reasoning = api.nvim_create_namespace("parley_reasoning")

local ns, ns_reasoning = M.ns, M.ns_reasoning

--- Error kinds (PROTOCOL.md 10.2), for people.
M.error_kinds = {
  auth = "authentication",
  rate_limited = "rate limit",
  overloaded = "overloaded",
  context_length = "context too long",
  bad_request = "bad request",
  network = "network",
  timeout = "timeout",
  provider_error = "provider error",
  model_error = "model error",
  internal = "internal error",
  interrupted = "interrupted",
  -- request errors (PROTOCOL.md 10.1) and local ones
  invalid_params = "invalid params",
  invalid_request = "invalid request",
  unknown_model = "unknown model",
  unknown_response = "unknown response",
  unknown_conversation = "unknown conversation",
  message_too_large = "message too large",
  disconnected = "no daemon",
}

function M.error_label(kind)
  return M.error_kinds[kind] or ("provider error (%s)"):format(tostring(kind))
end

--- A code fence longer than any run of backticks in the lines.
function M.fence(lines)
  local longest = 2
  for _, line in ipairs(lines) do
    for run in line:gmatch("`+") do
      longest = math.max(longest, #run)
    end
  end
  return string.rep("`", longest + 1)
end

---@class parley.Renderer
---@field buf integer
---@field tail integer extmark where the answer grows
---@field parts table<integer, table> by partIndex
---@field next_index integer the index the next unindexed part (tool result, attachment) takes
---@field reasoning? integer the open reasoning range extmark
---@field any boolean something was rendered
---@field usage? table the last usage event
---@field status? string done's status
---@field error? table the error event
local Renderer = {}
Renderer.__index = Renderer

--- A renderer whose tail is at the start of line `row` (0-based), which must exist.
function M.new(buf, row)
  local self = setmetatable({ buf = buf, parts = {}, next_index = 0, any = false, marks = {} }, Renderer)
  self.tail = api.nvim_buf_set_extmark(buf, ns, row, 0, { right_gravity = true })
  return self
end

function Renderer:pos(mark)
  local p = api.nvim_buf_get_extmark_by_id(self.buf, ns, mark, {})
  if p[1] then
    return p[1], p[2]
  end
  -- the mark is gone: write at the end of the buffer
  local last = api.nvim_buf_line_count(self.buf) - 1
  local line = api.nvim_buf_get_lines(self.buf, last, last + 1, false)[1] or ""
  return last, #line
end

--- Inserts text at a mark (which has right gravity, so it ends up after the text).
function Renderer:insert(mark, text)
  if text == "" then
    return
  end
  local row, col = self:pos(mark)
  local line = api.nvim_buf_get_lines(self.buf, row, row + 1, false)[1] or ""
  if col > #line then
    col = #line
  end
  api.nvim_buf_set_text(self.buf, row, col, row, col, vim.split(text, "\n", { plain = true }))
end

function Renderer:mark(row, col)
  local id = api.nvim_buf_set_extmark(self.buf, ns, row, col, { right_gravity = true })
  table.insert(self.marks, id)
  return id
end

--- Ends the open reasoning range, so that what follows is not highlighted as reasoning.
function Renderer:close_reasoning()
  local id = self.reasoning
  if not id then
    return
  end
  self.reasoning = nil
  local m = api.nvim_buf_get_extmark_by_id(self.buf, ns_reasoning, id, { details = true })
  if not m[1] then
    return
  end
  local srow, scol, d = m[1], m[2], m[3]
  local erow, ecol = d.end_row or srow, d.end_col or scol
  if ecol == 0 and erow > srow then -- leave the trailing newline out
    erow = erow - 1
    ecol = #(api.nvim_buf_get_lines(self.buf, erow, erow + 1, false)[1] or "")
  end
  api.nvim_buf_set_extmark(self.buf, ns_reasoning, srow, scol, {
    id = id,
    end_row = erow,
    end_col = ecol,
    hl_group = "ParleyReasoning",
    right_gravity = false,
    end_right_gravity = false,
    priority = 150,
  })
  self.to_fold = self.to_fold or {}
  table.insert(self.to_fold, id)
end

--- With `fold_reasoning`, closes the folds of the reasoning blocks that ended (once the edits
--- around them are done: an edit next to a closed fold opens it again).
function Renderer:close_folds()
  local ids = self.to_fold
  if not ids or not require("parley.config").options.fold_reasoning then
    return
  end
  local wins = vim.fn.win_findbuf(self.buf)
  if #wins == 0 then
    return -- not shown yet: when it is
  end
  self.to_fold = nil
  for _, id in ipairs(ids) do
    local m = api.nvim_buf_get_extmark_by_id(self.buf, ns_reasoning, id, {})
    if m[1] then
      for _, win in ipairs(wins) do
        pcall(api.nvim_win_call, win, function()
          vim.cmd(("silent! %dfoldclose"):format(m[1] + 1))
        end)
      end
    end
  end
end

--- Before a new part: close reasoning, end the current line and leave a blank line.
function Renderer:open_part()
  self:close_reasoning()
  if not self.any then
    self.any = true
    return
  end
  local row, col = self:pos(self.tail)
  if col > 0 then
    self:insert(self.tail, "\n\n")
  elseif row > 0 then
    local prev = api.nvim_buf_get_lines(self.buf, row - 1, row, false)[1]
    if prev ~= "" then
      self:insert(self.tail, "\n")
    end
  end
end

--- Writes whole lines at the tail, which ends on the line after them. Returns their first row.
function Renderer:block(lines)
  self:open_part()
  local row = self:pos(self.tail)
  self:insert(self.tail, table.concat(lines, "\n") .. "\n")
  return row
end

function Renderer:highlight_line(row, group)
  local line = api.nvim_buf_get_lines(self.buf, row, row + 1, false)[1] or ""
  api.nvim_buf_set_extmark(self.buf, ns, row, 0, { end_row = row, end_col = #line, hl_group = group, priority = 150 })
end

function Renderer:see_index(idx)
  if type(idx) == "number" and idx + 1 > self.next_index then
    self.next_index = idx + 1
  end
end

function Renderer:open_textual(kind, idx)
  self:open_part()
  self.parts[idx] = { kind = kind }
  if kind == "reasoning" then
    local row, col = self:pos(self.tail)
    self.reasoning = api.nvim_buf_set_extmark(self.buf, ns_reasoning, row, col, {
      end_row = row,
      end_col = col,
      hl_group = "ParleyReasoning",
      right_gravity = false,
      end_right_gravity = true,
      priority = 150,
    })
  end
end

function Renderer:open_tool_call(idx)
  local prefix = "**Tool call** `"
  local row = self:block({ prefix .. "`", "```json", "", "```" })
  self:highlight_line(row, "ParleyTool")
  local part = {
    kind = "tool_call",
    name_mark = self:mark(row, #prefix),
    args_mark = self:mark(row + 2, 0),
  }
  self.parts[idx] = part
  return part
end

function Renderer:tool_result(ev)
  self.next_index = self.next_index + 1
  local head = ("**Tool result** `%s`"):format(ev.name or "?")
  if ev.exception then
    head = head .. " · failed: " .. tostring(ev.exception):gsub("\n", " ")
  end
  if ev.serverExecuted then
    head = head .. " · run by the provider"
  end
  local out = vim.split(tostring(ev.output or ""), "\n", { plain = true })
  local fence = M.fence(out)
  local lines = { head, fence }
  vim.list_extend(lines, out)
  table.insert(lines, fence)
  local row = self:block(lines)
  self:highlight_line(row, ev.exception and "ParleyError" or "ParleyTool")
end

function Renderer:attachment(ev)
  self.next_index = self.next_index + 1
  local what = ev.url or ev.path
  if not what and ev.content then
    what = ("%d bytes"):format(math.floor(#ev.content * 3 / 4))
  end
  local row = self:block({ ("**Attachment** %s · %s"):format(ev.mimeType or "unknown type", what or "empty") })
  self:highlight_line(row, "ParleyTool")
end

function Renderer:error_block(ev)
  self.error = ev
  local line = ("**Error** · %s: %s"):format(M.error_label(ev.code), tostring(ev.message or ""):gsub("\n", " "))
  if ev.retryAfter then
    line = line .. (" (retry after %s s)"):format(ev.retryAfter)
  elseif ev.retryable then
    line = line .. " (retryable)"
  end
  local row = self:block({ line })
  self:highlight_line(row, "ParleyError")
end

--- A line of information in the answer (for example "cancelled").
function Renderer:note(text)
  local row = self:block({ text })
  self:highlight_line(row, "ParleyInfo")
end

--- Renders events in order; consecutive chunks into one place are written in one edit.
function Renderer:process(events)
  local acc_mark, acc = nil, {}
  local function commit()
    if acc_mark then
      self:insert(acc_mark, table.concat(acc))
      acc_mark, acc = nil, {}
    end
  end
  local function add(mark, s)
    if s == nil or s == "" then
      return
    end
    if acc_mark ~= mark then
      commit()
      acc_mark = mark
    end
    acc[#acc + 1] = s
  end
  for _, ev in ipairs(events) do
    local t = ev.type
    if t == "text" or t == "reasoning" then
      local idx = ev.partIndex or self.next_index
      self:see_index(idx)
      local part = self.parts[idx]
      if not part or part.kind ~= t then
        commit()
        self:open_textual(t, idx)
        part = self.parts[idx]
      end
      if ev.redacted then
        if not part.redacted then
          part.redacted = true
          add(self.tail, "(reasoning redacted by the provider)")
        end
      else
        add(self.tail, ev.chunk)
      end
    elseif t == "tool_call_name" or t == "tool_call_args" then
      local idx = ev.partIndex or self.next_index
      self:see_index(idx)
      local part = self.parts[idx]
      if not part or part.kind ~= "tool_call" then
        commit()
        part = self:open_tool_call(idx)
      end
      add(t == "tool_call_name" and part.name_mark or part.args_mark, ev.chunk)
    elseif t == "tool_result" then
      commit()
      self:tool_result(ev)
    elseif t == "attachment" then
      commit()
      self:attachment(ev)
    elseif t == "usage" then
      self.usage = ev
    elseif t == "error" then
      commit()
      self:error_block(ev)
    elseif t == "done" then
      commit()
      self.status = ev.status
    end
  end
  commit()
end

--- Ends rendering: closes reasoning and drops the marks only rendering needed. Returns the row
--- the tail is on, at column 0 (a new line is started when needed).
function Renderer:finish()
  self:close_reasoning()
  local row, col = self:pos(self.tail)
  if col > 0 then
    self:insert(self.tail, "\n")
    row = row + 1
  end
  for _, id in ipairs(self.marks) do
    pcall(api.nvim_buf_del_extmark, self.buf, ns, id)
  end
  pcall(api.nvim_buf_del_extmark, self.buf, ns, self.tail)
  self.marks = {}
  return row
end

--- The events that rebuild a stored message's parts (to render history like a stream).
function M.parts_to_events(parts, hide_reasoning)
  local evs = {}
  for i, p in ipairs(parts or {}) do
    local idx = i - 1
    if p.type == "text" then
      evs[#evs + 1] = { type = "text", chunk = p.text, partIndex = idx }
    elseif p.type == "reasoning" then
      if not hide_reasoning then
        evs[#evs + 1] = { type = "reasoning", chunk = p.text, redacted = p.redacted, partIndex = idx }
      end
    elseif p.type == "tool_call" then
      local id = p.toolCallId or ("part" .. idx)
      local meta = p.providerMetadata and p.providerMetadata.parley
      local args = meta and meta.partialArguments
      if not args then
        args = (p.arguments and next(p.arguments)) and vim.json.encode(p.arguments) or "{}"
      end
      evs[#evs + 1] = { type = "tool_call_name", chunk = p.name, toolCallId = id, partIndex = idx }
      evs[#evs + 1] = { type = "tool_call_args", chunk = args, toolCallId = id, partIndex = idx }
    elseif p.type == "tool_result" then
      evs[#evs + 1] = {
        type = "tool_result",
        name = p.name,
        output = p.output,
        exception = p.exception,
        toolCallId = p.toolCallId,
        serverExecuted = p.serverExecuted,
      }
    elseif p.type == "attachment" then
      local a = p.attachment or {}
      evs[#evs + 1] = { type = "attachment", mimeType = a.mimeType, url = a.url, path = a.path, content = a.content }
    end
  end
  return evs
end

--- The text of a user message: its text parts, then a line per attachment.
function M.user_text(parts)
  local out = {}
  for _, p in ipairs(parts or {}) do
    if p.type == "text" then
      out[#out + 1] = p.text
    elseif p.type == "attachment" then
      local a = p.attachment or {}
      out[#out + 1] = ("[attachment %s: %s]"):format(a.mimeType or "?", a.url or a.path or "inline")
    end
  end
  return table.concat(out, "\n\n")
end

return M
