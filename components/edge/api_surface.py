"""What the edge lets through to the LLM gateway, as data: routes, query, headers.

The edge proxies an allowlist, never the gateway as a whole. LiteLLM serves its admin API
(`/key/*`, `/user/*`, `/team/*`, `/model/*`, `/config/*`, spend), its UI, login and SSO,
MCP management and provider pass-through routes on the same port as the client API, so
the edge passes only:

- the client API routes named in `edge.api_routes` (`API_ROUTES`: one method and one exact
  path each), matched on the raw request target, before nginx decodes or merges anything;
- no query string but `ALLOWED_QUERY` (Anthropic's SDKs add it to `/v1/messages`): the
  routes take their parameters in the body, `/v1/models`'s query parameters (`team_id`,
  `scope`, `include_metadata`) are for admins, and a key in a query would end up in logs;
- the request headers in `FORWARDED_REQUEST_HEADERS` (and `MCP_REQUEST_HEADERS` where the
  `mcp` route is) plus the ones the edge sets itself,
  so no credential (`x-litellm-api-key`, `x-api-key`, `api-key`, `x-goog-api-key`,
  `Ocp-Apim-Subscription-Key`, `Proxy-Authorization`, `Cookie`), no LiteLLM control
  header (`x-litellm-*`: tags, end user, spend metadata, timeout, retries) and no MCP
  header but the protocol version (`x-mcp-*` pick servers and carry per-server
  credentials that would replace the servers' own) reaches it;
- every response header but those matching `HIDDEN_RESPONSE_HEADER_PATTERNS`: LiteLLM's
  own (`x-litellm-model-api-base` is the internal backend URL, `x-litellm-key-spend` the
  key's spend, ...), the provider's headers it relays as `llm_provider-*`, and the
  provider rate-limit figures it copies (they describe the platform's own accounts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import get_args

from components.config.edge import ApiRouteName


@dataclass(frozen=True)
class ApiRoute:
    """One client API route of the gateway: the only method and exact path the edge passes."""

    method: str
    path: str


API_ROUTES: Mapping[ApiRouteName, ApiRoute] = MappingProxyType(
    {
        "chat_completions": ApiRoute("POST", "/v1/chat/completions"),
        "completions": ApiRoute("POST", "/v1/completions"),
        "embeddings": ApiRoute("POST", "/v1/embeddings"),
        "models": ApiRoute("GET", "/v1/models"),
        # LiteLLM 1.83.14: proxy/anthropic_endpoints/endpoints.py (`anthropic_response`).
        "messages": ApiRoute("POST", "/v1/messages"),
        # LiteLLM 1.83.14: proxy/response_api_endpoints/endpoints.py (`responses_api`; the websocket form needs an Upgrade the edge never passes).
        "responses": ApiRoute("POST", "/v1/responses"),
        # LiteLLM 1.83.14 mounts its MCP server at /mcp (proxy_server.py `app.mount(BASE_MCP_ROUTE,
        # ...)`; POST /mcp answers a 307 to /mcp/). Stateless streamable HTTP
        # (_experimental/mcp_server/server.py `StreamableHTTPSessionManager(stateless=True)`):
        # every message is a POST and the answer an event stream, so GET (a server stream)
        # and DELETE (a session's end) have nothing to do. The per-server forms
        # (`/mcp/<server>`, `/<server>/mcp`, `/toolset/<name>/mcp`), the SSE transport and
        # the REST tools (`/mcp-rest/...`) stay out: `/mcp/` offers every server the key may use.
        "mcp": ApiRoute("POST", "/mcp/"),
    }
)
assert set(API_ROUTES) == set(get_args(ApiRouteName)), "a route name without a route"

ALLOWED_QUERY = "beta=true"
"""The one query string the edge accepts (and passes): the Anthropic SDKs' beta marker."""

FORWARDED_REQUEST_HEADERS = (
    "Content-Type",
    "Accept",
    "User-Agent",
    "OpenAI-Beta",
    "anthropic-version",
    "anthropic-beta",
)
"""Client request headers passed upstream; every other one the client sends is dropped."""

MCP_REQUEST_HEADERS = ("MCP-Protocol-Version",)
"""Passed too where the `mcp` route is: the protocol version an MCP client sends with each
message after the first (a server without it assumes the oldest streamable-HTTP version)."""


def forwarded_headers(routes: tuple[ApiRoute, ...]) -> tuple[str, ...]:
    """The client request headers the edge passes for these routes."""
    mcp = API_ROUTES["mcp"] in routes
    return FORWARDED_REQUEST_HEADERS + (MCP_REQUEST_HEADERS if mcp else ())


HIDDEN_RESPONSE_HEADER_PATTERNS = ("x-litellm-*", "llm_provider-*", "x-ratelimit-*")
"""Upstream response headers cleared before the client sees them (`*`: any suffix)."""


def routes(names: tuple[ApiRouteName, ...]) -> tuple[ApiRoute, ...]:
    """The routes of these names, in the order given."""
    return tuple(API_ROUTES[name] for name in names)
