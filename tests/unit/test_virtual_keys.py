"""The virtual-key dynamic provider against a fake LiteLLM admin API on loopback.

The fake speaks the JSON shapes of LiteLLM 1.83.14's key-management endpoints
(litellm/proxy/management_endpoints/key_management_endpoints.py and the request models in
litellm/proxy/_types.py; documented at https://docs.litellm.ai/docs/proxy/virtual_keys):
`POST /key/generate` answers the key with its settings and `token` (the SHA-256 handle)
and keeps an `object_permission` in its own table (returned by `/key/info` with every
field of `LiteLLM_ObjectPermissionTable`; `/key/update` merges a new one field by field:
management_helpers/object_permission_utils.py),
`GET /key/info?key=` answers `{"key": ..., "info": {...}}` or 404 "Key not found in
database", `POST /key/update` takes `key` plus the settings to change, `POST /key/delete`
takes `{"keys": [...]}` and answers `{"deleted_keys": [...]}`. Errors use the proxy's
`{"error": {"message", "type", "param", "code"}}` body; a wrong master key gets 401.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from components.config import ClientConfig
from components.llm_gateway.virtual_keys import (
    MANAGED_FIELDS,
    AdminApi,
    AdminApiCheckProvider,
    AdminApiError,
    VirtualKeyProvider,
    check_reachable,
    client_key_settings,
    key_handle,
    request_body,
)
from tests.fakes.background import BackgroundServer
from tests.fakes.upstream import TestPki

MASTER = "sk-MASTER-fake-admin-7c1d"
KEY = "sk-CLIENTKEY-web-app-93ab"
OTHER_KEY = "sk-CLIENTKEY-rotated-11f0"
SETTINGS = {
    "key_alias": "web-app",
    "max_budget": 500.0,
    "budget_duration": "30d",
    "rpm_limit": 1240,
    "tpm_limit": None,
    "models": ["claude-haiku", "qwen3-14b"],
}


PERMISSION_ROW: dict[str, Any] = {
    "object_permission_id": None,
    "mcp_servers": [],
    "mcp_access_groups": [],
    "mcp_tool_permissions": None,
    "vector_stores": [],
    "agents": [],
}
"""A `LiteLLM_ObjectPermissionTable` row as `/key/info` returns it (its list defaults)."""


@dataclass
class FakeAdmin:
    """State of the fake proxy: keys by handle, the calls seen, injected faults."""

    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, path, Authorization header) of each call."""
    unavailable: int = 0
    """Answer this many next calls with 503."""
    echo_in_error: str | None = None
    """Answer the next call with a 500 whose message holds this text."""


def _error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": "key", "code": str(code)}}


def _handler(state: FakeAdmin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def _send(self, status: int, body: dict[str, Any]) -> None:
            self._send_json(body, status)

        def _send_json(self, body: Any, status: int = 200) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            loaded: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            return loaded

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            auth = self.headers.get("Authorization", "")
            state.calls.append((method, url.path, auth))
            if (method, url.path) == ("GET", "/health/liveliness"):
                self._send_json("I'm alive!")  # what LiteLLM answers, without auth
                return
            body = self._body() if method == "POST" else {}
            if state.unavailable > 0:
                state.unavailable -= 1
                self._send(503, _error("service unavailable", "internal_error", 503))
                return
            if state.echo_in_error is not None:
                text, state.echo_in_error = state.echo_in_error, None
                self._send(500, _error(f"boom while handling {text}", "internal_error", 500))
                return
            if auth != f"Bearer {MASTER}":
                self._send(401, _error("Authentication Error, invalid token", "auth_error", 401))
                return
            handler = {
                ("POST", "/key/generate"): self._generate,
                ("GET", "/key/info"): self._info,
                ("POST", "/key/update"): self._update,
                ("POST", "/key/delete"): self._delete,
            }.get((method, url.path))
            if handler is None:
                self._send(404, {"detail": "Not Found"})
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            handler(body, query)

        def _generate(self, body: dict[str, Any], _query: dict[str, str]) -> None:
            key = body["key"]
            if any(k["key_alias"] == body.get("key_alias") for k in state.keys.values()):
                self._send(
                    400,
                    _error(
                        "Unique key aliases across all keys are required", "bad_request_error", 400
                    ),
                )
                return
            record = {f: body.get(f) for f in MANAGED_FIELDS}
            record["models"] = body.get("models") or []
            record["metadata"] = body.get("metadata") or {}
            record["spend"] = 0.0
            assert "mcp_servers" not in body  # LiteLLM takes them in `object_permission`
            if body.get("object_permission") is not None:
                record["object_permission_id"] = f"perm-{body['key_alias']}"
                record["object_permission"] = {
                    **PERMISSION_ROW,
                    "object_permission_id": record["object_permission_id"],
                    **body["object_permission"],
                }
            state.keys[hashlib.sha256(key.encode()).hexdigest()] = record
            self._send(200, {"key": key, "token": key_handle(key), **record})

        def _info(self, _body: dict[str, Any], query: dict[str, str]) -> None:
            record = state.keys.get(key_handle(query.get("key", "")))
            if record is None:
                self._send(404, _error("Key not found in database", "not_found_error", 404))
                return
            self._send(200, {"key": query["key"], "info": dict(record)})

        def _update(self, body: dict[str, Any], _query: dict[str, str]) -> None:
            record = state.keys.get(key_handle(body["key"]))
            if record is None:
                self._send(404, _error("Key not found in database", "not_found_error", 404))
                return
            record.update({f: body[f] for f in MANAGED_FIELDS if f in body})
            if body.get("object_permission") is not None:
                record["object_permission"] = {
                    **record.get("object_permission", PERMISSION_ROW),
                    **body["object_permission"],
                }
            self._send(200, {"key": body["key"], **record})

        def _delete(self, body: dict[str, Any], _query: dict[str, str]) -> None:
            gone = [k for k in body["keys"] if state.keys.pop(key_handle(k), None) is not None]
            if not gone:
                self._send(404, _error("Key not found in database", "not_found_error", 404))
                return
            self._send(200, {"deleted_keys": gone})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler


@pytest.fixture
def admin() -> Iterator[tuple[FakeAdmin, str]]:
    """A fake admin API on a free loopback port, torn down after the test."""
    state = FakeAdmin()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    with BackgroundServer(server):
        yield state, f"http://127.0.0.1:{server.server_address[1]}"


def _props(url: str, *, key: str = KEY, master: str = MASTER, **settings: Any) -> dict[str, Any]:
    return {
        "admin_url": url,
        "master_key": master,
        "key": key,
        "ca_pem": "",
        "timeout_seconds": 5.0,
        "attempts": 3,
        **SETTINGS,
        **settings,
    }


def test_create_registers_the_key_with_its_settings(admin: tuple[FakeAdmin, str]) -> None:
    state, url = admin
    result = VirtualKeyProvider().create(_props(url))
    assert result.id == hashlib.sha256(KEY.encode()).hexdigest()
    stored = state.keys[result.id]
    assert {f: stored[f] for f in MANAGED_FIELDS} == SETTINGS
    assert stored["metadata"] == {"managed-by": "llm-platform"}
    assert state.calls == [("POST", "/key/generate", f"Bearer {MASTER}")]
    assert result.outs is not None and result.outs["key"] == KEY


def test_read_reports_drift_and_diff_turns_it_into_an_update(
    admin: tuple[FakeAdmin, str],
) -> None:
    state, url = admin
    provider = VirtualKeyProvider()
    desired = _props(url)
    created = provider.create(desired)
    assert created.id is not None
    state.keys[created.id]["max_budget"] = 9999.0  # changed by hand in the admin UI
    state.keys[created.id]["models"] = []

    read = provider.read(created.id, dict(desired))
    assert read.id == created.id
    assert read.outs is not None
    assert read.outs["max_budget"] == 9999.0 and read.outs["models"] == []
    diff = provider.diff(created.id, read.outs, desired)
    assert diff.changes is True and not diff.replaces

    provider.update(created.id, read.outs, desired)
    assert state.keys[created.id]["max_budget"] == 500.0
    assert state.keys[created.id]["models"] == SETTINGS["models"]
    again = provider.read(created.id, dict(desired))
    assert again.outs is not None
    assert provider.diff(created.id, again.outs, desired).changes is False


def test_a_key_deleted_out_of_band_reads_as_gone(admin: tuple[FakeAdmin, str]) -> None:
    state, url = admin
    provider = VirtualKeyProvider()
    created = provider.create(_props(url))
    assert created.id is not None
    state.keys.clear()
    assert provider.read(created.id, _props(url)).id == ""


def test_a_new_key_value_replaces_deleting_the_old_key_first(
    admin: tuple[FakeAdmin, str],
) -> None:
    _, url = admin
    diff = VirtualKeyProvider().diff("id", _props(url), _props(url, key=OTHER_KEY))
    assert diff.replaces == ["key"]
    assert diff.delete_before_replace is True
    same = VirtualKeyProvider().diff(
        "id", _props(url), _props(url, models=list(reversed(SETTINGS["models"])))
    )
    assert same.changes is False


def test_delete_removes_the_key_and_tolerates_one_already_gone(
    admin: tuple[FakeAdmin, str],
) -> None:
    state, url = admin
    provider = VirtualKeyProvider()
    created = provider.create(_props(url))
    assert created.id is not None
    provider.delete(created.id, _props(url))
    assert state.keys == {}
    provider.delete(created.id, _props(url))  # 404: already deleted, not an error
    assert state.calls[-1][:2] == ("POST", "/key/delete")


def test_errors_name_the_call_and_never_hold_a_key(
    admin: tuple[FakeAdmin, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, url = admin
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AdminApiError) as refused:
        VirtualKeyProvider().create(_props(url, master="sk-WRONG-master-0000"))
    assert refused.value.status == 401
    assert "POST /key/generate: HTTP 401" in str(refused.value)

    state.echo_in_error = f"{KEY} and {MASTER}"
    with pytest.raises(AdminApiError) as failed:
        VirtualKeyProvider().create(_props(url))
    message = str(failed.value)
    assert "HTTP 500" in message and "[redacted]" in message
    captured = capsys.readouterr()
    for secret in (KEY, MASTER, "sk-WRONG-master-0000"):
        assert secret not in message
        assert secret not in str(refused.value)
        assert secret not in caplog.text
        assert secret not in captured.out + captured.err


def test_unavailable_answers_are_retried_a_bounded_number_of_times(
    admin: tuple[FakeAdmin, str],
) -> None:
    state, url = admin
    api = AdminApi(base_url=url, master_key=MASTER, attempts=3, backoff_seconds=0.0)
    state.unavailable = 2
    status, _ = api.call("POST", "/key/generate", body={"key": KEY, **SETTINGS})
    assert status == 200 and len(state.calls) == 3
    state.unavailable = 5
    with pytest.raises(AdminApiError, match="HTTP 503"):
        api.call("GET", "/key/info", query={"key": KEY})
    assert len(state.calls) == 6


@pytest.mark.parametrize(
    "url", ["http://api.llm.example.org", "ftp://127.0.0.1/", "api.llm.example.org"]
)
def test_the_master_key_only_travels_over_https_or_loopback(url: str) -> None:
    with pytest.raises(AdminApiError, match="https"):
        AdminApi(base_url=url, master_key=MASTER)
    AdminApi(base_url="https://api.llm.example.org", master_key=MASTER)


def test_client_settings_leave_the_edge_as_the_first_limit() -> None:
    client = ClientConfig(
        requests_per_second=2.5, burst=7, max_budget_usd=12.5, models=("b-model", "a-model")
    )
    settings = client_key_settings("batch", client)
    assert settings["key_alias"] == "batch"
    assert settings["rpm_limit"] == 157  # 2.5/s * 60 + burst 7
    assert settings["max_budget"] == 12.5 and settings["budget_duration"] == "30d"
    assert settings["models"] == ["a-model", "b-model"]
    assert client_key_settings("all", ClientConfig())["models"] == []


# --- the machine running `pulumi up` must reach the admin API ---------------------------


def test_reachability_passes_where_the_admin_api_answers(admin: tuple[FakeAdmin, str]) -> None:
    state, url = admin
    check_reachable(url, None, 5.0)
    assert state.calls == [("GET", "/health/liveliness", "")], "no master key sent"


def test_an_unresolvable_admin_host_says_where_to_run_pulumi_up() -> None:
    with pytest.raises(AdminApiError) as raised:
        check_reachable("https://api.llm.invalid", None, 5.0)
    message = str(raised.value)
    assert "api.llm.invalid does not resolve here" in message
    assert "self-hosted runner in the home network" in message


def test_nothing_listening_is_reported_as_such() -> None:
    import socket

    with socket.socket() as probe:  # a loopback port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AdminApiError, match=f"nothing answers at 127.0.0.1:{port}"):
        check_reachable(f"http://127.0.0.1:{port}", None, 5.0)


@pytest.fixture
def tls_admin(tmp_path: Any) -> Iterator[tuple[str, TestPki]]:
    """The fake admin API over HTTPS on loopback, its certificate from a throwaway CA."""
    import ssl

    pki = TestPki()
    cert, key = pki.write_server_files(tmp_path, "admin", ["api.llm.test"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(FakeAdmin()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with BackgroundServer(server):
        yield f"https://127.0.0.1:{server.server_address[1]}", pki


def test_a_certificate_this_machine_does_not_trust_fails_the_check(
    tls_admin: tuple[str, TestPki],
) -> None:
    url, pki = tls_admin
    check_reachable(url, pki.ca_pem.decode(), 5.0)
    with pytest.raises(AdminApiError) as raised:
        check_reachable(url, TestPki("another CA").ca_pem.decode(), 5.0)
    assert "its certificate is not trusted with the internal CA" in str(raised.value)
    with pytest.raises(AdminApiError, match="not trusted with the system's CAs"):
        check_reachable(url, None, 5.0)


def test_the_check_runs_on_create_and_on_every_change_and_fails_before_any_key(
    admin: tuple[FakeAdmin, str],
) -> None:
    state, url = admin
    provider = AdminApiCheckProvider()
    props = {"check": "x", "admin_url": url, "ca_pem": "", "timeout_seconds": 5.0, "keys": "{}"}
    provider.create(props)
    assert provider.diff("id", props, dict(props)).changes is False
    changed = {**props, "keys": '{"web-app": {}}'}
    result = provider.diff("id", props, changed)
    assert result.changes is True and not result.replaces
    provider.update("id", props, changed)
    assert [c[1] for c in state.calls] == ["/health/liveliness"] * 2
    with pytest.raises(AdminApiError, match="does not resolve here"):
        provider.update("id", props, {**changed, "admin_url": "https://api.llm.invalid"})


def test_mcp_servers_travel_as_the_keys_object_permission_and_drift_is_repaired(
    admin: tuple[FakeAdmin, str],
) -> None:
    state, url = admin
    provider = VirtualKeyProvider()
    desired = _props(url, mcp_servers=["wiki", "github"])
    created = provider.create(desired)
    assert created.id is not None
    stored = state.keys[created.id]
    assert stored["object_permission"]["mcp_servers"] == ["wiki", "github"]
    # Someone grants another server in the admin UI: a refresh sees it, up takes it back.
    stored["object_permission"]["mcp_servers"] = ["wiki", "github", "payroll"]
    read = provider.read(created.id, dict(desired))
    assert read.outs is not None and read.outs["mcp_servers"] == ["wiki", "github", "payroll"]
    assert provider.diff(created.id, read.outs, desired).changes is True
    provider.update(created.id, read.outs, desired)
    assert stored["object_permission"]["mcp_servers"] == ["wiki", "github"]
    again = provider.read(created.id, dict(desired))
    assert again.outs is not None
    assert provider.diff(created.id, again.outs, desired).changes is False
    # Revoking every server sends an empty list, which replaces the old one.
    provider.update(created.id, again.outs, _props(url, mcp_servers=[]))
    assert stored["object_permission"]["mcp_servers"] == []


def test_a_stack_without_mcp_servers_leaves_the_keys_permissions_alone(
    admin: tuple[FakeAdmin, str],
) -> None:
    state, url = admin
    provider = VirtualKeyProvider()
    created = provider.create(_props(url))
    assert created.id is not None
    assert "object_permission" not in state.keys[created.id]
    state.keys[created.id]["object_permission"] = {**PERMISSION_ROW, "mcp_servers": ["x"]}
    read = provider.read(created.id, _props(url))
    assert read.outs is not None and "mcp_servers" not in read.outs
    assert provider.diff(created.id, read.outs, _props(url)).changes is False
    settings = client_key_settings("web", ClientConfig(mcp_servers=("wiki",)))
    assert "mcp_servers" not in settings
    with_mcp = client_key_settings("web", ClientConfig(mcp_servers=("wiki", "docs")), mcp=True)
    assert with_mcp["mcp_servers"] == ["docs", "wiki"]
    assert request_body("sk-x", with_mcp)["object_permission"] == {"mcp_servers": ["docs", "wiki"]}
