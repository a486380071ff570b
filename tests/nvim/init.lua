-- The init file of the Neovim the tests drive: the plugin from the working tree, configured
-- from $PARLEY_NVIM_SETUP (JSON), and vim.notify recorded in _G.parley_notes.
vim.opt.runtimepath:prepend(assert(os.getenv("PARLEY_NVIM_RTP")))
vim.o.swapfile = false
vim.o.shadafile = "NONE"

_G.parley_notes = {}
vim.notify = function(msg, level)
  table.insert(_G.parley_notes, { msg = tostring(msg), level = level or vim.log.levels.INFO })
end

require("parley").setup(vim.json.decode(os.getenv("PARLEY_NVIM_SETUP") or "{}"))
