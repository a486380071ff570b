--- Options of parley.nvim: the defaults, and `setup()`'s merge of the user's table over them.
local M = {}

---@class parley.Config
M.defaults = {
  --- How to reach the daemon. By default the plugin runs `parley stdio`, which joins its
  --- stdin/stdout to the user's daemon (starting it when none runs).
  cmd = { "parley", "stdio" },
  --- Extra environment for `cmd` (for example `{ PARLEY_HOME = "/some/dir" }`).
  env = nil,
  --- Connect to the daemon's unix socket instead of running `cmd`: a path, or `true` for the
  --- default socket (`$PARLEY_HOME/run/parley.sock`, `$XDG_RUNTIME_DIR/parley/parley.sock`, or
  --- `$TMPDIR/parley-<uid>/parley.sock`). The daemon must already run.
  socket = nil,
  --- Model id or alias for new chats; nil: the daemon's default model.
  model = nil,
  --- System prompt for new conversations.
  system = nil,
  --- Do not stream the model's reasoning (it is still stored by the daemon).
  hide_reasoning = false,
  --- The daemon's MCP servers (its mcp.json) whose tools every prompt offers, e.g. `{ "time" }`;
  --- each call is asked first (allow once / always / deny, with `vim.ui.select`).
  mcp_servers = nil,
  --- Close the fold of each reasoning block once the answer moves past it.
  fold_reasoning = false,
  --- Where `:Parley` opens a chat buffer that is not visible: "vsplit", "split", "tab" or "current".
  window = "vsplit",
  --- Milliseconds between two buffer updates while a response streams (updates are batched).
  update_interval = 40,
  --- Keep the cursor on the last line while an answer streams when it was there already.
  follow = true,
  --- Show the model and the response's state in the chat window's winbar.
  winbar = true,
  --- How many conversations `:ParleyConversations` lists.
  conversations_limit = 50,
  --- Buffer-local keys of the chat buffer; false disables one.
  keys = {
    send = "<CR>", -- normal mode: send what is written below the last answer
    send_insert = "<C-s>", -- insert mode: the same
    cancel = "<C-c>", -- normal mode: cancel the running response
  },
  --- Milliseconds to wait for `initialize` (and for synchronous calls such as :checkhealth).
  timeout = 10000,
}

---@type parley.Config
M.options = vim.deepcopy(M.defaults)

---@param opts? table
function M.set(opts)
  opts = opts or {}
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  if opts.cmd then -- a list replaces the default whole (tbl_deep_extend would merge it by index)
    M.options.cmd = vim.deepcopy(opts.cmd)
  end
  return M.options
end

return M
