"""The stack outputs contract: what every stack exports, as one typed model.

`__main__.py` exports exactly these fields through `export_outputs` (secret fields are
wrapped as secrets there, whatever the caller passed). Other Pulumi projects read them
through `PlatformStackOutputs.from_reference(pulumi.StackReference(...))` and get typed
Outputs (`platform.api_base_url`) instead of string keys. The JSON Schema of the model
is published as `docs/outputs.schema.json`, kept in sync by a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

SECRET: JsonDict = {"x-pulumi-secret": True}
"""JSON Schema mark of a field exported as a Pulumi secret."""


class PlatformOutputs(BaseModel):
    """Everything a platform stack exports, by output name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: str = Field(description="Stack environment: dev or prod.")
    api_base_url: str = Field(
        description="OpenAI-compatible base URL clients use (the edge gateway when enabled)."
    )
    internal_api_base_url: str = Field(
        description="In-cluster base URL of the LLM gateway, for workloads in the cluster."
    )
    models: list[str] = Field(description="Model names the LLM gateway serves.")
    namespaces: dict[str, str] = Field(description="Platform namespaces by area name.")
    root_ca_pem: str = Field(description="Internal root CA certificate (PEM, public part).")
    root_ca_expiry: str = Field(description="Root CA expiry, RFC 3339.")
    mesh_trust_anchor_expiry: str | None = Field(
        description="Linkerd trust anchor expiry, RFC 3339; null without the mesh."
    )
    grafana_url: str | None = Field(description="Grafana URL; null without observability.")
    edge_public_ip: str | None = Field(description="Elastic IP of the edge gateway.")
    edge_wireguard_public_key: str | None = Field(
        description="WireGuard public key of the edge gateway."
    )
    edge_ssm_parameters: dict[str, str] | None = Field(
        description="SSM parameter names the edge gateway reads, by purpose."
    )
    edge_home_wireguard_conf: str | None = Field(
        description="wg0.conf of the home tunnel end, private key included, for a manual "
        "install when the program does not bootstrap the cluster.",
        json_schema_extra=SECRET,
    )
    embeddings_model: str | None = Field(description="Embeddings model name; null without RAG.")
    vector_db_url: str | None = Field(description="In-cluster URL of the vector database.")
    vector_db_api_key_secret: str | None = Field(
        description="`namespace/name` of the Secret holding the vector database API key."
    )
    kubeconfig: str = Field(description="Kubeconfig of the cluster.", json_schema_extra=SECRET)
    master_key: str = Field(description="LiteLLM master key.", json_schema_extra=SECRET)
    client_keys: dict[str, str] = Field(
        description="API key of each named client at the edge.", json_schema_extra=SECRET
    )


def secret_fields() -> frozenset[str]:
    """Names of the outputs exported as secrets."""
    return frozenset(
        name
        for name, field in PlatformOutputs.model_fields.items()
        if isinstance(field.json_schema_extra, dict)
        and field.json_schema_extra.get("x-pulumi-secret")
    )


def export_outputs(values: Mapping[str, pulumi.Input[Any]]) -> None:
    """Export exactly the contract's fields; secret fields always as secrets."""
    expected = set(PlatformOutputs.model_fields)
    missing, extra = expected - set(values), set(values) - expected
    if missing or extra:
        raise ValueError(
            f"stack outputs do not match the contract: missing {sorted(missing)}, "
            f"unexpected {sorted(extra)}"
        )
    secrets = secret_fields()
    for name in PlatformOutputs.model_fields:
        value = values[name]
        pulumi.export(name, pulumi.Output.secret(value) if name in secrets else value)


def outputs_schema() -> dict[str, Any]:
    """The JSON Schema of the contract, as published in `docs/outputs.schema.json`."""
    schema = PlatformOutputs.model_json_schema()
    schema["$id"] = "https://llm-platform.invalid/schemas/outputs.schema.json"
    return schema


@dataclass(frozen=True)
class PlatformStackOutputs:
    """A platform stack's outputs as typed Outputs, for other Pulumi projects.

    ```python
    platform = PlatformStackOutputs.from_reference(pulumi.StackReference("org/llm-platform/prod"))
    app_env = {"OPENAI_BASE_URL": platform.api_base_url}
    ```
    """

    environment: pulumi.Output[str]
    api_base_url: pulumi.Output[str]
    internal_api_base_url: pulumi.Output[str]
    models: pulumi.Output[list[str]]
    namespaces: pulumi.Output[dict[str, str]]
    root_ca_pem: pulumi.Output[str]
    root_ca_expiry: pulumi.Output[str]
    mesh_trust_anchor_expiry: pulumi.Output[str | None]
    grafana_url: pulumi.Output[str | None]
    edge_public_ip: pulumi.Output[str | None]
    edge_wireguard_public_key: pulumi.Output[str | None]
    edge_ssm_parameters: pulumi.Output[dict[str, str] | None]
    edge_home_wireguard_conf: pulumi.Output[str | None]
    embeddings_model: pulumi.Output[str | None]
    vector_db_url: pulumi.Output[str | None]
    vector_db_api_key_secret: pulumi.Output[str | None]
    kubeconfig: pulumi.Output[str]
    master_key: pulumi.Output[str]
    client_keys: pulumi.Output[dict[str, str]]

    @classmethod
    def from_reference(cls, reference: pulumi.StackReference) -> PlatformStackOutputs:
        """Typed Outputs of a referenced platform stack (secrets stay secret)."""
        return cls(**{name: reference.get_output(name) for name in PlatformOutputs.model_fields})

    def validated(self) -> pulumi.Output[PlatformOutputs]:
        """All outputs checked against the contract, as one model (fails on a mismatch)."""
        values = {name: getattr(self, name) for name in PlatformOutputs.model_fields}
        return pulumi.Output.all(**values).apply(lambda v: PlatformOutputs.model_validate(v))
