"""MCP servers hosted by the daemon: configured once per user (mcp.json), started once, offered to
every client's prompts that name them (``mcpServers``), each call approved by the client that asked.

``_config`` reads mcp.json; ``_hub`` keeps one ``_server`` owner task per server in step with it;
``_naming`` makes the names models see; ``_calls`` runs one response's calls, after
``_approval``; ``_results`` turns the server's answers into tool results. The ``mcp`` SDK (the
``[mcp]`` extra) is imported only when a server is started.
"""

from ._calls import McpTools
from ._hub import McpHub

__all__ = ["McpHub", "McpTools"]
