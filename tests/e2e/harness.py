"""End-to-end harness on loopback: the real nginx with the rendered edge config in front of
an upstream, TLS from a throwaway CA, the rendered key set; clients and load helpers.

`edge_chain` starts the edge (reusing the live nginx harness of the edge tests) in front of
any HTTPS upstream port whose certificate names `INGRESS_NAME`; `fake_upstream_chain` puts
the recording fake upstream (`tests/fakes/upstream.py`) behind it. Everything binds to
127.0.0.1 on ports picked at run time and is stopped on exit, also when a test fails.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.edge.nginx_conf import ClientLimit, NginxSettings
from tests.artifacts.edge.nginx_harness import (
    INGRESS_NAME,
    EdgeFixture,
    NginxProcess,
    nginx_binary,
    running,
)
from tests.fakes.upstream import FakeUpstream, TestPki


@dataclass(frozen=True)
class Answer:
    """One response as a client saw it."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class EdgeChain:
    """The running edge: its files, nginx process and settings, and client helpers."""

    fixture: EdgeFixture
    nginx: NginxProcess
    settings: NginxSettings
    keys: dict[str, str]
    stale_retries: list[str] = field(default_factory=list)
    """Requests retried because the server had closed their idle keep-alive connection."""
    _local: threading.local = field(default_factory=threading.local)
    _kept: list[http.client.HTTPSConnection] = field(default_factory=list)
    _kept_lock: threading.Lock = field(default_factory=threading.Lock)

    def connection(self, timeout: float = 15) -> http.client.HTTPSConnection:
        """A new HTTPS connection to the edge."""
        conn = self.fixture.connection()
        conn.timeout = timeout
        return conn

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        reuse: bool = False,
    ) -> Answer:
        """One request; `reuse` keeps one keep-alive connection per calling thread."""
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        conn = getattr(self._local, "conn", None) if reuse else None
        reused = conn is not None
        if conn is None:
            conn = self.connection()
        start = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            payload = response.read()
        except (ConnectionError, ssl.SSLEOFError, http.client.RemoteDisconnected) as error:
            conn.close()
            self._local.conn = None
            if not reused:
                raise
            # The server closed this idle keep-alive connection (e.g. an nginx worker leaving
            # on reload) as the request went out: nothing was processed, so retry once on a
            # new connection, as HTTP clients do with a stale pooled connection.
            with self._kept_lock:
                self.stale_retries.append(repr(error))
            return self.request(method, path, key=key, body=body, headers=headers, reuse=reuse)
        except BaseException:
            conn.close()
            self._local.conn = None
            raise
        answer = Answer(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            payload,
            time.monotonic() - start,
        )
        if reuse and not response.will_close:
            if getattr(self._local, "conn", None) is not conn:
                with self._kept_lock:
                    self._kept.append(conn)
            self._local.conn = conn
        else:
            conn.close()
            if reuse:
                self._local.conn = None
        return answer

    def close_kept(self) -> None:
        """Close the keep-alive connections `request(reuse=True)` kept (any thread's)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for conn in kept:
            conn.close()

    def access_log(self) -> list[dict[str, Any]]:
        """Records of the JSON access log so far."""
        path = Path(self.settings.access_log_path)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def wait_for_log(
        self, predicate: Callable[[list[dict[str, Any]]], bool]
    ) -> list[dict[str, Any]]:
        """The access log once `predicate` holds (nginx writes it per request; 5 s at most)."""
        deadline = time.monotonic() + 5
        records = self.access_log()
        while not predicate(records) and time.monotonic() < deadline:
            time.sleep(0.05)
            records = self.access_log()
        return records

    def replace_keys(self, keys: Mapping[str, str]) -> None:
        """Write a new key set and reload nginx gracefully (returns once old workers left)."""
        self.keys = dict(keys)
        self.fixture.write_keys(self.settings, self.keys)
        self.nginx.reload()


@contextlib.contextmanager
def edge_chain(
    root: Path,
    pki: TestPki,
    upstream_port: int,
    clients: Sequence[ClientLimit],
    keys: Mapping[str, str],
    *,
    upstream_keys: Mapping[str, str] | None = None,
    **overrides: object,
) -> Iterator[EdgeChain]:
    """The rendered edge config running in nginx in front of `upstream_port`."""
    nginx_binary()
    fixture = EdgeFixture(root, pki, upstream_port)
    settings = fixture.settings(
        tuple(clients), upstream_keys=upstream_keys is not None, **overrides
    )
    fixture.write(settings, keys, upstream_keys)
    with running(fixture) as nginx:
        chain = EdgeChain(fixture, nginx, settings, dict(keys))
        try:
            yield chain
        finally:
            chain.close_kept()


@contextlib.contextmanager
def fake_upstream_chain(
    root: Path,
    clients: Sequence[ClientLimit],
    keys: Mapping[str, str],
    **overrides: object,
) -> Iterator[tuple[EdgeChain, FakeUpstream]]:
    """The edge in front of the recording fake upstream (HTTPS, certificate from the CA)."""
    pki = TestPki()
    (root / "upstream").mkdir(parents=True, exist_ok=True)
    cert, key = pki.write_server_files(root / "upstream", "ingress", [INGRESS_NAME])
    with (
        FakeUpstream(cert_file=cert, key_file=key) as upstream,
        edge_chain(
            root / "edge", pki, upstream.port, clients, keys, upstream_keys=None, **overrides
        ) as chain,
    ):
        yield chain, upstream


def steady(
    calls: Sequence[Callable[[], Answer]],
    *,
    rate: float,
    workers: int,
    deadline_s: float,
) -> list[Answer | BaseException]:
    """Run `calls` at a steady `rate` per second (call i starts at i/rate), concurrently.

    Returns each call's answer or the exception it raised, in call order; every call is
    started within `deadline_s` or the run fails.
    """
    start = time.monotonic() + 0.05
    if len(calls) / rate > deadline_s:
        raise ValueError(f"{len(calls)} calls at {rate}/s do not fit in {deadline_s} s")

    def scheduled(index: int) -> Answer | BaseException:
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            return calls[index]()
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(scheduled, index) for index in range(len(calls))]
        return [future.result(timeout=deadline_s + 30) for future in futures]
