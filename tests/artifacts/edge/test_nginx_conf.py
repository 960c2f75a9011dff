"""The edge nginx.conf renderer: validation, and `nginx -t` on every variant it can render."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from components.config import parse_platform_config
from components.edge.gateway import nginx_settings
from components.edge.nginx_conf import (
    ClientLimit,
    NginxSettings,
    nginx_rate,
    render_api_keys_map,
    render_client_config,
    render_nginx_conf,
    retry_after_seconds,
)
from tests.artifacts.edge.nginx_harness import EdgeFixture, nginx_binary
from tests.fakes.upstream import TestPki
from tests.support import stack_values

CLIENTS = (
    ClientLimit(name="alice", requests_per_second=5, burst=10),
    ClientLimit(name="slow-bot", requests_per_second=0.5, burst=0),
)
KEYS = {"alice": "sk-edge-0123456789abcdefABCDEF", "slow-bot": "sk-edge-slowslowslowslow01"}


def _base(**overrides: object) -> NginxSettings:
    values: dict[str, object] = {
        "upstreams": ("192.168.1.50:443",),
        "upstream_sni": "ingress.internal",
    }
    values.update(overrides)
    return NginxSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"upstream_keys": False},
        {"http2": False, "upstream_verify": False, "upstream_trusted_ca_path": None},
        {"server_name": None, "https_port": 443 + 1, "anon_requests_per_second": 0.25},
    ],
    ids=["default", "no-upstream-keys", "no-http2-no-verify", "any-name"],
)
def test_nginx_accepts_the_rendered_config_without_warnings(
    tmp_path: Path, pki: TestPki, overrides: dict[str, object]
) -> None:
    nginx_binary()
    fixture = EdgeFixture(tmp_path, pki, upstream_port=9443)
    upstream_keys = bool(overrides.pop("upstream_keys", True))
    settings = fixture.settings(CLIENTS, upstream_keys=upstream_keys, **overrides)
    fixture.write(settings, KEYS, {"alice": "sk-up-0123456789abcdefABCDEF"})
    result = fixture.test_config()
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def test_nginx_accepts_ocsp_stapling_with_a_ca_issued_certificate(
    tmp_path: Path, pki: TestPki
) -> None:
    nginx_binary()
    fixture = EdgeFixture(tmp_path, pki, upstream_port=9443)
    chain = tmp_path / "tls" / "chain.pem"
    chain.write_bytes(pki.ca_pem)
    settings = fixture.settings(
        CLIENTS, ocsp_stapling=True, ocsp_trusted_chain_path=str(chain), resolver="127.0.0.53"
    )
    fixture.write(settings, KEYS, {})
    conf = render_nginx_conf(settings)
    assert "ssl_stapling on;" in conf and "ssl_stapling_verify on;" in conf
    result = fixture.test_config()
    # The test certificate names no OCSP responder, so nginx warns that it ignores stapling.
    assert result.returncode == 0, result.stderr
    assert "[emerg]" not in result.stderr


def test_nginx_rejects_a_broken_key_map(tmp_path: Path, pki: TestPki) -> None:
    """The included map is really parsed: an entry that is no valid regular expression fails
    `nginx -t` (what the refresh script relies on before it reloads)."""
    nginx_binary()
    fixture = EdgeFixture(tmp_path, pki, upstream_port=9443)
    settings = fixture.settings(CLIENTS)
    fixture.write(settings, KEYS, {})
    line = render_api_keys_map({"alice": KEYS["alice"]})
    Path(settings.keys_map_path).write_text(line + '"~^Bearer (unclosed$" "slow-bot";\n')
    result = fixture.test_config()
    assert result.returncode != 0
    assert "pcre" in result.stderr.lower() or "regex" in result.stderr.lower(), result.stderr


def test_tls_and_streaming_directives_are_rendered() -> None:
    conf = render_nginx_conf(_base())
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "ssl_session_tickets off;" in conf
    assert "listen 443 ssl http2 default_server;" in conf
    assert "proxy_buffering off;" in conf and "proxy_cache off;" in conf
    assert "proxy_ignore_headers X-Accel-Buffering;" in conf
    assert "proxy_read_timeout 900s;" in conf
    assert "ssl_stapling" not in conf  # off unless asked for
    assert "$http_authorization" not in conf.split("log_format", 1)[1].split(";", 1)[0]
    assert 'proxy_set_header Authorization "";' in conf


def test_render_is_deterministic() -> None:
    assert render_nginx_conf(_base()) == render_nginx_conf(_base())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"read_timeout_seconds": 599}, "read_timeout_seconds"),
        ({"upstream_trusted_ca_path": None}, "upstream_trusted_ca_path"),
        ({"upstreams": ()}, "upstreams"),
        ({"upstreams": ("ingress:99999",)}, "upstreams"),
        ({"keys_map_path": "/etc/nginx/x.map; include /etc/shadow"}, "keys_map_path"),
        ({"keys_map_path": "relative.map"}, "keys_map_path"),
        ({"anon_requests_per_second": 0.01}, "anon_requests_per_second"),
        ({"ocsp_stapling": True}, "ocsp_stapling"),
        ({"server_name": "10.0.0.1"}, "server_name"),
        ({"http_port": 443}, "http_port"),
        ({"upstream_keys_map_path": "/etc/nginx/edge/api-keys.map"}, "upstream_keys_map_path"),
    ],
)
def test_invalid_settings_are_rejected_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        _base(**overrides)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "Alice", "requests_per_second": 1},
        {"name": "a_b", "requests_per_second": 1},
        {"name": "alice", "requests_per_second": 0},
        {"name": "alice", "requests_per_second": 1, "burst": -1},
    ],
)
def test_invalid_client_limits_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClientLimit(**kwargs)  # type: ignore[arg-type]


def test_client_names_are_unique_in_the_client_files() -> None:
    with pytest.raises(ValueError, match="clients"):
        render_client_config((CLIENTS[0], CLIENTS[0]), anon_requests_per_second=2)


def test_nginx_conf_names_no_client_the_client_files_name_them_all() -> None:
    """nginx.conf (in the user-data) is the same whatever the clients; the included files
    carry who may in and each one's limit, and nginx accepts them with no client at all."""
    conf = render_nginx_conf(_base())
    for client in CLIENTS:
        assert client.name not in conf and client.zone not in conf
    files = render_client_config(CLIENTS, anon_requests_per_second=2)
    assert '    "slow-bot" "slow-bot";' in files.http
    assert (
        "limit_req_zone $edge_rl_slow_bot zone=edge_client_slow-bot:64k rate=30r/m;" in files.http
    )
    assert '    "slow-bot" 2;' in files.http  # Retry-After of one token at 0.5 r/s
    assert files.location.splitlines()[1:] == [
        "limit_req zone=edge_client_alice burst=10 nodelay;",
        "limit_req zone=edge_client_slow-bot nodelay;",
    ]
    none = render_client_config((), anon_requests_per_second=2)
    assert "$edge_client" in none.http and "limit_req " not in none.location


def test_nginx_accepts_the_client_files_with_no_client(tmp_path: Path, pki: TestPki) -> None:
    nginx_binary()
    fixture = EdgeFixture(tmp_path, pki, upstream_port=9443)
    settings = fixture.settings(())
    fixture.write(settings, {}, {})
    result = fixture.test_config()
    assert result.returncode == 0, result.stderr


def test_rates_are_expressed_the_way_nginx_reads_them() -> None:
    assert nginx_rate(5) == "5r/s"
    assert nginx_rate(0.5) == "30r/m"
    assert nginx_rate(2.25) == "135r/m"
    with pytest.raises(ValueError):
        nginx_rate(0.001)
    assert retry_after_seconds(10) == 1
    assert retry_after_seconds(0.5) == 2
    assert retry_after_seconds(0.3) == 4


def test_keys_map_lines_are_sorted_anchored_and_escaped() -> None:
    text = render_api_keys_map({"zed": "z" * 20, "alice": "a.b+c/d=e-f~" + "a" * 8})
    assert text.splitlines() == [
        '"~^Bearer a\\.b\\+c/d=e-f~aaaaaaaa$" "alice";',
        f'"~^Bearer {"z" * 20}$" "zed";',
    ]


@pytest.mark.parametrize(
    "keys",
    [
        {"alice": 'sk-edge-with"quote-0123456'},
        {"alice": "sk-edge-with space-0123456"},
        {"alice": "sk-edge-with;semicolon-012"},
        {"alice": "short"},
        {"alice": "sk-edge-SAMEsameSAMEsame", "bob": "sk-edge-samesamesamesame"},
    ],
)
def test_unsafe_or_shared_keys_are_rejected_without_echoing_them(keys: dict[str, str]) -> None:
    with pytest.raises(ValueError) as rejected:
        render_api_keys_map(keys)
    for key in keys.values():
        assert key not in str(rejected.value)


def test_nginx_t_is_run_with_the_real_binary(tmp_path: Path) -> None:
    """Guards the harness: `nginx -t` really reads the file (a broken one fails)."""
    binary = nginx_binary()
    conf = tmp_path / "broken.conf"
    conf.write_text("events {}\nhttp { server { listen 127.0.0.1:1 ssl; bogus_directive on; } }\n")
    result = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "bogus_directive" in result.stderr


def test_the_stack_config_chooses_the_routes_the_edge_passes() -> None:
    values = stack_values("prod")
    values["edge"]["api_routes"] = ["models", "embeddings"]
    conf = render_nginx_conf(nginx_settings(parse_platform_config(values)))
    route_map = conf.split('map "$request_method $request_uri" $edge_route {', 1)[1]
    entries = [line.strip() for line in route_map.split("}", 1)[0].splitlines() if "~^" in line]
    assert entries == [
        '"~^GET /v1/models(?:[?]|$)" 1;',
        '"~^POST /v1/embeddings(?:[?]|$)" 1;',
    ]
    default = render_nginx_conf(nginx_settings(parse_platform_config(stack_values("prod"))))
    assert "POST /v1/chat/completions" in default and "POST /v1/chat/completions" not in conf


def test_the_mcp_protocol_header_passes_only_where_the_mcp_route_is(
    rendered_stack: Callable[[str], Path],
) -> None:
    """A stack that does not list `mcp` gets the edge it had before MCP existed."""
    from components.edge.api_surface import forwarded_headers, routes

    assert "MCP-Protocol-Version" not in forwarded_headers(routes(("chat_completions",)))
    assert "MCP-Protocol-Version" in forwarded_headers(routes(("chat_completions", "mcp")))
    dev = (rendered_stack("dev") / "files" / "edge" / "nginx.conf").read_text()
    prod = (rendered_stack("prod") / "files" / "edge" / "nginx.conf").read_text()
    assert "MCP-Protocol-Version" not in dev and "POST /mcp/" not in dev
    assert "proxy_set_header MCP-Protocol-Version $http_mcp_protocol_version;" in prod
    assert '"~^POST /mcp/(?:[?]|$)" 1;' in prod
