"""The Linkerd mesh under the recording mocks, and its pure builders.

Identity chain and durations, ordering (CRDs and cert-manager before the custom
resources, the issuer before the control plane), dev vs prod, the webhooks' namespace
selector, the authorization policy (also against the real pods of the whole program),
viz on/off, trust-anchor rotation, and schema validation of every object.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

import pytest
from pydantic import ValidationError

from components import versions
from components.config import MeshConfig
from components.mesh import policy as mesh_policy
from components.mesh.linkerd import ServiceMesh, ServiceMeshArgs
from components.mesh.values import (
    WEBHOOK_EXEMPT_NAMESPACES,
    control_plane_values,
)
from tests.support import dependency_names, stack_config, stack_values, unread_values
from tests.unit.manifest_checks import validate_core, validate_custom_resource
from tools.mock_engine import ProgramRun, RecordedResource, config_for_engine, run_program

StackRun = Callable[[str], ProgramRun]
RELEASE = "kubernetes:helm.sh/v3:Release"
POLICY_TYPE_PREFIX = "kubernetes:policy.linkerd.io/"
CERT_MANAGER = "fake-cert-manager"
_RUNS: dict[tuple[str, str], ProgramRun] = {}


def _run(stack: str, **mesh: Any) -> ProgramRun:
    """The mesh alone (with a stand-in for cert-manager's release) under a stack's config."""
    values = stack_values(stack)
    values["mesh"] = {**values.get("mesh", {}), **mesh}
    key = (stack, repr(sorted(values["mesh"].items())))
    if key in _RUNS:
        return _RUNS[key]

    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        from components.config import parse_platform_config

        config = parse_platform_config(values)
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        cert_manager = k8s.helm.v3.Release(
            CERT_MANAGER, chart="cert-manager", opts=pulumi.ResourceOptions(provider=provider)
        )
        mesh = ServiceMesh(
            "mesh",
            ServiceMeshArgs(config=config, provider=provider, cert_manager_ready=[cert_manager]),
        )
        pulumi.export("trust_anchor_pem", mesh.trust_anchor_pem)
        pulumi.export("trust_anchor_expiry", mesh.trust_anchor_expiry)
        return {"mesh": mesh}

    _RUNS[key] = run_program(
        stack=stack, config=config_for_engine(values), secret_keys=[], program=program
    )
    return _RUNS[key]


def _kind(run: ProgramRun, kind: str) -> list[RecordedResource]:
    return [r for r in run.resources if r.custom and r.inputs.get("kind") == kind]


def _policies(run: ProgramRun) -> list[RecordedResource]:
    return [r for r in run.resources if r.type.startswith(POLICY_TYPE_PREFIX)]


def _deps(run: ProgramRun, resource: RecordedResource) -> set[str]:
    return dependency_names(run, resource)


# --- config ---------------------------------------------------------------------------


def test_mesh_config_rules_name_the_bad_field() -> None:
    assert MeshConfig().signing_anchor == "v1"
    assert MeshConfig(trust_anchors=("v1", "v2")).signing_anchor == "v1"
    assert MeshConfig(trust_anchors=("v1", "v2"), signing_trust_anchor="v2").signing_anchor == "v2"
    bad = [
        ({"trust_anchors": ("v1", "v1")}, "trust_anchors"),
        ({"signing_trust_anchor": "v2"}, "signing_trust_anchor"),
        ({"identity_issuer_renew_before_hours": 48}, "identity_issuer_renew_before_hours"),
        # a workload certificate (24 h) must never outlive the issuer that signed it
        ({"identity_issuer_renew_before_hours": 24}, "identity_issuer_renew_before_hours"),
        ({"trust_anchors": ()}, "trust_anchors"),
        ({"trust_anchors": ("v1", "v2", "v3")}, "trust_anchors"),
        ({"scrape_cidrs": ()}, "scrape_cidrs"),
    ]
    for fields, path in bad:
        with pytest.raises(ValidationError, match=path):
            MeshConfig(**fields)


# --- identity chain -------------------------------------------------------------------


def _identity_issuer(run: ProgramRun) -> RecordedResource:
    (certificate,) = [
        r
        for r in _kind(run, "Certificate")
        if r.inputs["metadata"]["name"] == "linkerd-identity-issuer"
    ]
    return certificate


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_identity_chain_algorithms_and_durations(stack: str) -> None:
    run = _run(stack)
    mesh = stack_config(stack).mesh
    prod = stack == "prod"
    key = run.named("mesh-trust-anchor-v1-key")
    assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")
    assert key.protect is prod  # a lost anchor key breaks every proxy's trust
    anchor = run.named("mesh-trust-anchor-v1")
    assert anchor.inputs["isCaCertificate"] is True
    assert anchor.inputs["maxPathLength"] == 1  # anchor -> identity issuer -> workloads
    assert anchor.inputs["validityPeriodHours"] == mesh.trust_anchor_days * 24
    assert sorted(anchor.inputs["allowedUses"]) == ["cert_signing", "crl_signing"]
    assert "earlyRenewalHours" not in anchor.inputs  # rotation is deliberate, see docs

    (secret,) = _kind(run, "Secret")
    (issuer,) = _kind(run, "Issuer")
    certificate = _identity_issuer(run)
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert secret.inputs["stringData"] == "[secret]"
    assert issuer.inputs["spec"] == {"ca": {"secretName": secret.inputs["metadata"]["name"]}}
    spec = certificate.inputs["spec"]
    assert (
        certificate.inputs["metadata"]["name"] == spec["secretName"] == ("linkerd-identity-issuer")
    )
    assert spec["issuerRef"] == {
        "name": issuer.inputs["metadata"]["name"],
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert spec["duration"] == f"{mesh.identity_issuer_hours}h0m0s"
    assert spec["renewBefore"] == f"{mesh.identity_issuer_renew_before_hours}h0m0s"
    assert spec["isCA"] is True
    assert (spec["privateKey"]["algorithm"], spec["privateKey"]["size"]) == ("ECDSA", 256)
    assert sorted(spec["usages"]) == ["cert sign", "client auth", "crl sign", "server auth"]
    for resource in (secret, issuer, certificate):
        assert resource.inputs["metadata"]["namespace"] == "linkerd"
    for resource in (issuer, certificate):
        assert resource.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == (
            "condition=Ready"
        )
        validate_custom_resource(resource)


def test_chart_reads_cert_manager_identity_and_the_anchor_bundle() -> None:
    run = _run("prod")
    values = run.named("mesh-control-plane").inputs["values"]
    assert values["identity"] == {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}}
    (roots,) = _kind(run, "ConfigMap")
    assert roots.inputs["metadata"]["name"] == "linkerd-identity-trust-roots"
    bundle = roots.inputs["data"]["ca-bundle.crt"]
    assert bundle.startswith("-----BEGIN CERTIFICATE-----")
    assert values["identityTrustAnchorsPEM"] == bundle == run.outputs["trust_anchor_pem"]
    # the signing anchor's end of validity (a placeholder under the mocks)
    assert "validity_period_hours" in run.outputs["trust_anchor_expiry"]
    validate_core(roots)
    (secret,) = _kind(run, "Secret")
    validate_core(secret)


def test_rotation_bundles_both_anchors_and_moves_only_the_issuer() -> None:
    both = _run("prod", trust_anchors=["v1", "v2"])
    bundle = both.named("mesh-control-plane").inputs["values"]["identityTrustAnchorsPEM"]
    assert "mesh-trust-anchor-v1," in bundle and "mesh-trust-anchor-v2," in bundle
    assert both.outputs["trust_anchor_pem"] == bundle
    # step 1 keeps signing with v1: adding an anchor changes no issued certificate
    (issuer,) = _kind(both, "Issuer")
    assert issuer.inputs["metadata"]["name"] == "linkerd-trust-anchor-v1"
    # step 2 moves the identity issuer to v2's Issuer; only the signing key is in-cluster
    moved = _run("prod", trust_anchors=["v1", "v2"], signing_trust_anchor="v2")
    (issuer,) = _kind(moved, "Issuer")
    (secret,) = _kind(moved, "Secret")
    certificate = _identity_issuer(moved)
    assert (
        issuer.inputs["metadata"]["name"]
        == secret.inputs["metadata"]["name"]
        == ("linkerd-trust-anchor-v2")
    )
    assert certificate.inputs["spec"]["issuerRef"]["name"] == "linkerd-trust-anchor-v2"
    # the anchors keep their resource names: v1's key is not replaced by the change
    assert moved.named("mesh-trust-anchor-v1-key").protect is True
    assert moved.named("mesh-trust-anchor-v2").inputs["subject"]["commonName"].startswith("v2.")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_webhooks_serve_certificates_from_the_platform_ca_not_from_the_chart(stack: str) -> None:
    run = _run(stack)
    values = run.named("mesh-control-plane").inputs["values"]
    issuer = stack_config(stack).pki.ca_issuer_name
    certificates = {
        r.inputs["metadata"]["name"]: r
        for r in _kind(run, "Certificate")
        if r.inputs["metadata"]["name"] != "linkerd-identity-issuer"
    }
    assert set(certificates) == {
        "linkerd-proxy-injector",
        "linkerd-sp-validator",
        "linkerd-policy-validator",
    }
    for key, service in (
        ("proxyInjector", "linkerd-proxy-injector"),
        ("profileValidator", "linkerd-sp-validator"),
        ("policyValidator", "linkerd-policy-validator"),
    ):
        webhook = values[key]
        # the chart then neither generates a key pair nor writes a caBundle
        assert webhook["externalSecret"] is True
        certificate = certificates[service]
        namespace = certificate.inputs["metadata"]["namespace"]
        assert webhook["injectCaFrom"] == f"{namespace}/{service}"
        spec = certificate.inputs["spec"]
        assert spec["secretName"] == f"{service}-k8s-tls"  # the Secret the chart mounts
        assert spec["dnsNames"] == [f"{service}.{namespace}.svc"]
        assert spec["issuerRef"] == {
            "name": issuer,
            "kind": "ClusterIssuer",
            "group": "cert-manager.io",
        }
        assert spec["usages"] == ["server auth"] and spec["isCA"] is False
        # the control plane starts once cert-manager has issued it
        assert certificate.name in _deps(run, run.named("mesh-control-plane"))
    # the heartbeat schedule is fixed, not derived from the time of templating
    assert re.fullmatch(r"\d+ \d+ \* \* \*", values["heartbeatSchedule"])


# --- ordering ---------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_ordering_of_crds_cert_manager_issuer_and_control_plane(stack: str) -> None:
    run = _run(stack)
    (issuer,) = _kind(run, "Issuer")
    certificate = _identity_issuer(run)
    assert {CERT_MANAGER, "mesh-trust-anchor-v1-secret"} <= _deps(run, issuer)
    assert {CERT_MANAGER, "mesh-trust-anchor-v1-issuer"} <= _deps(run, certificate)
    assert {"mesh-crds", "mesh-cni", "mesh-trust-roots", "mesh-identity-issuer"} <= _deps(
        run, run.named("mesh-control-plane")
    )
    policies = _policies(run)
    assert policies
    for resource in policies:
        # the CRDs, and the policy validator webhook that fails closed on prod
        assert {"mesh-crds", "mesh-control-plane"} <= _deps(run, resource)
    mesh = run.named("mesh")
    for resource in run.resources:
        if resource.parent == mesh.urn and resource.type.startswith("kubernetes:"):
            assert (resource.provider or "").endswith("::pulumi:providers:kubernetes::k8s")


def test_releases_are_pinned_and_awaited() -> None:
    run = _run("prod")
    expected = {
        "mesh-crds": versions.LINKERD_CRDS,
        "mesh-cni": versions.LINKERD2_CNI,
        "mesh-control-plane": versions.LINKERD_CONTROL_PLANE,
    }
    for name, chart in expected.items():
        inputs = run.named(name).inputs
        assert (inputs["chart"], inputs["version"]) == (chart.name, chart.version)
        assert inputs["repositoryOpts"]["repo"] == chart.repo
        assert inputs.get("skipAwait") is False
    assert run.named("mesh-cni").inputs["values"]["destCNINetDir"].startswith("/var/lib/rancher")


def test_the_whole_program_issues_linkerd_identity_after_cert_manager(
    stack_run: StackRun,
) -> None:
    run = stack_run("prod")
    (certificate,) = [
        r
        for r in _kind(run, "Certificate")
        if r.inputs["metadata"]["name"] == "linkerd-identity-issuer"
    ]
    releases = {r.name: r for r in run.of_type(RELEASE)}
    dependencies = _deps(run, certificate)
    assert any(releases[n].inputs["chart"] == "cert-manager" for n in dependencies if n in releases)


def test_policy_objects_wait_for_their_namespaces() -> None:
    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        on = pulumi.ResourceOptions(provider=provider)
        created = {
            ns: k8s.core.v1.Namespace(f"ns-{ns}", metadata={"name": ns}, opts=on).metadata["name"]
            for ns in ("inference", "llm-gateway")
        }
        mesh = ServiceMesh(
            "mesh",
            ServiceMeshArgs(config=stack_config("dev"), provider=provider, namespaces=created),
        )
        return {"mesh": mesh}

    values = stack_values("dev")
    run = run_program(
        stack="dev", config=config_for_engine(values), secret_keys=[], program=program
    )
    policies = _policies(run)
    assert len(policies) == 2 * 10
    for resource in policies:
        namespace = resource.inputs["metadata"]["namespace"]
        assert f"ns-{namespace}" in _deps(run, resource)


# --- values: dev vs prod, webhooks, long streams -----------------------------------------


def test_prod_gets_the_chart_ha_values_and_dev_a_single_replica() -> None:
    prod = _run("prod").named("mesh-control-plane").inputs["values"]
    dev = _run("dev").named("mesh-control-plane").inputs["values"]
    assert prod["controllerReplicas"] == 3 and dev["controllerReplicas"] == 1
    assert prod["enablePodDisruptionBudget"] is True and prod["enablePodAntiAffinity"] is True
    assert prod["webhookFailurePolicy"] == "Fail"
    for component in ("destination", "identity", "proxyInjector", "spValidator"):
        assert prod[f"{component}Resources"]["cpu"]["request"] == "100m"
    assert prod["proxy"]["resources"]["memory"] == {"request": "20Mi", "limit": "250Mi"}
    for key in ("enablePodDisruptionBudget", "enablePodAntiAffinity", "webhookFailurePolicy"):
        assert key not in dev


def test_the_values_check_catches_a_misspelled_ha_key() -> None:
    # every key of every release is checked in tests/artifacts/test_chart_objects.py;
    # linkerd-config echoes every key, which the check leaves out of its comparison
    values = _run("prod").named("mesh-control-plane").inputs["values"]
    probes = ["controllerReplica", "controllerReplicas"]
    misspelled = {**values, "controllerReplica": 3, "controllerReplicas": 2}
    assert unread_values("linkerd-control-plane", misspelled, only=probes) == ["controllerReplica"]


def test_kube_system_and_cert_manager_are_outside_every_mesh_webhook() -> None:
    values = control_plane_values(prod=True, trust_anchors_pem="PEM")
    assert {"kube-system", "cert-manager"} <= set(WEBHOOK_EXEMPT_NAMESPACES)
    for webhook in ("proxyInjector", "profileValidator", "policyValidator"):
        expressions = values[webhook]["namespaceSelector"]["matchExpressions"]
        by_name = [e for e in expressions if e["key"] == "kubernetes.io/metadata.name"]
        assert by_name == [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": list(WEBHOOK_EXEMPT_NAMESPACES),
            }
        ]
        # the opt-out label the chart honours by default is kept
        assert any(e["key"] == "config.linkerd.io/admission-webhooks" for e in expressions)


def test_no_proxy_setting_can_cut_a_long_stream() -> None:
    for prod in (True, False):
        proxy = control_plane_values(prod=prod, trust_anchors_pem="PEM")["proxy"]
        # drain bounded by the workload's grace period, not the proxy's 120 s
        assert proxy["nativeSidecar"] is True
        # never "wait for ever" for a server-speaks-first protocol
        assert not any("ProtocolDetectTimeout" in key for key in proxy)
        assert "shutdownGracePeriod" not in proxy
    for body in mesh_policy.platform_policy(scrape_cidrs=[IPv4Network("10.42.0.0/16")]):
        if body["kind"] == "HTTPRoute":
            assert all("timeouts" not in rule for rule in body["spec"]["rules"])
        if body["kind"] == "Server":
            # inbound protocol detection skipped: no 10 s window, no opaque fall-back
            assert body["spec"]["proxyProtocol"] == "HTTP/1"


# --- authorization ----------------------------------------------------------------------


def _allowed(bodies: list[dict[str, Any]]) -> dict[tuple[str, str], list[Any]]:
    """(namespace, route) -> who its AuthorizationPolicy admits."""
    authn = {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in bodies}
    allowed = {}
    for body in bodies:
        if body["kind"] != "AuthorizationPolicy":
            continue
        ns = body["metadata"]["namespace"]
        assert body["spec"]["targetRef"]["kind"] == "HTTPRoute"
        (ref,) = body["spec"]["requiredAuthenticationRefs"]
        spec = authn[(ns, ref["name"])]["spec"]
        who = spec.get("identityRefs") or spec.get("networks")
        allowed[(ns, body["spec"]["targetRef"]["name"])] = who
    return allowed


def test_only_the_gateway_calls_models_and_only_the_ingress_calls_the_gateway() -> None:
    scrape = [IPv4Network("10.42.0.0/16")]
    allowed = _allowed(mesh_policy.platform_policy(scrape_cidrs=scrape))
    assert allowed[("inference", "model-servers-api")] == [
        {"kind": "ServiceAccount", "name": "litellm", "namespace": "llm-gateway"}
    ]
    assert allowed[("llm-gateway", "litellm-api")] == [
        {"kind": "ServiceAccount", "name": "traefik", "namespace": "traefik"}
    ]
    for ns, server in (("inference", "model-servers"), ("llm-gateway", "litellm")):
        assert allowed[(ns, f"{server}-metrics")] == [{"cidr": "10.42.0.0/16"}]
        assert allowed[(ns, f"{server}-probes")] == [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]
    assert len(allowed) == 6


def test_metrics_and_probe_routes_are_narrow_and_servers_deny_by_default() -> None:
    bodies = mesh_policy.platform_policy(scrape_cidrs=[IPv4Network("10.42.0.0/16")])
    routes = {b["metadata"]["name"]: b["spec"] for b in bodies if b["kind"] == "HTTPRoute"}
    for server in mesh_policy.platform_servers():
        (api,) = routes[f"{server.name}-api"]["rules"]
        assert api["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
        (metrics,) = routes[f"{server.name}-metrics"]["rules"]
        assert metrics["matches"] == [
            {"path": {"type": "PathPrefix", "value": "/metrics"}, "method": "GET"}
        ]
        (probes,) = routes[f"{server.name}-probes"]["rules"]
        assert {m["path"]["type"] for m in probes["matches"]} == {"Exact"}
        assert {m["method"] for m in probes["matches"]} == {"GET"}
        for role in ("api", "metrics", "probes"):
            assert routes[f"{server.name}-{role}"]["parentRefs"] == [
                {"group": "policy.linkerd.io", "kind": "Server", "name": server.name}
            ]
    servers = [b for b in bodies if b["kind"] == "Server"]
    assert {s["spec"]["accessPolicy"] for s in servers} == {"deny"}


def test_servers_select_the_real_pods_and_cover_every_probe(stack_run: StackRun) -> None:
    run = stack_run("prod")
    deployments = run.of_type("kubernetes:apps/v1:Deployment")
    for server in mesh_policy.platform_servers():
        pods = [
            d
            for d in deployments
            if d.inputs["metadata"]["namespace"] == server.namespace
            and server.pod_labels.items()
            <= d.inputs["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert pods, f"{server.name} selects no Deployment"
        for deployment in pods:
            pod = deployment.inputs["spec"]["template"]["spec"]
            (container,) = [
                c
                for c in pod["containers"]
                if any(p["containerPort"] == server.port for p in c.get("ports", []))
            ]
            named = {p["name"]: p["containerPort"] for p in container["ports"]}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                get = container.get(probe, {}).get("httpGet")
                if get is None:
                    continue
                port = named.get(get["port"], get["port"])
                if port == server.port:
                    assert get["path"] in server.probe_paths, (deployment.name, probe)
    gateway = run.named("llm-gateway-deployment").inputs["spec"]["template"]["spec"]
    assert gateway["serviceAccountName"] == mesh_policy.LLM_GATEWAY_SERVICE_ACCOUNT


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_mesh_object_validates(stack: str) -> None:
    run = _run(stack, viz=True)
    checked = 0
    for resource in run.resources:
        if resource.type == RELEASE or not resource.type.startswith("kubernetes:"):
            continue
        if resource.type.startswith("kubernetes:core/"):
            validate_core(resource)
        elif "kind" in resource.inputs:
            validate_custom_resource(resource)
        checked += 1
    kinds = {r.inputs.get("kind") for r in run.resources if "kind" in r.inputs}
    assert {
        "Server",
        "HTTPRoute",
        "AuthorizationPolicy",
        "MeshTLSAuthentication",
        "NetworkAuthentication",
        "Issuer",
        "Certificate",
        "ConfigMap",
        "Secret",
    } <= kinds
    assert checked >= 20


# --- viz and off ------------------------------------------------------------------------


def test_viz_only_when_asked_after_the_control_plane() -> None:
    assert "mesh-viz" not in {r.name for r in _run("prod", viz=False).of_type(RELEASE)}
    run = _run("prod", viz=True)
    viz = run.named("mesh-viz")
    assert viz.inputs["chart"] == versions.LINKERD_VIZ.name
    assert "mesh-control-plane" in _deps(run, viz)
    assert viz.inputs["values"]["tap"]["replicas"] == 3
    assert _run("dev", viz=True).named("mesh-viz").inputs["values"] == {}


def test_nothing_without_the_mesh() -> None:
    run = _run("dev", enabled=False)
    assert [r.name for r in run.resources if r.parent == run.named("mesh").urn] == []
    assert run.outputs["trust_anchor_expiry"] is None
