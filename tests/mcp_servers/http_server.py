"""A Streamable HTTP MCP server for the tests, written with the ``mcp`` SDK: ``python http_server.py PORT``.

It needs the header ``X-Parley-Test: <its token>`` (argv[2]) on every request: the daemon
sends what mcp.json's ``headers`` say.
"""

import asyncio
import sys

from mcp.server.mcpserver import MCPServer

port, token = int(sys.argv[1]), sys.argv[2]
server = MCPServer("parley-test-http")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then say so."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


app = server.streamable_http_app()


async def check_header(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http" and dict(scope["headers"]).get(b"x-parley-test") != token.encode():
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"missing X-Parley-Test"})
        return
    await app(scope, receive, send)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(check_header, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
