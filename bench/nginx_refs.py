"""Reference nginx configs the generated edge config is measured against.

They run in the same `EdgeFixture` layout (certificates, ports, temp and log paths) as the
generated config, through the same `NginxProcess` of the live nginx harness.
"""

from __future__ import annotations

import os
import pwd

from tests.artifacts.edge.nginx_harness import EdgeFixture


def _main_context(fixture: EdgeFixture, servers: list[str]) -> str:
    root = fixture.root
    user = pwd.getpwuid(os.getuid()).pw_name
    lines = [
        f"user {user};",
        "worker_processes 1;",
        f"pid {root}/nginx.pid;",
        f"error_log {root}/logs/error.log warn;",
        "events { worker_connections 256; }",
        "http {",
        f"    access_log {root}/logs/access.log;",
        f"    client_body_temp_path {root}/temp/body;",
        f"    proxy_temp_path {root}/temp/proxy;",
        f"    fastcgi_temp_path {root}/temp/fastcgi;",
        f"    uwsgi_temp_path {root}/temp/uwsgi;",
        f"    scgi_temp_path {root}/temp/scgi;",
        *servers,
        # NginxProcess waits for both ports of the fixture.
        f"    server {{ listen 127.0.0.1:{fixture.http_port}; return 404; }}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _tls_server(fixture: EdgeFixture, body: list[str]) -> str:
    return "\n".join(
        [
            "    server {",
            f"        listen 127.0.0.1:{fixture.https_port} ssl;",
            f"        ssl_certificate {fixture.cert};",
            f"        ssl_certificate_key {fixture.key};",
            *body,
            "    }",
        ]
    )


def default_proxy_conf(fixture: EdgeFixture, upstream_port: int) -> str:
    """nginx's defaults around a bare `proxy_pass`: buffering on, HTTP/1.0, no keepalive."""
    body = [f"        location / {{ proxy_pass https://127.0.0.1:{upstream_port}; }}"]
    return _main_context(fixture, [_tls_server(fixture, body)])


def minimal_tls_proxy_conf(fixture: EdgeFixture, upstream_port: int) -> str:
    """The least a competent TLS reverse proxy needs: HTTP/1.1 and keepalive upstream.

    No auth, no rate limits, no JSON log, no upstream verification: the floor the generated
    config's extra work is measured against.
    """
    upstream = "\n".join(
        [
            "    upstream bench_upstream {",
            f"        server 127.0.0.1:{upstream_port};",
            "        keepalive 32;",
            "    }",
        ]
    )
    body = [
        "        location / {",
        "            proxy_pass https://bench_upstream;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "        }",
    ]
    return _main_context(fixture, [upstream, _tls_server(fixture, body)])


def static_upstream_conf(fixture: EdgeFixture) -> str:
    """A fast HTTPS upstream (nginx answering a fixed JSON body) so proxies are the bottleneck.

    The fixture's certificate must name the ingress (the generated config verifies it).
    """
    body = [
        "        access_log off;",
        "        keepalive_requests 100000;",
        "        default_type application/json;",
        "        location / { return 200 '{\"ok\":true}'; }",
    ]
    return _main_context(fixture, [_tls_server(fixture, body)])
