"""A throwaway Redis on loopback: the state the gateway's replicas share on prod.

Debian's `redis-server` (installed by `scripts/install-system-tools.sh`) on a free
127.0.0.1 port, password-protected as the cluster's Redis is, nothing persisted. The
cluster runs the Redis image pinned in `components/versions.py`; LiteLLM uses only
commands both speak (GET/SET/MGET with TTLs, INCRBY).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.artifacts.edge.nginx_harness import free_port
from tests.support import stop_process

START_LIMIT_SECONDS = 20.0


@dataclass(frozen=True)
class RedisServer:
    """Where it listens and the password it asks for."""

    port: int
    password: str

    def env(self) -> dict[str, str]:
        """What the gateway's config reads (`os.environ/REDIS_*`)."""
        return {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.port),
            "REDIS_PASSWORD": self.password,
        }


def redis_available() -> str | None:
    """Why Redis cannot run here, or None when it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is absent: run scripts/install-system-tools.sh"
    return None


def _answers_ping(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            return b"+PONG" in connection.recv(256)
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(directory: Path, password: str) -> Iterator[RedisServer]:
    """Redis on a free loopback port until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        "redis-server",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--requirepass", password,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
    ]  # fmt: skip
    log = directory / "redis.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_LIMIT_SECONDS
        while not _answers_ping(port, password):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield RedisServer(port=port, password=password)
    finally:
        stop_process(process)
