-- parley.nvim: the commands exist from startup; the plugin's modules load on first use.
if vim.g.loaded_parley or vim.fn.has("nvim-0.10") ~= 1 then
  return
end
vim.g.loaded_parley = true

require("parley")._create_commands()
