"""Starting and reading a fake MCP server (tests/fakes/mcp_server.py) for the tests."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support import ROOT, stop_process

PYTHON = ROOT / ".venv-litellm" / "bin" / "python"
SERVER = ROOT / "tests" / "fakes" / "mcp_server.py"
START_LIMIT_SECONDS = 60.0


class McpFake:
    """One fake MCP server process on a free loopback port."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.record = root / f"mcp-{name}.jsonl"
        self.log = root / f"mcp-{name}.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's streamable-HTTP endpoint."""
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.record.write_text("")
        command = [str(PYTHON), str(SERVER), "--port", str(self.port), "--record", str(self.record)]
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [*command, "--name", self.name], stdout=sink, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_LIMIT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fake MCP server exited:\n{self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"fake MCP server not up in {START_LIMIT_SECONDS} s")

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def requests(self) -> list[dict[str, Any]]:
        """Every request so far: method, path, headers (lower-case names), rpc method."""
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def tool_calls(self) -> list[dict[str, Any]]:
        """The `tools/call` requests so far."""
        return [r for r in self.requests() if r.get("rpc") == "tools/call"]
