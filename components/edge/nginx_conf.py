"""The edge gateway's nginx.conf and the key map files it includes, as pure functions.

`render_nginx_conf` returns a complete main-context nginx.conf (it replaces
/etc/nginx/nginx.conf on the instance) for nginx 1.22 (Debian 12) and 1.24 (Ubuntu 24.04):

- HTTPS on `https_port` with TLS 1.2/1.3 and Mozilla's "intermediate" cipher list
  (server-side TLS guidelines 5.7), session tickets off, HSTS, optional HTTP/2 and
  optional OCSP stapling;
- only the client API routes of `routes` (components/edge/api_surface.py), each one method
  and one exact path matched on the raw request target (`$request_uri`, before nginx
  decodes `%xx`, merges `//` or resolves `..`), and sent upstream as those same bytes:
  everything else gets a JSON 404 and never reaches the upstream; a query string other than
  `ALLOWED_QUERY` gets a JSON 400 before any log line or limit holds it;
- `Authorization: Bearer <key>` compared exactly (case-sensitive) with the keys of an
  included map file (`keys_map_path`, written on the instance by the key refresh script):
  each entry is an anchored regular expression, since nginx compares a map's plain string
  keys case-insensitively; a missing or unknown key gets 401 with a JSON body and
  `WWW-Authenticate: Bearer`;
- one `limit_req` zone per client (its own rate and burst, `nodelay`) and one zone per
  source address for requests without a valid key; over the limit: 429, JSON, `Retry-After`.
  Everything that names a client (who may in at all, each client's zone and limit, its
  `Retry-After`) lives in two included files (`render_client_config`), which the key
  refresh script writes from SSM like the key maps: adding, removing or re-limiting a
  client reloads nginx and leaves this file, and the instance's user-data, unchanged;
- `client_max_body_size` with a JSON 413;
- proxying to the cluster ingress over HTTPS (through the WireGuard tunnel) with upstream
  certificate verification, keepalive, no buffering or caching (server-sent events flow
  event by event whatever `X-Accel-Buffering` the upstream sends), long timeouts; request
  headers by allowlist (`FORWARDED_REQUEST_HEADERS` and the edge's own): the client's
  `Authorization` is never forwarded, the upstream gets `X-Client-Name` and, when
  `upstream_keys_map_path` is set, the client's upstream key from a second map; LiteLLM's
  internal response headers are cleared (headers-more, `HIDDEN_RESPONSE_HEADER_PATTERNS`);
- a JSON access log that names the client and never holds a key or a query string;
  `limit_req` rejections go to the access log only (the error log's line would quote the
  request line);
- `/healthz` answered by nginx itself;
- plain HTTP on `http_port` serving only the ACME HTTP-01 webroot and redirecting the rest.

The key checks run in nginx's access phase (`auth_request` to an internal location), after
the preaccess phase where `limit_req` runs, so requests with a bad key are rate limited per
source address before they are refused; a plain `if ... return 401` would run earlier, in
the rewrite phase, and bypass the limit.

The route and query checks run in the rewrite phase, before both: a request that could
never be proxied costs a constant answer and holds no limit slot.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from components.edge.api_surface import (
    ALLOWED_QUERY,
    API_ROUTES,
    HIDDEN_RESPONSE_HEADER_PATTERNS,
    ApiRoute,
    forwarded_headers,
)

# Mozilla server-side TLS guidelines 5.7, "intermediate": TLS 1.2 suites (TLS 1.3 suites are
# OpenSSL's defaults, which are the three the guideline lists). The DHE suites are only
# negotiated when an `ssl_dhparam` is configured; without one nginx offers ECDHE only.
MOZILLA_INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    )
)
MOZILLA_INTERMEDIATE_CURVES = "X25519:prime256v1:secp384r1"
TLS_PROTOCOLS = "TLSv1.2 TLSv1.3"

CLIENT_NAME_HEADER = "X-Client-Name"
HEALTH_PATH = "/healthz"

CLIENT_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""A client name: a DNS label (it names nginx zones and variables)."""
_CLIENT_NAME = re.compile(CLIENT_NAME_PATTERN)
# Keys go into a quoted nginx string: no quotes, spaces, `$`, `;`, `\` or braces possible.
# At most 128 characters, so "Bearer <key>" fits the map hash bucket below.
API_KEY_PATTERN = "^[A-Za-z0-9._~+/=-]{16,128}$"
_API_KEY = re.compile(API_KEY_PATTERN)
MAP_HASH_BUCKET_SIZE = 256
_HOSTNAME = re.compile(
    r"^([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$"
)
_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
_PATH = re.compile(r"^/[A-Za-z0-9._/@+-]*$")
_ROUTE_PATH = re.compile(r"^(/[a-z0-9_-]+)+/?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

_JSON_401 = (
    '{"error":{"message":"missing or invalid API key: send Authorization: Bearer <key>",'
    '"type":"invalid_request_error","code":"invalid_api_key"}}'
)
_JSON_429 = (
    '{"error":{"message":"rate limit exceeded, retry later",'
    '"type":"rate_limit_error","code":"rate_limit_exceeded"}}'
)
_JSON_413 = (
    '{"error":{"message":"request body too large",'
    '"type":"invalid_request_error","code":"request_too_large"}}'
)
_JSON_502 = (
    '{"error":{"message":"upstream unavailable","type":"upstream_error","code":"bad_gateway"}}'
)
_JSON_504 = (
    '{"error":{"message":"upstream timed out","type":"upstream_error","code":"gateway_timeout"}}'
)
_JSON_404 = (
    '{"error":{"message":"no such route at this gateway",'
    '"type":"invalid_request_error","code":"not_found"}}'
)
_JSON_400_QUERY = (
    '{"error":{"message":"query parameters are not accepted; send the key as '
    'Authorization: Bearer <key> and parameters in the body",'
    '"type":"invalid_request_error","code":"query_not_allowed"}}'
)
_JSON_HEALTH = '{"status":"ok"}'
HEADERS_MORE_MODULE = "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so"
"""The headers-more filter module (Debian/Ubuntu `libnginx-mod-http-headers-more-filter`)."""


def _fail(field_name: str, value: object, rule: str) -> NoReturn:
    raise ValueError(f"{field_name}: {rule} (got {value!r})")


def _check_path(field_name: str, value: str) -> None:
    if not _PATH.match(value) or "//" in value or "/../" in f"{value}/":
        _fail(field_name, value, "must be an absolute path of [A-Za-z0-9._/@+-] characters")


def _check_host(field_name: str, value: str) -> None:
    ipv4 = _IPV4.match(value)
    if ipv4 is not None:
        if any(int(part) > 255 for part in ipv4.groups()):
            _fail(field_name, value, "is not a valid IPv4 address")
        return
    if len(value) > 253 or not _HOSTNAME.match(value):
        _fail(field_name, value, "must be a DNS name or an IPv4 address")


def _check_port(field_name: str, value: int) -> None:
    if not 1 <= value <= 65535:
        _fail(field_name, value, "must be a port between 1 and 65535")


def nginx_rate(requests_per_second: float) -> str:
    """The nginx `rate=` value for a rate: `Nr/s` when whole, else `Nr/m` (whole per minute)."""
    if requests_per_second == int(requests_per_second):
        return f"{int(requests_per_second)}r/s"
    per_minute = requests_per_second * 60
    if abs(per_minute - round(per_minute)) > 1e-9:
        raise ValueError(
            f"rate {requests_per_second} r/s is not a whole number of requests per second "
            "or per minute (nginx cannot express it)"
        )
    return f"{round(per_minute)}r/m"


def retry_after_seconds(requests_per_second: float) -> int:
    """Seconds until one more request fits once the burst is spent: one token's time."""
    return max(1, math.ceil(1 / requests_per_second))


def _check_rate(field_name: str, value: float) -> None:
    if not value > 0 or value > 100_000:
        _fail(field_name, value, "must be above 0 and at most 100000 requests per second")
    try:
        nginx_rate(value)
    except ValueError as exc:
        _fail(field_name, value, str(exc))


@dataclass(frozen=True, kw_only=True)
class ClientLimit:
    """The rate limit of one named API client, enforced on its key at the edge."""

    name: str
    """Client name (DNS label); appears in logs and in `X-Client-Name` upstream."""
    requests_per_second: float
    """Sustained rate; whole per second or per minute (e.g. 0.5 = 30 r/m)."""
    burst: int = 0
    """Requests above the rate served at once (`nodelay`) before 429s start."""

    def __post_init__(self) -> None:
        if not _CLIENT_NAME.match(self.name):
            _fail("ClientLimit.name", self.name, "must be a DNS label ([a-z0-9-], 1-63 chars)")
        _check_rate(f"clients[{self.name}].requests_per_second", self.requests_per_second)
        if not 0 <= self.burst <= 100_000:
            _fail(f"clients[{self.name}].burst", self.burst, "must be between 0 and 100000")

    @property
    def variable(self) -> str:
        """The nginx variable holding this client's rate-limit key (empty for others)."""
        return "$edge_rl_" + self.name.replace("-", "_")

    @property
    def zone(self) -> str:
        """The nginx `limit_req_zone` name of this client."""
        return f"edge_client_{self.name}"


@dataclass(frozen=True, kw_only=True)
class NginxSettings:
    """Everything the edge nginx.conf depends on; defaults are the instance's paths."""

    upstreams: tuple[str, ...]
    """`host:port` of the cluster ingress (HTTPS) through the tunnel; one or more."""
    upstream_sni: str
    """Name sent as SNI and `Host` upstream, and verified in the ingress certificate."""
    routes: tuple[ApiRoute, ...] = tuple(API_ROUTES.values())
    """The client API routes proxied (`api_surface.routes`); everything else is a 404."""
    server_name: str | None = None
    """Public DNS name; None answers any name (self-signed dev setup)."""
    listen_address: str | None = None
    """IPv4 address to bind; None binds every address (the instance), tests use loopback."""
    https_port: int = 443
    http_port: int = 80
    tls_certificate_path: str = "/etc/nginx/edge/tls/fullchain.pem"
    """Certificate chain (leaf first); a symlink to certbot's when a domain is set."""
    tls_key_path: str = "/etc/nginx/edge/tls/privkey.pem"
    upstream_verify: bool = True
    """Verify the ingress certificate against `upstream_trusted_ca_path` and `upstream_sni`."""
    upstream_trusted_ca_path: str | None = "/etc/nginx/edge/upstream-ca.pem"
    """The internal CA's root certificate (PEM); required when `upstream_verify`."""
    upstream_keepalive: int = 32
    """Idle keepalive connections kept to the upstream per worker."""
    anon_requests_per_second: float = 2.0
    """Rate per source address of requests without a valid key (then 401 or 429)."""
    anon_burst: int = 5
    max_body_size_bytes: int = 10 * 1024 * 1024
    """Largest request body; above it 413 (JSON)."""
    read_timeout_seconds: int = 900
    """Upstream read/send and client send timeout; long generations need >= 600."""
    connect_timeout_seconds: int = 5
    client_header_timeout_seconds: int = 30
    """A client that has not sent its whole request header by then gets 408 (slowloris)."""
    client_body_timeout_seconds: int = 60
    """Longest pause between two reads of a request body."""
    client_http_path: str = "/etc/nginx/edge/clients-http.conf"
    """Included in `http`: the clients' allowlist, zones and `Retry-After` (see
    `render_client_config`)."""
    client_limits_path: str = "/etc/nginx/edge/clients-limits.conf"
    """Included in the API location: one `limit_req` per client."""
    keys_map_path: str = "/etc/nginx/edge/api-keys.map"
    """Included map file: `"Bearer <key>" "<client>";` lines (see render_api_keys_map)."""
    upstream_keys_map_path: str | None = None
    """Included map file `"<client>" "Bearer <upstream key>";`; None sends no Authorization."""
    access_log_path: str = "/var/log/nginx/edge-access.log"
    error_log_path: str = "/var/log/nginx/edge-error.log"
    acme_webroot: str = "/var/www/acme"
    http2: bool = True
    ocsp_stapling: bool = False
    """Only with a CA-issued certificate whose chain has an OCSP responder; off for self-signed."""
    ocsp_trusted_chain_path: str | None = None
    """Issuer chain used to verify stapled responses (certbot's chain.pem)."""
    resolver: str | None = None
    """DNS resolver nginx uses to reach the OCSP responder (on EC2: 169.254.169.253)."""
    hsts_max_age_seconds: int = 63_072_000
    pid_path: str = "/run/nginx.pid"
    temp_dir: str = "/var/lib/nginx"
    """Parent of the body/proxy/fastcgi/uwsgi/scgi temp dirs (Debian/Ubuntu layout)."""
    user: str | None = "www-data"
    """Worker user (used only when the master runs as root); None keeps nginx's default."""
    worker_processes: int | None = None
    """None means `auto` (one per core)."""
    worker_connections: int = 4096
    headers_more_module_path: str = HEADERS_MORE_MODULE
    """The headers-more module, loaded to clear response headers by name pattern."""

    def __post_init__(self) -> None:
        if not self.upstreams:
            _fail("upstreams", self.upstreams, "needs at least one host:port")
        for upstream in self.upstreams:
            host, sep, port = upstream.rpartition(":")
            if not sep or not port.isdigit():
                _fail("upstreams", upstream, "each entry must be host:port")
            _check_host("upstreams", host)
            _check_port("upstreams", int(port))
        if len(set(self.upstreams)) != len(self.upstreams):
            _fail("upstreams", self.upstreams, "must not repeat an entry")
        _check_host("upstream_sni", self.upstream_sni)
        if not self.routes:
            _fail("routes", self.routes, "needs at least one API route")
        route_paths = [(route.method, route.path) for route in self.routes]
        if len(set(route_paths)) != len(route_paths):
            _fail("routes", route_paths, "must not repeat a route")
        for route in self.routes:
            if route.method not in ("GET", "POST") or not _ROUTE_PATH.match(route.path):
                _fail("routes", route, "each is GET or POST on a path of [a-z0-9/_-]")
        if self.server_name is not None and (
            _IPV4.match(self.server_name) or not _HOSTNAME.match(self.server_name)
        ):
            _fail("server_name", self.server_name, "must be a DNS name")
        if self.listen_address is not None:
            if not _IPV4.match(self.listen_address):
                _fail("listen_address", self.listen_address, "must be an IPv4 address")
            _check_host("listen_address", self.listen_address)
        _check_port("https_port", self.https_port)
        _check_port("http_port", self.http_port)
        if self.https_port == self.http_port:
            _fail("http_port", self.http_port, "must differ from https_port")
        paths = {
            "tls_certificate_path": self.tls_certificate_path,
            "tls_key_path": self.tls_key_path,
            "keys_map_path": self.keys_map_path,
            "client_http_path": self.client_http_path,
            "client_limits_path": self.client_limits_path,
            "access_log_path": self.access_log_path,
            "error_log_path": self.error_log_path,
            "acme_webroot": self.acme_webroot,
            "pid_path": self.pid_path,
            "temp_dir": self.temp_dir,
            "headers_more_module_path": self.headers_more_module_path,
        }
        optional_paths = {
            "upstream_trusted_ca_path": self.upstream_trusted_ca_path,
            "upstream_keys_map_path": self.upstream_keys_map_path,
            "ocsp_trusted_chain_path": self.ocsp_trusted_chain_path,
        }
        for name, path in paths.items():
            _check_path(name, path)
        for name, optional in optional_paths.items():
            if optional is not None:
                _check_path(name, optional)
        if self.upstream_verify and self.upstream_trusted_ca_path is None:
            _fail(
                "upstream_trusted_ca_path",
                None,
                "is required while upstream_verify is on (or set upstream_verify=False)",
            )
        if self.upstream_keys_map_path == self.keys_map_path:
            _fail(
                "upstream_keys_map_path",
                self.upstream_keys_map_path,
                "must differ from keys_map_path",
            )
        if not 1 <= self.upstream_keepalive <= 1024:
            _fail("upstream_keepalive", self.upstream_keepalive, "must be between 1 and 1024")
        _check_rate("anon_requests_per_second", self.anon_requests_per_second)
        if not 0 <= self.anon_burst <= 100_000:
            _fail("anon_burst", self.anon_burst, "must be between 0 and 100000")
        if not 1024 <= self.max_body_size_bytes <= 1024**3:
            _fail(
                "max_body_size_bytes", self.max_body_size_bytes, "must be between 1 KiB and 1 GiB"
            )
        if not 600 <= self.read_timeout_seconds <= 86_400:
            _fail(
                "read_timeout_seconds",
                self.read_timeout_seconds,
                "must be at least 600 (long generations) and at most 86400",
            )
        if not 1 <= self.connect_timeout_seconds <= 60:
            _fail("connect_timeout_seconds", self.connect_timeout_seconds, "must be 1-60")
        if self.ocsp_stapling and (self.ocsp_trusted_chain_path is None or self.resolver is None):
            _fail(
                "ocsp_stapling",
                True,
                "needs ocsp_trusted_chain_path and resolver (a CA-issued certificate)",
            )
        if self.resolver is not None:
            _check_host("resolver", self.resolver)
        if not 0 <= self.hsts_max_age_seconds <= 2 * 63_072_000:
            _fail("hsts_max_age_seconds", self.hsts_max_age_seconds, "must be 0 to 4 years")
        if self.user is not None and not _USER.match(self.user):
            _fail("user", self.user, "must be a system user name")
        if self.worker_processes is not None and not 1 <= self.worker_processes <= 256:
            _fail("worker_processes", self.worker_processes, "must be 1-256 or None (auto)")
        if not 64 <= self.worker_connections <= 65_535:
            _fail("worker_connections", self.worker_connections, "must be 64-65535")


def _listen(settings: NginxSettings, port: int) -> str:
    if settings.listen_address is None:
        return str(port)
    return f"{settings.listen_address}:{port}"


def _hsts(settings: NginxSettings) -> str:
    return f'add_header Strict-Transport-Security "max-age={settings.hsts_max_age_seconds}" always;'


def _json_error_location(
    settings: NginxSettings, name: str, status: int, body: str, extra_headers: tuple[str, ...] = ()
) -> list[str]:
    # add_header in a location drops the server's add_header lines, so HSTS is repeated here.
    lines = [
        f"        location @{name} {{",
        "            default_type application/json;",
        f"            {_hsts(settings)}",
        '            add_header Cache-Control "no-store" always;',
        *(f"            {header}" for header in extra_headers),
        f"            return {status} '{body}';",
        "        }",
    ]
    return lines


def _route_pattern(route: ApiRoute) -> str:
    # The raw request target: the exact path, then the end or a query (checked on its own).
    return f'"~^{route.method} {route.path}(?:[?]|$)"'


def _request_maps(settings: NginxSettings) -> list[str]:
    return [
        "    # 1 when the method and the raw request target, as the client sent them, are an",
        "    # allowed route; empty for anything else (then 404).",
        '    map "$request_method $request_uri" $edge_route {',
        '        default "";',
        *(f"        {_route_pattern(route)} 1;" for route in settings.routes),
        "    }",
        "",
        "    # 1 when the query string is empty or the one the edge accepts.",
        "    map $args $edge_query_allowed {",
        '        default "";',
        '        "" 1;',
        f'        "~^{re.escape(ALLOWED_QUERY)}$" 1;',
        "    }",
    ]


def _maps(settings: NginxSettings) -> list[str]:
    lines = [
        *_request_maps(settings),
        "",
        "    # Owner of the presented key; empty when the key is missing or unknown. The",
        "    # included entries are anchored regular expressions: compared case-sensitively.",
        "    map $http_authorization $edge_key_owner {",
        '        default "";',
        f"        include {settings.keys_map_path};",
        "    }",
        "",
        "    # The clients: which key owners are let in ($edge_client), each one's limit zone",
        "    # and Retry-After; written from SSM by the key refresh script.",
        f"    include {settings.client_http_path};",
        "",
        "    # Rate-limit key of requests without a valid key: their source address.",
        "    map $edge_client $edge_anon_key {",
        '        ""      $binary_remote_addr;',
        '        default "";',
        "    }",
    ]
    if settings.upstream_keys_map_path is not None:
        lines += [
            "",
            "    # The client's own key for the upstream (LiteLLM virtual key), never the edge key.",
            "    map $edge_client $edge_upstream_authorization {",
            '        default "";',
            f"        include {settings.upstream_keys_map_path};",
            "    }",
        ]
    return lines


def _zones(settings: NginxSettings) -> list[str]:
    lines = [
        "    limit_req_zone $edge_anon_key zone=edge_anon:10m "
        f"rate={nginx_rate(settings.anon_requests_per_second)};",
    ]
    # Rejections are logged below the error log's level: its line would quote the request
    # line; the access log records each 429 with the client and the path alone.
    lines += ["    limit_req_status 429;", "    limit_req_log_level info;"]
    return lines


def _log_format() -> str:
    fields = (
        '"time":"$time_iso8601"',
        '"remote_addr":"$remote_addr"',
        '"client":"$edge_client"',
        '"request_id":"$request_id"',
        '"method":"$request_method"',
        '"path":"$uri"',
        '"protocol":"$server_protocol"',
        '"status":$status',
        '"body_bytes_sent":$body_bytes_sent',
        '"request_length":$request_length',
        '"request_time":$request_time',
        '"upstream_addr":"$upstream_addr"',
        '"upstream_status":"$upstream_status"',
        '"upstream_connect_time":"$upstream_connect_time"',
        '"upstream_response_time":"$upstream_response_time"',
        '"user_agent":"$http_user_agent"',
    )
    # Only named variables are logged: never $http_authorization, $request or $args.
    return "    log_format edge_json escape=json '{" + ",".join(fields) + "}';"


def _https_server(settings: NginxSettings) -> list[str]:
    http2 = " http2" if settings.http2 else ""
    name = settings.server_name or "_"
    rt = settings.read_timeout_seconds
    lines = [
        "    server {",
        f"        listen {_listen(settings, settings.https_port)} ssl{http2} default_server;",
        f"        server_name {name};",
        "",
        f"        ssl_certificate {settings.tls_certificate_path};",
        f"        ssl_certificate_key {settings.tls_key_path};",
        f"        ssl_protocols {TLS_PROTOCOLS};",
        f"        ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS};",
        f"        ssl_ecdh_curve {MOZILLA_INTERMEDIATE_CURVES};",
        "        ssl_prefer_server_ciphers off;",
        "        ssl_session_cache shared:EdgeTLS:10m;",
        "        ssl_session_timeout 1d;",
        "        ssl_session_tickets off;",
        # Small TLS records: each streamed event leaves in its own record, not a 16k one.
        "        ssl_buffer_size 4k;",
    ]
    if settings.ocsp_stapling:
        lines += [
            "        ssl_stapling on;",
            "        ssl_stapling_verify on;",
            f"        ssl_trusted_certificate {settings.ocsp_trusted_chain_path};",
        ]
    if settings.resolver is not None:
        lines += [
            f"        resolver {settings.resolver} valid=300s;",
            "        resolver_timeout 5s;",
        ]
    lines += [
        f"        {_hsts(settings)}",
        "",
        f"        access_log {settings.access_log_path} edge_json;",
        f"        client_max_body_size {settings.max_body_size_bytes};",
        f"        send_timeout {rt}s;",
        "",
        "        error_page 401 @edge_unauthorized;",
        "        error_page 404 @edge_not_found;",
        "        error_page 413 @edge_too_large;",
        "        error_page 429 @edge_rate_limited;",
        "        error_page 502 @edge_bad_gateway;",
        "        error_page 504 @edge_gateway_timeout;",
        "",
        f"        location = {HEALTH_PATH} {{",
        "            access_log off;",
        "            default_type application/json;",
        f"            return 200 '{_JSON_HEALTH}';",
        "        }",
        "",
        "        location = /_edge_auth {",
        "            internal;",
        '            if ($edge_client = "") {',
        "                return 401;",
        "            }",
        "            return 204;",
        "        }",
        "",
        "        location / {",
        # Rewrite phase: before the limits and the key check, so these never reach a log
        # line that quotes the request, nor the upstream.
        '            if ($edge_route = "") {',
        "                return 404;",
        "            }",
        '            if ($edge_query_allowed = "") {',
        f"                return 400 '{_JSON_400_QUERY}';",
        "            }",
        "            default_type application/json;",
        "            limit_req zone=edge_anon " + _burst(settings.anon_burst),
        f"            include {settings.client_limits_path};",
        "            auth_request /_edge_auth;",
        "",
        # No URI part: the upstream gets the raw target, which is exactly an allowed route
        # (with no query, or ALLOWED_QUERY): the same bytes the route check read.
        "            proxy_pass https://edge_upstream;",
        "            proxy_http_version 1.1;",
        "            proxy_pass_request_headers off;",
        *(
            f"            proxy_set_header {name} {_header_variable(name)};"
            for name in forwarded_headers(settings.routes)
        ),
        '            proxy_set_header Connection "";',
        f"            proxy_set_header Host {settings.upstream_sni};",
    ]
    if settings.upstream_keys_map_path is None:
        lines.append('            proxy_set_header Authorization "";')
    else:
        lines.append("            proxy_set_header Authorization $edge_upstream_authorization;")
    lines += [
        f"            proxy_set_header {CLIENT_NAME_HEADER} $edge_client;",
        "            proxy_set_header X-Request-Id $request_id;",
        "            proxy_set_header X-Real-IP $remote_addr;",
        "            proxy_set_header X-Forwarded-For $remote_addr;",
        "            proxy_set_header X-Forwarded-Proto https;",
        "",
        "            more_clear_headers "
        + " ".join(f"'{pattern}'" for pattern in HIDDEN_RESPONSE_HEADER_PATTERNS)
        + ";",
        "",
        "            proxy_buffering off;",
        "            proxy_cache off;",
        "            proxy_ignore_headers X-Accel-Buffering;",
        f"            proxy_connect_timeout {settings.connect_timeout_seconds}s;",
        f"            proxy_read_timeout {rt}s;",
        f"            proxy_send_timeout {rt}s;",
        "",
        "            proxy_ssl_server_name on;",
        f"            proxy_ssl_name {settings.upstream_sni};",
        f"            proxy_ssl_protocols {TLS_PROTOCOLS};",
        "            proxy_ssl_session_reuse on;",
    ]
    if settings.upstream_verify:
        lines += [
            "            proxy_ssl_verify on;",
            "            proxy_ssl_verify_depth 3;",
            f"            proxy_ssl_trusted_certificate {settings.upstream_trusted_ca_path};",
        ]
    else:
        lines.append("            proxy_ssl_verify off;")
    lines += ["        }", ""]
    retry = "add_header Retry-After $edge_retry_after always;"
    auth = 'add_header WWW-Authenticate "Bearer" always;'
    lines += _json_error_location(settings, "edge_unauthorized", 401, _JSON_401, (auth,))
    lines += _json_error_location(settings, "edge_not_found", 404, _JSON_404)
    lines += _json_error_location(settings, "edge_too_large", 413, _JSON_413)
    lines += _json_error_location(settings, "edge_rate_limited", 429, _JSON_429, (retry,))
    lines += _json_error_location(settings, "edge_bad_gateway", 502, _JSON_502)
    lines += _json_error_location(settings, "edge_gateway_timeout", 504, _JSON_504)
    lines.append("    }")
    return lines


def _header_variable(name: str) -> str:
    return "$http_" + name.lower().replace("-", "_")


def _burst(burst: int) -> str:
    return f"burst={burst} nodelay;" if burst > 0 else "nodelay;"


def _http_server(settings: NginxSettings) -> list[str]:
    host = settings.server_name or "$host"
    port = "" if settings.https_port == 443 else f":{settings.https_port}"
    return [
        "    server {",
        f"        listen {_listen(settings, settings.http_port)} default_server;",
        f"        server_name {settings.server_name or '_'};",
        f"        access_log {settings.access_log_path} edge_json;",
        "",
        "        location ^~ /.well-known/acme-challenge/ {",
        f"            root {settings.acme_webroot};",
        "            default_type text/plain;",
        "        }",
        "",
        "        location / {",
        f"            return 301 https://{host}{port}$request_uri;",
        "        }",
        "    }",
    ]


def render_nginx_conf(settings: NginxSettings) -> str:
    """The complete nginx.conf (main context) of the edge gateway."""
    workers = "auto" if settings.worker_processes is None else str(settings.worker_processes)
    temp = settings.temp_dir
    lines = [
        "# Generated by llm-platform (components/edge/nginx_conf.py); do not edit.",
        f"load_module {settings.headers_more_module_path};",
    ]
    if settings.user is not None:
        lines.append(f"user {settings.user};")
    lines += [
        f"worker_processes {workers};",
        # Files beyond the connections (logs, temp files, listeners); gixy-ng asks for 2x.
        f"worker_rlimit_nofile {2 * settings.worker_connections};",
        f"pid {settings.pid_path};",
        f"error_log {settings.error_log_path} warn;",
        "",
        "events {",
        f"    worker_connections {settings.worker_connections};",
        "}",
        "",
        "http {",
        "    server_tokens off;",
        "    default_type application/octet-stream;",
        "    charset utf-8;",
        "    sendfile on;",
        "    tcp_nodelay on;",
        "    keepalive_timeout 75s;",
        f"    client_header_timeout {settings.client_header_timeout_seconds}s;",
        f"    client_body_timeout {settings.client_body_timeout_seconds}s;",
        # Compressing a server-sent event stream would hold events back; the API is JSON.
        "    gzip off;",
        # Map keys are "Bearer <key>" strings, longer than the default bucket holds.
        f"    map_hash_bucket_size {MAP_HASH_BUCKET_SIZE};",
        f"    client_body_temp_path {temp}/body;",
        f"    proxy_temp_path {temp}/proxy;",
        f"    fastcgi_temp_path {temp}/fastcgi;",
        f"    uwsgi_temp_path {temp}/uwsgi;",
        f"    scgi_temp_path {temp}/scgi;",
        "",
        _log_format(),
        "",
        *_maps(settings),
        "",
        *_zones(settings),
        "",
        "    upstream edge_upstream {",
        *(f"        server {upstream};" for upstream in settings.upstreams),
        f"        keepalive {settings.upstream_keepalive};",
        "        keepalive_timeout 60s;",
        "    }",
        "",
        *_https_server(settings),
        "",
        *_http_server(settings),
        "}",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ClientConfigFiles:
    """The two files nginx.conf includes that name the clients."""

    http: str
    """In `http`: `$edge_client` (the key owners let in), each client's `limit_req_zone`
    and the `Retry-After` of its 429s."""
    location: str
    """In the API location: each client's `limit_req`."""

    def parameter_value(self) -> str:
        """The SSM parameter the key refresh script writes them from (JSON)."""
        return json.dumps({"http": self.http, "location": self.location}, sort_keys=True)


def render_client_config(
    clients: Sequence[ClientLimit], *, anon_requests_per_second: float
) -> ClientConfigFiles:
    """The client files of nginx.conf for these clients (none: only unkeyed traffic, which
    gets 401s). Only clients listed here get in, whatever names the key map holds."""
    names = [client.name for client in clients]
    if len(set(names)) != len(names):
        _fail("clients", names, "client names must be unique")
    _check_rate("anon_requests_per_second", anon_requests_per_second)
    ordered = sorted(clients, key=lambda client: client.name)
    http = [
        "# Generated by llm-platform (components/edge/nginx_conf.py); written from SSM.",
        "map $edge_key_owner $edge_client {",
        '    default "";',
        *(f'    "{client.name}" "{client.name}";' for client in ordered),
        "}",
    ]
    for client in ordered:
        http += [
            f"map $edge_client {client.variable} {{",
            '    default "";',
            f'    "{client.name}" "{client.name}";',
            "}",
        ]
    http += [
        "map $edge_client $edge_retry_after {",
        f"    default {retry_after_seconds(anon_requests_per_second)};",
        *(
            f'    "{client.name}" {retry_after_seconds(client.requests_per_second)};'
            for client in ordered
        ),
        "}",
        *(
            f"limit_req_zone {client.variable} zone={client.zone}:64k "
            f"rate={nginx_rate(client.requests_per_second)};"
            for client in ordered
        ),
    ]
    location = [
        "# Generated by llm-platform (components/edge/nginx_conf.py); written from SSM.",
        *(f"limit_req zone={client.zone} " + _burst(client.burst) for client in ordered),
    ]
    return ClientConfigFiles(http="\n".join(http) + "\n", location="\n".join(location) + "\n")


def render_api_keys_map(clients: Mapping[str, str]) -> str:
    """The included keys map: one `"~^Bearer <key>$" "<client>";` line per client, by name.

    Each key is an anchored regular expression (`.` and `+`, the only special characters
    a key may hold, escaped) so nginx compares it case-sensitively; a plain map key would
    be compared case-insensitively. The program never writes real keys to disk: on the
    instance the key refresh script renders this file from SSM; this function serves tests
    and the offline render (with placeholder keys).
    """
    lines = []
    seen: set[str] = set()
    for name in sorted(clients):
        key = clients[name]
        _check_client_key(name, key)
        if key.lower() in seen:
            raise ValueError(f"clients[{name}]: key is shared with another client")
        seen.add(key.lower())
        lines.append(f'"~^Bearer {key_pattern(key)}$" "{name}";')
    return "\n".join(lines) + ("\n" if lines else "")


def key_pattern(key: str) -> str:
    """`key` as a regular expression matching exactly it (keys hold no other specials)."""
    return re.sub(r"([.+])", r"\\\1", key)


def render_upstream_keys_map(clients: Mapping[str, str]) -> str:
    """The included upstream map: `"<client>" "Bearer <upstream key>";` per client, by name."""
    lines = []
    for name in sorted(clients):
        _check_client_key(name, clients[name])
        lines.append(f'"{name}" "Bearer {clients[name]}";')
    return "\n".join(lines) + ("\n" if lines else "")


def _check_client_key(name: str, key: str) -> None:
    if not _CLIENT_NAME.match(name):
        raise ValueError(f"client name {name!r} must be a DNS label ([a-z0-9-], 1-63 chars)")
    # The key itself never goes into the message.
    if not _API_KEY.match(key):
        raise ValueError(f"clients[{name}]: key must be 16-256 characters of [A-Za-z0-9._~+/=-]")
