"""Config of the MCP servers the LLM gateway fronts (LiteLLM's MCP gateway).

Each server is either a Service in the cluster or a remote HTTPS URL. Headers that carry
a credential are given as secret config keys, never as values: the gateway reads each
from its Secret through the environment (`os.environ/...` in its config file). Clients
reach the servers through the gateway with their own keys, each only the servers its
`clients.<name>.mcp_servers` lists.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, model_validator

from ._base import DnsLabel, FrozenModel, Problem, SecretConfigKey, raise_if_problems

McpServerName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
"""Lower-case letters, digits and `_`: LiteLLM names each tool `<server>-<tool>` and refuses
a server name with `-` in it (`MCP_TOOL_PREFIX_SEPARATOR`, litellm 1.83.14
proxy/_experimental/mcp_server/utils.py `validate_mcp_server_name`)."""

HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")]
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]

RESERVED_HEADERS = frozenset(
    {
        "accept",
        "connection",
        "content-length",
        "content-type",
        "host",
        "mcp-protocol-version",
        "mcp-session-id",
        "transfer-encoding",
    }
)
"""Headers the gateway's MCP client sets itself for the protocol; not for credentials."""


def header_env(server: str, header: str) -> str:
    """The gateway's environment variable holding a server's secret header (from its Secret).

    `MCP_<SERVER>__<HEADER>` upper-cased, `-` as `_`; the double `_` keeps `a` + `b-c` and
    `a_b` + `c` apart, and `LlmGatewayConfig` refuses any two that still meet."""
    return f"MCP_{server.upper()}__{re.sub(r'[^A-Z0-9]', '_', header.upper())}"


class McpService(FrozenModel):
    """An MCP server running in the cluster, reached through its Service."""

    namespace: DnsLabel = Field(description="Namespace of the server's Service.")
    name: DnsLabel = Field(description="The Service's name.")
    port: int = Field(ge=1, le=65535, description="The Service's port.")
    path: str = Field(
        default="/mcp",
        pattern=r"^/[A-Za-z0-9._~/-]*$",
        description="The server's streamable-HTTP (or SSE) endpoint on that port.",
    )

    @property
    def url(self) -> str:
        """The Service's in-cluster URL (the mesh encrypts it when both ends are meshed)."""
        return f"http://{self.name}.{self.namespace}.svc.cluster.local:{self.port}{self.path}"


class McpServerConfig(FrozenModel):
    """One MCP server registered in the gateway: in the cluster (`service`) or remote (`url`)."""

    service: McpService | None = Field(
        default=None, description="An MCP server in the cluster; the gateway may reach it."
    )
    url: str | None = Field(
        default=None,
        pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]*)?$",
        description="A remote MCP server, over HTTPS only (its headers carry credentials).",
    )
    transport: Literal["http", "sse"] = Field(
        default="http", description="`http` (streamable HTTP) or the older `sse`."
    )
    secret_headers: dict[HeaderName, SecretConfigKey] = Field(
        default_factory=dict,
        description="Headers sent with every call to the server, each read from a secret "
        "config key (`pulumi config set --secret <key> 'Bearer ...'`), e.g. "
        "`Authorization: github_mcp_authorization`.",
    )
    allowed_tools: tuple[ToolName, ...] = Field(
        default=(), description="Only these tools of the server are offered; empty: all."
    )
    description: str = Field(
        default="",
        max_length=200,
        description="What the server offers, in LiteLLM's list of MCP servers.",
    )

    @model_validator(mode="after")
    def _one_place(self) -> McpServerConfig:
        problems: list[Problem] = []
        if (self.service is None) == (self.url is None):
            problems.append(
                Problem(
                    ("url",),
                    "give exactly one of `service` (in the cluster) and `url` (remote)",
                    self.url,
                )
            )
        seen: set[str] = set()
        for header in self.secret_headers:
            lower = header.lower()
            if lower in RESERVED_HEADERS:
                problems.append(
                    Problem(
                        ("secret_headers", header),
                        f"set by the gateway for the protocol; not one of {sorted(RESERVED_HEADERS)}",
                        header,
                    )
                )
            if lower in seen:
                problems.append(
                    Problem(("secret_headers", header), "given twice (names ignore case)", header)
                )
            seen.add(lower)
        raise_if_problems(problems)
        return self

    @property
    def remote_port(self) -> int | None:
        """The TCP port of a remote server (443 unless its URL names one); None in-cluster."""
        if self.url is None:
            return None
        return urlsplit(self.url).port or 443

    @property
    def endpoint(self) -> str:
        """The URL the gateway calls."""
        if self.service is not None:
            return self.service.url
        assert self.url is not None
        return self.url
