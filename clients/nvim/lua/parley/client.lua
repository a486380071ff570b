--- The connection to the parley daemon: JSON-RPC over `vim.lsp.rpc` (Content-Length framing),
--- either on the stdio of `parley stdio` or on the daemon's unix socket.
---
--- One connection serves the whole editor. It is opened on first use, `initialize`d before any
--- other request (requests made meanwhile wait in a queue), and reopened when it drops while a
--- response is being followed. Subscriptions remember the last `seq` they handled, so a
--- reattach, a `response/lagged` or a gap in the seqs resubscribes with `afterSeq` and misses
--- nothing and repeats nothing. A merged delta (`seqEnd`, sent to a slow reader) is taken once,
--- as the seqs `seq`..`seqEnd` it stands for.
local config = require("parley.config")

local M = {}

M.version = "0.1.0"

local uv = vim.uv or vim.loop

---@class parley.Sub
---@field id string the responseId
---@field last_seq integer the last seq handed to on_event (an event's `seqEnd`, where it has one)
---@field on_event fun(event: table)
---@field resub_at? integer last_seq at the last resubscription (not to repeat it)
---@field needs_resubscribe? boolean the connection dropped while following

---@type table<string, parley.Sub>
local subs = {}

---@class parley.Conn
---@field rpc vim.lsp.rpc.PublicClient
---@field state "connecting"|"ready"|"closed"
---@field queue table[] requests waiting for initialize
---@field pending table<table, fun(err: table?, result: any)> requests sent, not answered
---@field target string what it is connected to, for messages
---@field stopping? boolean closed on purpose: do not reconnect

---@type parley.Conn?
local conn = nil

--- The `initialize` result of the current connection.
M.server = nil
--- The last `models/list` result.
---@type table[]?
M.models = nil
--- Why the last connection attempt failed, if it did.
M.last_error = nil

local listeners = {}
local reconnect_tries = 0

--- Calls fn() whenever the connection's state changes.
function M.on_state(fn)
  table.insert(listeners, fn)
end

local function emit_state()
  for _, fn in ipairs(listeners) do
    pcall(fn, M.state())
  end
end

---@return "disconnected"|"connecting"|"ready"
function M.state()
  if not conn or conn.state == "closed" then
    return "disconnected"
  end
  return conn.state
end

--- An error table shaped like a JSON-RPC error answer.
function M.make_error(kind, message)
  return { code = -1, message = message, data = { kind = kind } }
end

--- The default unix socket of the daemon, as the daemon computes it.
function M.default_socket()
  local home = vim.env.PARLEY_HOME
  if home and home ~= "" then
    return home .. "/run/parley.sock"
  end
  local xdg = vim.env.XDG_RUNTIME_DIR
  if xdg and xdg ~= "" and vim.fn.isdirectory(xdg) == 1 then
    return xdg .. "/parley/parley.sock"
  end
  local tmp = vim.env.TMPDIR
  if not tmp or tmp == "" then
    tmp = "/tmp"
  end
  return ("%s/parley-%d/parley.sock"):format(tmp:gsub("/$", ""), uv.getuid())
end

--- What the plugin connects to, in words.
function M.target()
  local opts = config.options
  if opts.socket then
    return "socket " .. (opts.socket == true and M.default_socket() or opts.socket)
  end
  return "`" .. table.concat(opts.cmd, " ") .. "`"
end

local function fail_all(c, err)
  local pending, queue = c.pending, c.queue
  c.pending, c.queue = {}, {}
  for _, cb in pairs(pending) do
    pcall(cb, err, nil)
  end
  for _, q in ipairs(queue) do
    pcall(q[3], err, nil)
  end
end

local function send(c, method, params, cb)
  local key = {}
  c.pending[key] = cb
  local ok = c.rpc.request(method, params, function(err, result)
    if c.pending[key] == nil then
      return -- already failed when the connection closed
    end
    c.pending[key] = nil
    cb(err, result)
  end)
  if not ok then
    c.pending[key] = nil
    cb(M.make_error("disconnected", "the connection to the parley daemon is closed"), nil)
  end
end

local function resubscribe(sub)
  if sub.resub_at == sub.last_seq then
    return
  end
  sub.resub_at = sub.last_seq
  M.request("response/subscribe", { responseId = sub.id, afterSeq = sub.last_seq }, function(err)
    if err and err.code == -32011 and subs[sub.id] == sub then
      -- the response is gone (deleted): end it for its viewer
      subs[sub.id] = nil
      pcall(sub.on_event, { type = "error", code = "internal", message = tostring(err.message), responseId = sub.id })
      pcall(sub.on_event, { type = "done", status = "error", responseId = sub.id })
    end
  end)
end

--- Tests set this to drop events (a function returning false), to simulate a gap in the seqs.
M._filter = nil

local function on_event(event)
  if M._filter and M._filter(event) == false then
    return
  end
  local sub = subs[event.responseId]
  if not sub or type(event.seq) ~= "number" then
    return
  end
  -- a merged delta (PROTOCOL.md 6.1, 7.2) stands for the seqs `seq`..`seqEnd`: its chunk is all
  -- of theirs, so it is handled once and counts as its last seq
  local last = event.seq
  if type(event.seqEnd) == "number" and event.seqEnd > event.seq then
    last = event.seqEnd
  end
  if last <= sub.last_seq then
    return -- a duplicate (a resubscription overlapped what had arrived)
  end
  if event.seq > sub.last_seq + 1 then
    resubscribe(sub) -- a gap: fetch what is missing; this event comes again in order
    return
  end
  if event.seq <= sub.last_seq then
    -- partly handled already: its chunk cannot be split, so fetch the rest one seq at a time
    resubscribe(sub)
    return
  end
  sub.last_seq = last
  if event.type == "done" then
    subs[event.responseId] = nil
  end
  local ok, err = pcall(sub.on_event, event)
  if not ok then
    vim.notify("parley: " .. tostring(err), vim.log.levels.ERROR)
  end
end

local function on_notification(c, method, params)
  if c ~= conn or type(params) ~= "table" then
    return
  end
  if method == "response/event" then
    on_event(params)
  elseif method == "response/lagged" then
    local sub = subs[params.responseId]
    if sub then
      sub.resub_at = nil
      resubscribe(sub)
    end
  end
end

local schedule_reconnect

local function on_exit(c)
  if c.state == "closed" then
    return
  end
  local was_ready = c.state == "ready"
  c.state = "closed"
  if conn == c then
    conn = nil
    M.server = nil
  end
  local following = false
  for _, sub in pairs(subs) do
    sub.needs_resubscribe = true
    following = true
  end
  fail_all(c, M.make_error("disconnected", "the connection to the parley daemon closed"))
  emit_state()
  if following and not c.stopping then
    schedule_reconnect(was_ready)
  end
end

local function on_ready(c, result)
  c.state = "ready"
  M.server = result
  M.last_error = nil
  reconnect_tries = 0
  -- reattach the responses being followed, from the last seq each has shown
  for _, sub in pairs(subs) do
    if sub.needs_resubscribe then
      sub.needs_resubscribe = nil
      sub.resub_at = nil
      resubscribe(sub)
    end
  end
  if not M.models then -- the default model, for the winbar (asked before what waits)
    M.list_models(function()
      emit_state()
    end)
  end
  local queue = c.queue
  c.queue = {}
  for _, q in ipairs(queue) do
    send(c, q[1], q[2], q[3])
  end
  emit_state()
end

local APPROVE_CHOICES = { "Allow once", "Allow always", "Deny" }
local APPROVE_DECISIONS = { "allow_once", "allow_always", "deny" }

--- `tool/approve`: may the daemon run this MCP tool call? Asks with `vim.ui.select`. rpc runs a
--- server request in a coroutine, so an asynchronous picker is waited for; no choice is a deny.
---@param params table ToolApproveParams
---@return table ToolApproveResult
function M.approve(params)
  local hints = {}
  for key, value in pairs(params.annotations or {}) do
    if value == true then
      hints[#hints + 1] = key
    end
  end
  table.sort(hints)
  local args = params.arguments or {}
  local prompt = ("parley: run MCP tool %s: %s(%s)%s?"):format(
    tostring(params.server),
    tostring(params.name),
    next(args) == nil and "{}" or vim.json.encode(args),
    #hints > 0 and (" [" .. table.concat(hints, ", ") .. "]") or ""
  )
  local co, picked, done = coroutine.running(), nil, false
  vim.ui.select(APPROVE_CHOICES, { prompt = prompt, kind = "parley.tool_approve" }, function(_, index)
    picked, done = index, true
    if co and coroutine.status(co) == "suspended" then
      vim.schedule(function()
        coroutine.resume(co)
      end)
    end
  end)
  if not done and co then
    coroutine.yield()
  end
  return { decision = APPROVE_DECISIONS[picked] or "deny" }
end

local function open()
  local opts = config.options
  ---@type parley.Conn
  local c = { state = "connecting", queue = {}, pending = {}, target = M.target() }
  local dispatchers = {
    notification = function(method, params)
      if vim.in_fast_event() then -- (Neovim schedules it itself since 0.10; be sure)
        vim.schedule(function()
          on_notification(c, method, params)
        end)
      else
        on_notification(c, method, params)
      end
    end,
    server_request = function(method, params)
      if method == "tool/approve" and type(params) == "table" then
        return M.approve(params)
      end
      return nil, vim.lsp.rpc.rpc_response_error(-32601, "parley.nvim does not handle " .. tostring(method))
    end,
    on_exit = function()
      vim.schedule(function()
        on_exit(c)
      end)
    end,
    on_error = function(code, err)
      if code ~= vim.lsp.rpc.client_errors.NO_RESULT_CALLBACK_FOUND then
        require("vim.lsp.log").error("parley", code, err)
      end
    end,
  }
  local ok, rpc
  if opts.socket then
    local path = opts.socket == true and M.default_socket() or opts.socket
    if not uv.fs_stat(path) then
      return nil, ("no parley daemon listens on %s (run `parley serve`, or leave `socket` unset to use `parley stdio`)"):format(path)
    end
    ok, rpc = pcall(function()
      return vim.lsp.rpc.connect(path)(dispatchers)
    end)
  else
    if vim.fn.executable(opts.cmd[1]) ~= 1 then
      return nil, ("`%s` is not executable: install parley, or set `cmd` in require('parley').setup()"):format(opts.cmd[1])
    end
    ok, rpc = pcall(vim.lsp.rpc.start, opts.cmd, dispatchers, { env = opts.env })
  end
  if not ok then
    return nil, tostring(rpc)
  end
  c.rpc = rpc
  conn = c
  local answered = false
  send(c, "initialize", {
    protocolVersion = 1,
    clientInfo = { name = "parley.nvim", version = M.version },
  }, function(err, result)
    answered = true
    if c.state ~= "connecting" then
      return
    end
    if err then
      M.last_error = "initialize failed: " .. tostring(err.message)
      fail_all(c, err)
      c.stopping = true
      pcall(c.rpc.terminate)
      on_exit(c)
      return
    end
    on_ready(c, result)
  end)
  local timer = uv.new_timer()
  timer:start(opts.timeout, 0, function()
    timer:close()
    vim.schedule(function()
      if not answered and c.state == "connecting" then
        M.last_error = ("the daemon did not answer `initialize` within %d ms (%s)"):format(opts.timeout, c.target)
        c.stopping = true
        fail_all(c, M.make_error("timeout", M.last_error))
        pcall(c.rpc.terminate)
        on_exit(c)
      end
    end)
  end)
  emit_state()
  return c
end

--- The open connection, opening one if needed. Returns nil and why when that fails.
---@return parley.Conn?, string?
function M.ensure()
  if conn and conn.state ~= "closed" then
    return conn
  end
  local c, err = open()
  if not c then
    M.last_error = err
  end
  return c, err
end

schedule_reconnect = function(was_ready)
  reconnect_tries = reconnect_tries + 1
  if reconnect_tries > 5 then
    vim.notify("parley: lost the daemon; run the command again to reconnect", vim.log.levels.WARN)
    return
  end
  local delay = was_ready and 200 or 1000 * reconnect_tries
  vim.defer_fn(function()
    if conn then
      return
    end
    local c = M.ensure()
    if not c then
      schedule_reconnect(false)
    end
  end, delay)
end

--- Sends a request; cb(err, result) runs on the main loop. err is the JSON-RPC error
--- (`{code, message, data = {kind}}`), with kind "disconnected" or "timeout" for local failures.
---@param method string
---@param params table?
---@param cb? fun(err: table?, result: any)
function M.request(method, params, cb)
  cb = cb or function() end
  local c, why = M.ensure()
  if not c then
    vim.schedule(function()
      cb(M.make_error("disconnected", why or "no connection"), nil)
    end)
    return
  end
  if c.state == "ready" then
    send(c, method, params, cb)
  else
    table.insert(c.queue, { method, params, cb })
  end
end

--- The same, waiting for the answer (up to `timeout` ms). Returns result, err.
function M.request_sync(method, params, timeout)
  local done, res, e = false, nil, nil
  M.request(method, params, function(err, result)
    done, res, e = true, result, err
  end)
  vim.wait(timeout or config.options.timeout, function()
    return done
  end, 5)
  if not done then
    return nil, M.make_error("timeout", ("no answer to %s within %d ms"):format(method, timeout or config.options.timeout))
  end
  return res, e
end

--- Starts a response with `prompt` or `reply`: the connection is subscribed by the daemon, and
--- on_event gets each event in seq order, `done` last. cb(err, result) gets the answer.
function M.start_response(method, params, on_event, cb)
  M.request(method, params, function(err, result)
    if not err then
      subs[result.responseId] = { id = result.responseId, last_seq = 0, on_event = on_event }
    end
    cb(err, result)
  end)
end

--- Follows a response from any client: every event after `after_seq`, stored ones first, then
--- live ones, `done` last.
function M.subscribe(response_id, after_seq, on_event, cb)
  local sub = { id = response_id, last_seq = after_seq or 0, on_event = on_event }
  subs[response_id] = sub
  sub.resub_at = sub.last_seq
  M.request("response/subscribe", { responseId = response_id, afterSeq = sub.last_seq }, function(err, result)
    -- a dropped connection keeps the subscription: it is renewed on reconnecting
    if err and subs[response_id] == sub and not sub.needs_resubscribe then
      subs[response_id] = nil
    end
    if cb then
      cb(err, result)
    end
  end)
  return sub
end

--- Stops following a response (it keeps running in the daemon).
function M.unsubscribe(response_id)
  if not subs[response_id] then
    return
  end
  subs[response_id] = nil
  if conn and conn.state == "ready" then
    send(conn, "response/unsubscribe", { responseId = response_id }, function() end)
  end
end

--- The last seq handled for a followed response, or nil.
function M.last_seq(response_id)
  local sub = subs[response_id]
  return sub and sub.last_seq
end

--- Lists the models (cached in M.models); cb(err, models).
function M.list_models(cb)
  M.request("models/list", nil, function(err, result)
    if not err then
      M.models = result.models
    end
    if cb then
      cb(err, M.models)
    end
  end)
end

--- The id of the daemon's default model, if known.
function M.default_model()
  for _, m in ipairs(M.models or {}) do
    if m.default then
      return m.id
    end
  end
end

--- Closes the connection; responses keep running in the daemon.
function M.stop()
  local c = conn
  if not c then
    return
  end
  c.stopping = true
  pcall(c.rpc.terminate)
  on_exit(c)
end

--- Handles a notification as if the daemon had sent it (tests use it for `response/lagged`).
function M._inject(method, params)
  on_notification(conn, method, params)
end

--- Drops the connection as if it broke (tests use it to check reattaching).
function M._drop()
  local c = conn
  if c then
    pcall(c.rpc.terminate)
  end
end

return M
