--- parley.nvim: chat with any parley model inside Neovim, sharing the daemon, the conversations
--- and the running responses with the other parley clients. See `:help parley`.
local config = require("parley.config")

local M = {}

local function notify(msg, level)
  vim.notify("parley: " .. msg, level or vim.log.levels.INFO)
end

local highlights = {
  ParleyReasoning = { link = "Comment" },
  ParleyError = { link = "DiagnosticError" },
  ParleyInfo = { link = "DiagnosticHint" },
  ParleyTool = { link = "Special" },
  ParleyWinbar = { link = "WinBar" },
  ParleyModel = { link = "Title" },
  ParleyStreaming = { link = "DiagnosticWarn" },
}

function M._highlights()
  for name, spec in pairs(highlights) do
    vim.api.nvim_set_hl(0, name, vim.tbl_extend("force", { default = true }, spec))
  end
end

--- Configures the plugin (every option is optional; see `:help parley-config`).
---@param opts? table
function M.setup(opts)
  if vim.fn.has("nvim-0.10") ~= 1 then
    notify("needs Neovim 0.10 or later", vim.log.levels.ERROR)
    return
  end
  config.set(opts)
  M._create_commands()
end

--- The text sent for a range of the current buffer: where it comes from, in a fenced block.
function M.selection_context(line1, line2, buf)
  buf = buf or vim.api.nvim_get_current_buf()
  local lines
  local s, e = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  if vim.fn.visualmode() == "v" and s[2] == line1 and e[2] == line2 and vim.fn.exists("*getregion") == 1 then
    lines = vim.fn.getregion(s, e, { type = "v" })
  else
    lines = vim.api.nvim_buf_get_lines(buf, line1 - 1, line2, false)
  end
  local name = vim.api.nvim_buf_get_name(buf)
  name = name ~= "" and vim.fn.fnamemodify(name, ":~:.") or "[No Name]"
  local ft = vim.bo[buf].filetype
  local where = line1 == line2 and ("line %d"):format(line1) or ("lines %d-%d"):format(line1, line2)
  local fence = require("parley.render").fence(lines)
  local out = { ("From `%s` (%s, %s):"):format(name, ft ~= "" and ft or "no filetype", where), fence .. ft }
  vim.list_extend(out, lines)
  out[#out + 1] = fence
  return table.concat(out, "\n")
end

--- `:Parley[!] [prompt]`, with an optional range: opens or reuses a chat (a new one with !) and
--- sends the prompt; with a range and no prompt, puts the selection in the input to ask about.
function M.command(opts)
  local chat_mod = require("parley.chat")
  local prompt = vim.trim(opts.args or "")
  local context
  if opts.range and opts.range > 0 then
    context = M.selection_context(opts.line1, opts.line2)
  end
  local chat = chat_mod.get_or_create(opts.bang)
  chat_mod.show(chat)
  local text = prompt
  if context then
    text = prompt ~= "" and (prompt .. "\n\n" .. context) or context
  end
  if text == "" then
    chat_mod.cursor_to_input(chat)
    return chat
  end
  local draft = chat_mod.input_text(chat)
  if chat.running then
    -- keep it for later rather than lose it
    if not chat.draft then
      chat.draft = text
    else
      chat.draft = chat.draft .. "\n\n" .. text
    end
    notify("a response is still running; your text waits below it", vim.log.levels.WARN)
    return chat
  end
  chat_mod.set_input(chat, draft ~= "" and (draft .. "\n\n" .. text) or text)
  if prompt == "" then
    chat_mod.cursor_to_input(chat) -- a selection alone: write the question, then send
  else
    chat_mod.send(chat)
  end
  return chat
end

--- Sends what is written in the current chat (the send key does the same).
function M.send()
  return require("parley.chat").send()
end

--- Cancels the running response of the current chat (or of the last chat used).
function M.cancel()
  return require("parley.chat").cancel()
end

local function set_model(id)
  local chat_mod = require("parley.chat")
  local chat = chat_mod.current()
  config.options.model = id
  if chat then
    chat.model = id
    chat_mod.refresh(chat)
  end
  notify("model " .. id)
end

--- `:ParleyModel [model]`: sets the model of the current chat and of new chats, picking it with
--- vim.ui.select from `models/list` when none is named.
function M.pick_model(name)
  local client = require("parley.client")
  client.list_models(function(err, models)
    if err then
      notify("models/list: " .. tostring(err.message), vim.log.levels.ERROR)
      return
    end
    if name and name ~= "" then
      for _, m in ipairs(models) do
        if m.id == name or vim.tbl_contains(m.aliases or {}, name) then
          return set_model(m.id)
        end
      end
      notify(("unknown model '%s'"):format(name), vim.log.levels.ERROR)
      return
    end
    vim.ui.select(models, {
      prompt = "parley model",
      kind = "parley.model",
      format_item = function(m)
        local s = ("%s (%s)"):format(m.id, m.provider)
        if m.aliases and #m.aliases > 0 then
          s = s .. " aka " .. table.concat(m.aliases, ", ")
        end
        return s .. (m.default and " · default" or "")
      end,
    }, function(choice)
      if choice then
        set_model(choice.id)
      end
    end)
  end)
end

--- `:ParleyConversations [query]`: picks a stored conversation (full-text search with a query)
--- and opens it; a running latest response is attached to and keeps streaming.
function M.conversations(query)
  local client = require("parley.client")
  local params = { limit = config.options.conversations_limit }
  if query and vim.trim(query) ~= "" then
    params.query = vim.trim(query)
  end
  client.request("conversations/list", params, function(err, result)
    if err then
      notify("conversations/list: " .. tostring(err.message), vim.log.levels.ERROR)
      return
    end
    local items = result.conversations or {}
    if #items == 0 then
      notify(params.query and ("no conversation matches '%s'"):format(params.query) or "no conversation yet")
      return
    end
    vim.ui.select(items, {
      prompt = "parley conversations",
      kind = "parley.conversation",
      format_item = function(c)
        return ("%s  ·  %s · %s · %d response%s"):format(
          c.title,
          c.model,
          (c.updatedAt or ""):sub(1, 16):gsub("T", " "),
          c.responseCount or 0,
          c.responseCount == 1 and "" or "s"
        )
      end,
    }, function(choice)
      if choice then
        require("parley.chat").open_conversation(choice.id)
      end
    end)
  end)
end

--- Opens a conversation by id (what picking one in :ParleyConversations does).
function M.open_conversation(id, cb)
  return require("parley.chat").open_conversation(id, cb)
end

--- For a statusline: "parley: <model>" in a chat buffer, "" elsewhere.
function M.statusline()
  return require("parley.chat").statusline()
end

local function complete_models(lead)
  local client = require("parley.client")
  if not client.models then
    local result = client.request_sync("models/list", nil, 1000)
    if result then
      client.models = result.models
    end
  end
  local out = {}
  for _, m in ipairs(client.models or {}) do
    for _, name in ipairs(vim.list_extend({ m.id }, m.aliases or {})) do
      if name:find(lead, 1, true) == 1 then
        out[#out + 1] = name
      end
    end
  end
  return out
end

local created = false

function M._create_commands()
  M._highlights()
  if created then
    return
  end
  created = true
  local cmd = vim.api.nvim_create_user_command
  cmd("Parley", M.command, {
    nargs = "*",
    range = true,
    bang = true,
    desc = "parley: open the chat and send a prompt (with a range: the selection as context)",
  })
  cmd("ParleyCancel", function()
    M.cancel()
  end, { desc = "parley: cancel the running response" })
  cmd("ParleyModel", function(o)
    M.pick_model(o.args)
  end, { nargs = "?", complete = complete_models, desc = "parley: choose the model" })
  cmd("ParleyConversations", function(o)
    M.conversations(o.args)
  end, { nargs = "*", desc = "parley: open a stored conversation (full-text search)" })
  local group = vim.api.nvim_create_augroup("parley", { clear = true })
  vim.api.nvim_create_autocmd("ColorScheme", { group = group, callback = M._highlights })
  vim.api.nvim_create_autocmd("VimLeavePre", {
    group = group,
    callback = function()
      if package.loaded["parley.client"] then
        require("parley.client").stop()
      end
    end,
  })
end

return M
