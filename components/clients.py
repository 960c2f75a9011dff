"""ClientKeys: the API keys of each named client, generated once and kept in state.

Each client in config gets two keys (pulumi-random, 40 alphanumerics, secret Outputs):
- `edge_keys[name]`: what the client sends to the edge gateway (`Authorization: Bearer ...`);
- `gateway_keys[name]`: the client's LiteLLM virtual key, which the edge sends upstream
  in place of the client's key, so spend and budgets are attributed per client while the
  cluster never sees the key the client holds.

Rotating a key: `pulumi up --replace <urn of its RandomPassword>` (README, "Rotate a key").
Expects no provider: pulumi-random's default provider is used (it touches nothing outside).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.config import ClientConfig

KEY_LENGTH = 40


@dataclass(frozen=True, kw_only=True)
class ClientKeysArgs:
    """Inputs of the key generator."""

    clients: Mapping[str, ClientConfig]
    """Named clients from config; a key pair per name, named after it (renames replace)."""


class ClientKeys(pulumi.ComponentResource):
    """Generated API keys of the named clients."""

    edge_keys: dict[str, pulumi.Output[str]]
    gateway_keys: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ClientKeysArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:clients:ClientKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.edge_keys = {}
        self.gateway_keys = {}
        for client in sorted(args.clients):
            edge = random.RandomPassword(
                f"{name}-{client}-edge", length=KEY_LENGTH, special=False, opts=child
            )
            gateway = random.RandomPassword(
                f"{name}-{client}-gateway", length=KEY_LENGTH, special=False, opts=child
            )
            self.edge_keys[client] = pulumi.Output.secret(
                pulumi.Output.concat("sk-edge-", edge.result)
            )
            self.gateway_keys[client] = pulumi.Output.secret(
                pulumi.Output.concat("sk-", gateway.result)
            )
        self.register_outputs({"clients": sorted(args.clients)})
