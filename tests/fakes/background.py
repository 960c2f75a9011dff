"""Serving a fake's HTTP server from a background thread, as a context manager."""

from __future__ import annotations

import threading
from socketserver import BaseServer
from types import TracebackType
from typing import Self


class BackgroundServer:
    """Runs `server` in a daemon thread between `start()` and `stop()` (or `with`)."""

    def __init__(self, server: BaseServer) -> None:
        self._background = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> Self:
        """Serve in the background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; waits at most 5 s for the thread."""
        self._background.shutdown()
        self._background.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
