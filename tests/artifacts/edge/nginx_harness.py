"""Running the rendered edge nginx.conf for real: a temp prefix, free loopback ports, teardown.

`EdgeFixture` lays out everything one nginx instance needs under a temp dir (certificates
from a `TestPki`, key maps, webroot, temp/pid/log paths) and builds `NginxSettings` that
point there; `NginxProcess` runs nginx in the foreground (`daemon off`) and always stops it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from components.edge.nginx_conf import (
    ClientLimit,
    NginxSettings,
    render_api_keys_map,
    render_client_config,
    render_nginx_conf,
    render_upstream_keys_map,
)
from tests.fakes.upstream import TestPki

EDGE_NAME = "edge.test"
INGRESS_NAME = "ingress.test"


def nginx_binary() -> str:
    """Path of nginx, or skip: it is installed by scripts/install-system-tools.sh."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.skip("nginx is not installed (run scripts/install-system-tools.sh)")
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EdgeFixture:
    """Files and settings for one nginx instance under `root`."""

    def __init__(self, root: Path, pki: TestPki, upstream_port: int) -> None:
        self.root = root
        self.pki = pki
        self.upstream_port = upstream_port
        for sub in ("tls", "www/.well-known/acme-challenge", "temp", "logs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.cert, self.key = pki.write_server_files(root / "tls", "edge", [EDGE_NAME])
        self.ca = root / "tls" / "upstream-ca.pem"
        self.ca.write_bytes(pki.ca_pem)
        self.conf = root / "nginx.conf"
        self.clients: tuple[ClientLimit, ...] = ()
        self.https_port = free_port()
        self.http_port = free_port()

    def settings(
        self, clients: tuple[ClientLimit, ...], *, upstream_keys: bool = True, **overrides: object
    ) -> NginxSettings:
        """Settings pointing every path into `root`, bound to loopback, run as this user;
        `clients` are the ones `write` puts in the client files."""
        self.clients = clients
        base = NginxSettings(
            upstreams=(f"127.0.0.1:{self.upstream_port}",),
            upstream_sni=INGRESS_NAME,
            server_name=EDGE_NAME,
            listen_address="127.0.0.1",
            https_port=self.https_port,
            http_port=self.http_port,
            tls_certificate_path=str(self.cert),
            tls_key_path=str(self.key),
            upstream_trusted_ca_path=str(self.ca),
            keys_map_path=str(self.root / "api-keys.map"),
            client_http_path=str(self.root / "clients-http.conf"),
            client_limits_path=str(self.root / "clients-limits.conf"),
            upstream_keys_map_path=str(self.root / "upstream-keys.map") if upstream_keys else None,
            access_log_path=str(self.root / "logs" / "access.log"),
            error_log_path=str(self.root / "logs" / "error.log"),
            acme_webroot=str(self.root / "www"),
            pid_path=str(self.root / "nginx.pid"),
            temp_dir=str(self.root / "temp"),
            user=pwd.getpwuid(os.getuid()).pw_name,
            worker_processes=1,
            worker_connections=256,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def write(
        self,
        settings: NginxSettings,
        keys: Mapping[str, str],
        upstream_keys: Mapping[str, str] | None = None,
    ) -> None:
        """Write the conf, the client files and the key maps the way the instance's
        scripts would."""
        self.conf.write_text(render_nginx_conf(settings))
        self.write_clients(settings, self.clients)
        self.write_keys(settings, keys, upstream_keys)

    def write_clients(self, settings: NginxSettings, clients: tuple[ClientLimit, ...]) -> None:
        """(Re)write the client files (who may in, each client's limits)."""
        files = render_client_config(
            clients, anon_requests_per_second=settings.anon_requests_per_second
        )
        Path(settings.client_http_path).write_text(files.http)
        Path(settings.client_limits_path).write_text(files.location)
        self.clients = clients

    def write_keys(
        self,
        settings: NginxSettings,
        keys: Mapping[str, str],
        upstream_keys: Mapping[str, str] | None = None,
    ) -> None:
        """(Re)write the key map files."""
        Path(settings.keys_map_path).write_text(render_api_keys_map(keys))
        if settings.upstream_keys_map_path is not None:
            Path(settings.upstream_keys_map_path).write_text(
                render_upstream_keys_map(upstream_keys or {})
            )

    def nginx_args(self) -> list[str]:
        """`-p/-c/-e` arguments addressing this instance."""
        return [
            nginx_binary(),
            "-p",
            str(self.root),
            "-c",
            str(self.conf),
            "-e",
            str(self.root / "logs" / "startup.log"),
        ]

    def test_config(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the written config."""
        return subprocess.run(
            [*self.nginx_args(), "-t"], capture_output=True, text=True, timeout=30, check=False
        )

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context trusting the test CA."""
        context = ssl.create_default_context(cadata=self.pki.ca_pem.decode())
        return context

    def connection(
        self, source_address: tuple[str, int] | None = None
    ) -> http.client.HTTPSConnection:
        """A new HTTPS connection to the edge (HTTP/1.1), optionally from another loopback address."""
        return http.client.HTTPSConnection(
            "127.0.0.1",
            self.https_port,
            context=self.client_context(),
            timeout=10,
            source_address=source_address,
        )


class NginxProcess:
    """nginx in the foreground on a fixture's config; stopped (then killed) on exit."""

    def __init__(self, fixture: EdgeFixture) -> None:
        self.fixture = fixture
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait (at most 10 s) until both ports accept connections."""
        self._process = subprocess.Popen(
            [*self.fixture.nginx_args(), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        for port in (self.fixture.https_port, self.fixture.http_port):
            while True:
                if self._process.poll() is not None:
                    stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                    raise RuntimeError(f"nginx exited at start: {stderr}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)

    def worker_pids(self) -> set[int]:
        """PIDs of the master's current children (its workers)."""
        assert self._process is not None
        pid = self._process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {int(child) for child in children}

    def reload(self) -> None:
        """`nginx -s reload`, then wait (at most 10 s) until the old workers are gone.

        Until an old worker has handled its shutdown signal it may still accept a new
        connection and answer it with the old configuration.
        """
        old = self.worker_pids()
        subprocess.run(
            [*self.fixture.nginx_args(), "-s", "reload"],
            check=True,
            timeout=10,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while old & self.worker_pids():
            if time.monotonic() > deadline:
                raise TimeoutError(f"old nginx workers {old} still running after reload")
            time.sleep(0.02)

    def stop(self) -> None:
        """Fast shutdown (SIGTERM), then SIGKILL after 5 s."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        finally:
            if process.stderr is not None:
                process.stderr.close()


@contextlib.contextmanager
def running(fixture: EdgeFixture) -> Iterator[NginxProcess]:
    """nginx running on `fixture` for the duration of the block."""
    process = NginxProcess(fixture)
    try:
        process.start()
        yield process
    finally:
        process.stop()
