"""The stack outputs contract: the export, the published schema, and the typed reader."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi.runtime import MockResourceArgs

from components.outputs import (
    PlatformOutputs,
    PlatformStackOutputs,
    outputs_schema,
    secret_fields,
)
from tests.support import ROOT
from tools import mock_engine
from tools.mock_engine import ProgramRun, run_program

SCHEMA_FILE = ROOT / "docs" / "outputs.schema.json"
StackRun = Callable[[str], ProgramRun]


def test_published_schema_is_in_sync() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == outputs_schema(), (
        "docs/outputs.schema.json is stale: run `make config-docs`"
    )


def test_secrets_are_marked_in_the_schema() -> None:
    assert secret_fields() == {
        "kubeconfig",
        "master_key",
        "client_keys",
        "edge_home_wireguard_conf",
    }
    properties = outputs_schema()["properties"]
    assert {n for n, p in properties.items() if p.get("x-pulumi-secret")} == secret_fields()


def test_the_reader_covers_every_field_with_the_same_name() -> None:
    reader_fields = [f.name for f in dataclasses.fields(PlatformStackOutputs)]
    assert reader_fields == list(PlatformOutputs.model_fields)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_stack_exports_exactly_the_contract(stack_run: StackRun, stack: str) -> None:
    outputs = stack_run(stack).outputs
    assert set(outputs) == set(PlatformOutputs.model_fields)
    for name in secret_fields():
        assert outputs[name] == "[secret]", f"{name} must be exported as a secret"
    clear = {k: v for k, v in outputs.items() if k not in secret_fields()}
    model = PlatformOutputs.model_validate(
        {
            **clear,
            "kubeconfig": "x",
            "master_key": "x",
            "client_keys": {},
            "edge_home_wireguard_conf": None,
        }
    )
    assert model.environment == stack
    assert model.api_base_url.startswith("https://") and model.api_base_url.endswith("/v1")
    assert model.models


def test_the_reader_returns_typed_outputs_of_a_stack_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published = {
        "environment": "prod",
        "api_base_url": "https://llm.example.org/v1",
        "internal_api_base_url": "http://litellm.llm-gateway.svc.cluster.local:4000/v1",
        "models": ["qwen3-8b"],
        "namespaces": {"inference": "inference"},
        "root_ca_pem": "-----BEGIN CERTIFICATE-----\n...",
        "root_ca_expiry": "2036-11-24T00:00:00Z",
        "mesh_trust_anchor_expiry": None,
        "grafana_url": None,
        "edge_public_ip": "192.0.2.10",
        "edge_wireguard_public_key": "k" * 43 + "=",
        "edge_ssm_parameters": {"api_keys": "/llm-platform/prod/edge/api-keys"},
        "edge_home_wireguard_conf": "[Interface]",
        "embeddings_model": None,
        "vector_db_url": None,
        "vector_db_api_key_secret": None,
        "kubeconfig": "apiVersion: v1",
        "master_key": "sk-master",
        "client_keys": {"ci": "sk-edge-ci"},
    }
    original = mock_engine.RenderMocks.new_resource

    def new_resource(self: Any, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {
                "name": args.name,
                "outputs": published,
                "secretOutputNames": [
                    "kubeconfig",
                    "master_key",
                    "client_keys",
                    "edge_home_wireguard_conf",
                ],
            }
        return original(self, args)

    monkeypatch.setattr(mock_engine.RenderMocks, "new_resource", new_resource)
    seen: dict[str, Any] = {}

    def program() -> dict[str, Any]:
        platform = PlatformStackOutputs.from_reference(
            pulumi.StackReference("team/llm-platform/prod")
        )
        pulumi.export("api", platform.api_base_url)
        pulumi.export("master", platform.master_key)
        pulumi.export("validated_models", platform.validated().apply(lambda m: m.models))
        seen["platform"] = platform
        return {}

    run = run_program(stack="consumer", config={}, secret_keys=[], program=program)
    assert run.outputs["api"] == "https://llm.example.org/v1"
    assert run.outputs["master"] == "[secret]", "secret outputs stay secret through the reader"
    assert run.outputs["validated_models"] == "[secret]", "a whole made with secrets is secret"
    assert isinstance(seen["platform"].api_base_url, pulumi.Output)
