"""MCP through the gateway: the rendered config's MCP servers in the real LiteLLM proxy, in
front of fake MCP servers that are the `mcp` SDK's own server (tests/fakes/mcp_server.py),
reached with the clients' keys and held to each client's allow-list.

Two servers as a stack declares them: `docs`, a Service in the cluster, and `tickets`, a
remote URL offering only its `echo` tool; both take a credential header from secret config,
which the proxy reads from its environment as the Deployment fills it. Three clients:
`agent` may use both, `web-app` only `docs`, `batch` none.

The proxy runs without its database (the pinned venv has no Prisma client), so the client
keys come from a stand-in of LiteLLM's key table: `general_settings.custom_auth`
(proxy_server.py, `user_api_key_auth.py` calls it in place of the table lookup) answers
each key with the row `/key/generate` stores from the body `VirtualKeyProvider` sends for
that client (`virtual_keys.request_body`), its `object_permission` included, and refuses
any other key with the 401 LiteLLM gives an unknown key. Everything after the lookup is
LiteLLM's own: its MCP server at `/mcp/`, the permission checks
(`mcp_server_manager.py` `get_allowed_mcp_servers`) and its calls to the servers.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import PlatformConfig, parse_platform_config
from components.config.mcp import header_env
from components.llm_gateway.litellm_config import render_litellm_config
from components.llm_gateway.virtual_keys import client_key_settings, request_body
from tests.litellm_proxy import (
    CloudBases,
    ProxyKeys,
    RunningProxy,
    litellm_available,
    litellm_proxy,
    sse_data,
)
from tests.mcp_fake import PYTHON, McpFake
from tests.support import stack_values

pytestmark = pytest.mark.live

if (why := litellm_available()) is not None:
    pytest.skip(why, allow_module_level=True)

MASTER_KEY = "sk-mcp-test-master-41c2"
DOCS_SECRET = "Bearer docs-mcp-secret-5e1f"
TICKETS_SECRET = "tickets-mcp-secret-9a07"
PROTOCOL = "2025-06-18"
KEYS = {
    "agent": "sk-mcp-agent-key-0c3d1e",
    "web-app": "sk-mcp-web-app-key-71aa",
    "batch": "sk-mcp-batch-key-2b9f",
}
UNKNOWN_KEY = "sk-mcp-not-a-key-000000"

KEY_TABLE = '''"""Stand-in for LiteLLM's key table (tests/live/test_mcp_gateway.py)."""
import hashlib
import json
import os

from fastapi import HTTPException
from litellm.proxy._types import (
    LiteLLM_ObjectPermissionTable,
    LiteLLMRoutes,
    LitellmUserRoles,
    UserAPIKeyAuth,
)

ROWS = json.loads(os.environ["LLM_PLATFORM_TEST_KEY_TABLE"])


async def user_api_key_auth(request, api_key):
    # Custom auth runs before LiteLLM's public-route check: answer those as it does.
    if request.url.path in LiteLLMRoutes.public_routes.value:
        return UserAPIKeyAuth(user_role=LitellmUserRoles.INTERNAL_USER_VIEW_ONLY)
    if api_key == os.environ["LITELLM_MASTER_KEY"]:
        return UserAPIKeyAuth(api_key=api_key, user_role=LitellmUserRoles.PROXY_ADMIN)
    row = ROWS.get(api_key)
    if row is None:
        raise HTTPException(status_code=401, detail="Authentication Error, invalid key")
    token = hashlib.sha256(api_key.encode()).hexdigest()
    permission = row.get("object_permission")
    permission_id = None if permission is None else "perm-" + row["key_alias"]
    return UserAPIKeyAuth(
        api_key=token,
        token=token,
        key_alias=row["key_alias"],
        models=row["models"],
        max_budget=row["max_budget"],
        object_permission_id=permission_id,
        object_permission=None
        if permission is None
        else LiteLLM_ObjectPermissionTable(object_permission_id=permission_id, **permission),
    )
'''


def _config() -> PlatformConfig:
    values = stack_values("dev")
    values["llm_gateway"]["mcp_servers"] = {
        "docs": {
            "service": {"namespace": "tools", "name": "docs-mcp", "port": 8080},
            "secret_headers": {"Authorization": "docs_mcp_authorization"},
        },
        "tickets": {
            "url": "https://tickets.example.org/mcp",
            "secret_headers": {"X-Api-Key": "tickets_mcp_key"},
            "allowed_tools": ["echo"],
        },
    }
    values["clients"] = {
        "agent": {"mcp_servers": ["docs", "tickets"]},
        "web-app": {"mcp_servers": ["docs"]},
        "batch": {},
    }
    return parse_platform_config(values)


@dataclass
class Gateway:
    """The running proxy and its fake MCP servers."""

    proxy: RunningProxy
    docs: McpFake
    tickets: McpFake


@dataclass(frozen=True)
class Answer:
    """One MCP answer: HTTP status, and the JSON-RPC message (None when there was none)."""

    status: int
    message: dict[str, Any] | None
    body: bytes

    def tools(self) -> list[str]:
        """Names of the tools a `tools/list` answer offers."""
        assert self.message is not None and "result" in self.message, self.body
        return sorted(t["name"] for t in self.message["result"]["tools"])

    def refused(self) -> bool:
        """The call did not happen: an HTTP error, a JSON-RPC error, or a tool error."""
        if self.status >= 400 or self.message is None:
            return True
        return "error" in self.message or bool(self.message["result"].get("isError"))


def _rpc(
    gateway: Gateway,
    key: str | None,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    path: str = "/mcp/",
    extra: dict[str, str] | None = None,
) -> Answer:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        body["params"] = params
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL,
        **(extra or {}),
    }
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    connection = http.client.HTTPConnection("127.0.0.1", gateway.proxy.port, timeout=30)
    try:
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    text = raw.decode("utf-8", "replace")
    payloads = sse_data(text) if "data: " in text else ([text] if text.strip() else [])
    messages = []
    for payload in payloads:
        try:
            messages.append(json.loads(payload))
        except ValueError:
            continue
    message = next((m for m in messages if isinstance(m, dict) and m.get("id") == 7), None)
    return Answer(response.status, message, raw)


def _call(gateway: Gateway, key: str | None, tool: str, **arguments: Any) -> Answer:
    return _rpc(gateway, key, "tools/call", {"name": tool, "arguments": arguments})


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = _config()
    root = tmp_path_factory.mktemp("mcp-gateway")
    docs, tickets = McpFake("docs", root), McpFake("tickets", root)
    table = {}
    for name, client in config.clients.items():
        row = request_body(KEYS[name], client_key_settings(name, client, mcp=True))
        row.pop("key")
        table[KEYS[name]] = row
    rendered = render_litellm_config(
        config,
        api_bases={name: "http://127.0.0.1:9/v1" for name in config.inference.models},
        redis=False,
        mcp_urls={"docs": docs.url, "tickets": tickets.url},
    )
    rendered["general_settings"]["custom_auth"] = "key_table.user_api_key_auth"
    proxy_dir = root / "proxy"
    proxy_dir.mkdir()
    (proxy_dir / "key_table.py").write_text(KEY_TABLE)
    env = {
        header_env("docs", "Authorization"): DOCS_SECRET,
        header_env("tickets", "X-Api-Key"): TICKETS_SECRET,
        "LLM_PLATFORM_TEST_KEY_TABLE": json.dumps(table),
    }
    try:
        docs.start()
        tickets.start()
        with litellm_proxy(
            proxy_dir,
            "# test\n" + yaml.safe_dump(rendered, sort_keys=False),
            keys=ProxyKeys(master=MASTER_KEY, anthropic="unused", openai="unused"),
            clouds=CloudBases(anthropic="http://127.0.0.1:9", openai="http://127.0.0.1:9/v1"),
            extra_env=env,
        ) as proxy:
            yield Gateway(proxy, docs, tickets)
    finally:
        docs.stop()
        tickets.stop()


def test_each_client_lists_the_tools_of_exactly_its_servers(gateway: Gateway) -> None:
    assert _rpc(gateway, KEYS["agent"], "tools/list").tools() == [
        "docs-add",
        "docs-echo",
        "tickets-echo",  # `tickets` offers only `echo` (allowed_tools)
    ]
    assert _rpc(gateway, KEYS["web-app"], "tools/list").tools() == ["docs-add", "docs-echo"]
    assert _rpc(gateway, KEYS["batch"], "tools/list").tools() == []
    assert _rpc(gateway, MASTER_KEY, "tools/list").tools() == [
        "docs-add",
        "docs-echo",
        "tickets-echo",
    ]


def test_a_tool_call_reaches_the_server_with_its_secret_and_without_the_client_key(
    gateway: Gateway,
) -> None:
    before = len(gateway.docs.tool_calls())
    answer = _call(gateway, KEYS["agent"], "docs-echo", text="hello")
    assert not answer.refused(), answer.body
    assert answer.message is not None
    assert answer.message["result"]["content"][0]["text"] == "docs: hello"
    assert _call(gateway, KEYS["web-app"], "docs-add", a=2, b=40).message["result"][
        "structuredContent"
    ] == {"result": 42}
    calls = gateway.docs.tool_calls()[before:]
    assert len(calls) == 2
    for call in calls:
        assert call["headers"]["authorization"] == DOCS_SECRET
        seen = json.dumps(call["headers"])
        assert all(key not in seen for key in (*KEYS.values(), MASTER_KEY))
    ticket = _call(gateway, KEYS["agent"], "tickets-echo", text="t-1")
    assert ticket.message is not None and not ticket.refused(), ticket.body
    (last,) = gateway.tickets.tool_calls()[-1:]
    assert last["headers"]["x-api-key"] == TICKETS_SECRET
    assert "authorization" not in last["headers"]


def test_calls_outside_a_clients_servers_or_tools_never_reach_a_server(gateway: Gateway) -> None:
    docs_before = len(gateway.docs.tool_calls())
    tickets_before = len(gateway.tickets.tool_calls())
    attempts = [
        _call(gateway, KEYS["web-app"], "tickets-echo", text="x"),
        _call(gateway, KEYS["batch"], "docs-echo", text="x"),
        _call(gateway, KEYS["agent"], "tickets-add", a=1, b=1),  # not in allowed_tools
        _call(gateway, UNKNOWN_KEY, "docs-echo", text="x"),
        _call(gateway, None, "docs-echo", text="x"),
    ]
    assert [a.refused() for a in attempts] == [True] * len(attempts), [a.body for a in attempts]
    assert gateway.docs.tool_calls()[docs_before:] == []
    assert gateway.tickets.tool_calls()[tickets_before:] == []


def test_naming_a_server_in_a_header_or_the_path_grants_nothing(gateway: Gateway) -> None:
    """The ways LiteLLM lets a request pick servers: the `x-mcp-servers` header, `/mcp/<server>`
    and `/<server>/mcp`. None gives a key a server it may not use."""
    tickets_before = len(gateway.tickets.tool_calls())
    attempts = {
        "header": {"extra": {"x-mcp-servers": "tickets"}},
        "path": {"path": "/mcp/tickets"},
        "server route": {"path": "/tickets/mcp"},
    }
    for key in (KEYS["web-app"], KEYS["batch"], UNKNOWN_KEY):
        for how, options in attempts.items():
            listed = _rpc(gateway, key, "tools/list", **options)
            offered = [] if listed.refused() else listed.tools()
            assert not [t for t in offered if t.startswith("tickets-")], (key, how, offered)
            called = _rpc(
                gateway,
                key,
                "tools/call",
                {"name": "tickets-echo", "arguments": {"text": "x"}},
                **options,
            )
            assert called.refused(), (key, how, called.body)
    assert gateway.tickets.tool_calls()[tickets_before:] == []


def test_an_mcp_sdk_client_lists_and_calls_through_the_gateway(gateway: Gateway) -> None:
    """The `mcp` SDK's own client (as an agent would use it) against `<base>/mcp/`."""
    script = """
import asyncio, json, sys
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

async def main():
    url, key = sys.argv[1], sys.argv[2]
    async with streamablehttp_client(url, headers={"Authorization": f"Bearer {key}"}) as (r, w, _):
        async with ClientSession(r, w) as session:
            await session.initialize()
            tools = sorted(t.name for t in (await session.list_tools()).tools)
            result = await session.call_tool("docs-echo", {"text": "from the sdk"})
            print(json.dumps({"tools": tools, "text": result.content[0].text}))

asyncio.run(main())
"""
    done = subprocess.run(
        [str(PYTHON), "-c", script, f"http://127.0.0.1:{gateway.proxy.port}/mcp/", KEYS["web-app"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home())},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"tools": ["docs-add", "docs-echo"], "text": "docs: from the sdk"}


def test_the_secrets_are_only_in_the_environment(gateway: Gateway) -> None:
    """The config file names the variables; neither it nor the proxy's log holds a value."""
    config_text = (gateway.proxy.log.parent / "config.yaml").read_text()
    assert "os.environ/" + header_env("docs", "Authorization") in config_text
    assert "os.environ/" + header_env("tickets", "X-Api-Key") in config_text
    log = gateway.proxy.log.read_text()
    for secret in (DOCS_SECRET, TICKETS_SECRET):
        assert secret not in config_text and secret not in log
