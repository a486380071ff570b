--- `:checkhealth parley`: Neovim, how the daemon is reached, the daemon itself, its models.
local M = {}

function M.check()
  local health = vim.health
  local config = require("parley.config")
  local client = require("parley.client")
  local opts = config.options

  health.start("parley: Neovim")
  if vim.fn.has("nvim-0.10") == 1 then
    local v = vim.version()
    health.ok(("Neovim %d.%d.%d"):format(v.major, v.minor, v.patch))
  else
    health.error("Neovim 0.10 or later is needed")
  end

  health.start("parley: daemon")
  if opts.socket then
    local path = opts.socket == true and client.default_socket() or opts.socket
    if vim.uv.fs_stat(path) then
      health.ok("socket found: " .. path)
    else
      health.error("no socket at " .. path, {
        "start the daemon with `parley serve`",
        "or leave `socket` unset so that the plugin runs `parley stdio`, which starts it",
      })
      return
    end
  else
    local exe = vim.fn.exepath(opts.cmd[1])
    if exe == "" then
      health.error(("`%s` not found"):format(opts.cmd[1]), {
        "install parley (`pip install parleyd`) and put it on PATH",
        "or set `cmd` in require('parley').setup({ cmd = { '/path/to/parley', 'stdio' } })",
      })
      return
    end
    health.ok(("command: %s (%s)"):format(table.concat(opts.cmd, " "), exe))
  end

  local status, err = client.request_sync("daemon/status", nil, opts.timeout)
  if err or not status then
    health.error("cannot reach the daemon: " .. tostring(err and err.message or client.last_error), {
      "run `parley status` in a shell to see whether a daemon runs",
      "the daemon's log is parleyd.log beside its socket",
    })
    return
  end
  local server = client.server or {}
  health.ok(("connected over %s"):format(client.target()))
  health.ok(("daemon found: %s %s, pid %d, up %.1f s"):format(
    server.serverInfo and server.serverInfo.name or "parleyd",
    status.version,
    status.pid,
    status.uptimeS or 0
  ))
  health.info("protocol version: " .. tostring(server.protocolVersion))
  health.info("socket: " .. tostring(status.socket))
  health.info(("%d connection%s, %d running response%s"):format(
    status.connections,
    status.connections == 1 and "" or "s",
    status.runningResponses,
    status.runningResponses == 1 and "" or "s"
  ))

  health.start("parley: models")
  local result, merr = client.request_sync("models/list", nil, opts.timeout)
  if merr or not result then
    health.error("models/list failed: " .. tostring(merr and merr.message))
    return
  end
  if #result.models == 0 then
    health.warn("the daemon has no model")
  end
  for _, m in ipairs(result.models) do
    local caps = {}
    local c = m.capabilities or {}
    if c.streaming ~= false then
      caps[#caps + 1] = "streaming"
    end
    for _, k in ipairs({ "tools", "reasoning" }) do
      if c[k] then
        caps[#caps + 1] = k
      end
    end
    health.ok(("%s (%s)%s: %s"):format(m.id, m.provider, m.default and ", the default" or "", table.concat(caps, ", ")))
  end
  if opts.model then
    local found = false
    for _, m in ipairs(result.models) do
      if m.id == opts.model or vim.tbl_contains(m.aliases or {}, opts.model) then
        found = true
      end
    end
    if found then
      health.ok("configured model: " .. opts.model)
    else
      health.warn(("configured model '%s' is not among the daemon's models"):format(opts.model))
    end
  end
end

return M
