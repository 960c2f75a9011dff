"""The Linkerd mesh under the recording mocks: identity chain, ordering, HA, authorization."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.chart_values import undocumented_keys
from components.mesh.values import (
    cni_values,
    control_plane_values,
    crds_values,
    platform_authorizations,
)
from tests.support import dependency_names, run_stack, stack_config, stack_values
from tests.unit.manifest_checks import validate_core, validate_custom_resource
from tools.mock_engine import ProgramRun, RecordedResource

StackRun = Callable[[str], ProgramRun]
RELEASE = "kubernetes:helm.sh/v3:Release"


def _mesh(run: ProgramRun) -> list[RecordedResource]:
    return [r for r in run.resources if r.name.startswith("llm-mesh-")]


def _named(run: ProgramRun, name: str) -> RecordedResource:
    return run.named(name)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_identity_chain_trust_anchor_issuer_certificate(stack_run: StackRun, stack: str) -> None:
    run = stack_run(stack)
    mesh = stack_config(stack).mesh
    key = _named(run, "llm-mesh-trust-anchor-key")
    assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")
    anchor = _named(run, "llm-mesh-trust-anchor")
    assert anchor.inputs["isCaCertificate"] is True
    assert anchor.inputs["validityPeriodHours"] == mesh.trust_anchor_days * 24
    issuer = _named(run, "llm-mesh-trust-anchor-issuer")
    assert issuer.inputs["spec"] == {"ca": {"secretName": "linkerd-trust-anchor"}}
    certificate = _named(run, "llm-mesh-identity-issuer")
    spec = certificate.inputs["spec"]
    assert spec["issuerRef"]["name"] == "linkerd-trust-anchor"
    assert spec["secretName"] == "linkerd-identity-issuer"
    assert spec["duration"] == f"{mesh.identity_issuer_hours}h0m0s"
    assert spec["renewBefore"] == f"{mesh.identity_issuer_renew_before_hours}h0m0s"
    assert spec["isCA"] is True and spec["privateKey"]["algorithm"] == "ECDSA"
    assert _named(run, "llm-mesh-trust-anchor-secret").inputs["stringData"] == "[secret]"
    roots = _named(run, "llm-mesh-trust-roots")
    assert roots.inputs["data"]["ca-bundle.crt"].startswith("-----BEGIN CERTIFICATE-----")
    for resource in (issuer, certificate):
        validate_custom_resource(resource)
    validate_core(roots)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_ordering_crds_and_cert_manager_before_issuers_issuer_before_control_plane(
    stack_run: StackRun, stack: str
) -> None:
    run = stack_run(stack)
    assert "llm-pki-cert-manager" in dependency_names(run, _named(run, "llm-mesh-identity-issuer"))
    control_plane = dependency_names(run, _named(run, "llm-mesh-control-plane"))
    assert {"llm-mesh-crds", "llm-mesh-cni", "llm-mesh-identity-issuer"} <= control_plane
    for resource in _mesh(run):
        if resource.inputs.get("apiVersion", "").startswith("policy.linkerd.io/"):
            assert "llm-mesh-crds" in dependency_names(run, resource)
    gateway = run.named("llm-gateway-deployment")
    assert "llm-mesh-control-plane" in dependency_names(run, gateway)


def test_ha_on_prod_single_replica_on_dev(stack_run: StackRun) -> None:
    prod = _named(stack_run("prod"), "llm-mesh-control-plane").inputs["values"]
    dev = _named(stack_run("dev"), "llm-mesh-control-plane").inputs["values"]
    assert prod["controllerReplicas"] == 3 and dev["controllerReplicas"] == 1
    assert prod["enablePodDisruptionBudget"] and prod["enablePodAntiAffinity"]
    assert "enablePodDisruptionBudget" not in dev
    for values in (prod, dev):
        assert values["identity"] == {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}}
        assert values["proxy"]["disableInboundProtocolDetectTimeout"] is True


def test_kube_system_is_never_behind_the_mesh_webhooks() -> None:
    values = control_plane_values(prod=True)
    for webhook in ("proxyInjector", "profileValidator", "policyValidator"):
        expressions = values[webhook]["namespaceSelector"]["matchExpressions"]
        excluded = [e for e in expressions if e["key"] == "kubernetes.io/metadata.name"]
        assert excluded and "kube-system" in excluded[0]["values"]
        assert excluded[0]["operator"] == "NotIn"


def test_chart_values_are_documented_keys() -> None:
    assert undocumented_keys("linkerd-control-plane", control_plane_values(prod=True)) == []
    assert undocumented_keys("linkerd-control-plane", control_plane_values(prod=False)) == []
    assert undocumented_keys("linkerd2-cni", cni_values()) == []
    assert undocumented_keys("linkerd-crds", crds_values()) == []


def test_only_the_gateway_calls_models_and_only_the_ingress_calls_the_gateway(
    stack_run: StackRun,
) -> None:
    bodies = platform_authorizations()
    authns = {b["metadata"]["name"]: b for b in bodies if b["kind"] == "MeshTLSAuthentication"}
    policies = [b for b in bodies if b["kind"] == "AuthorizationPolicy"]
    allowed = {}
    for policy in policies:
        server = policy["spec"]["targetRef"]["name"]
        (ref,) = policy["spec"]["requiredAuthenticationRefs"]
        (identity,) = authns[ref["name"]]["spec"]["identityRefs"]
        allowed[server] = (identity["namespace"], identity["name"])
    assert allowed == {
        "model-servers": ("llm-gateway", "litellm"),
        "litellm": ("traefik", "traefik"),
    }
    recorded = [
        r
        for r in stack_run("prod").resources
        if r.inputs.get("apiVersion", "").startswith("policy.linkerd.io/")
    ]
    assert len(recorded) == len(bodies)
    for resource in recorded:
        validate_custom_resource(resource)


def test_viz_only_when_asked_and_nothing_without_the_mesh() -> None:
    values = stack_values("dev")
    values["mesh"] = {"enabled": True, "viz": True}
    names = {r.name for r in run_stack(values, "dev").of_type(RELEASE)}
    assert "llm-mesh-viz" in names
    values["mesh"] = {"enabled": False}
    run = run_stack(values, "dev")
    assert _mesh(run) == []
    assert run.outputs["mesh_trust_anchor_expiry"] is None
