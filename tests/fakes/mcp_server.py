"""A fake MCP server on loopback: the `mcp` SDK's own server over streamable HTTP.

    .venv-litellm/bin/python tests/fakes/mcp_server.py --port N --record FILE --name NAME

Runs with the LiteLLM venv's interpreter, whose `mcp` package is the one the pinned
LiteLLM depends on (requirements-litellm.txt), so the gateway and this server speak the
same protocol version (`tests/mcp_fake.py` starts it). Two tools: `echo` (its text,
prefixed with the server's name) and `add`. Every HTTP request it gets is appended to FILE
as one JSON line (method, path, headers, JSON-RPC method). Standalone: it imports nothing
from the project.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _recording(app: Any, record: Path) -> Any:
    """The ASGI app, writing down each HTTP request (and its JSON-RPC method) first."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            rpc = json.loads(body).get("method") if body else None
        except (ValueError, AttributeError):
            rpc = None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        line = {"method": scope["method"], "path": scope["path"], "headers": headers, "rpc": rpc}
        with record.open("a") as sink:
            sink.write(json.dumps(line) + "\n")
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return wrapped


def main() -> None:
    """Serve until terminated (run with the LiteLLM venv's interpreter)."""
    import uvicorn
    from mcp.server.fastmcp import FastMCP

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--name", default="fake")
    args = parser.parse_args()
    server = FastMCP(args.name, host="127.0.0.1", port=args.port, stateless_http=True)

    @server.tool()
    def echo(text: str) -> str:
        """Return the text, prefixed with this server's name."""
        return f"{args.name}: {text}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    app = _recording(server.streamable_http_app(), args.record)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
