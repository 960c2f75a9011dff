"""The Traefik ingress under the recording mocks, its pure values, and publishing through it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from components import versions
from components.config import IngressConfig
from components.ingress import traefik_values as tv
from components.ingress.publish import PublishArgs, PublishedService
from components.ingress.traefik import TraefikIngress, TraefikIngressArgs, traefik_settings
from components.pki.internal_pki import InternalPki, InternalPkiArgs
from tests.support import dependency_names, run_component, stack_config, unread_values
from tests.unit.manifest_checks import validate_custom_resource
from tools import charts
from tools.helm_template import schema_error
from tools.mock_engine import ProgramRun, RecordedResource

RELEASE = "kubernetes:helm.sh/v3:Release"
MIDDLEWARE = "kubernetes:traefik.io/v1alpha1:Middleware"
_RUNS: dict[str, ProgramRun] = {}


def _program(stack: str) -> Callable[[], dict[str, Any]]:
    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        config = stack_config(stack)
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        pki = InternalPki("pki", InternalPkiArgs(config=config, provider=provider))
        ingress = TraefikIngress(
            "ingress",
            TraefikIngressArgs(
                config=config,
                provider=provider,
                issuer_name=pki.issuer_name,
                pki_ready=pki.ready,
            ),
        )
        # Two consumers of the handle, as the LLM gateway and Grafana would publish.
        api = PublishedService(
            "api",
            PublishArgs(
                ingress=ingress.handle,
                host_prefix="api",
                namespace="llm-gateway",
                service_name="litellm",
                service_port=4000,
                component="llm-gateway",
                streaming=True,
            ),
        )
        grafana = PublishedService(
            "grafana",
            PublishArgs(
                ingress=ingress.handle,
                host_prefix="grafana",
                namespace="observability",
                service_name="grafana",
                service_port=80,
                component="observability",
            ),
        )
        return {"pki": pki, "ingress": ingress, "api": api, "grafana": grafana}

    return program


def ingress_run(stack: str) -> ProgramRun:
    """One recorded run per stack, shared by the tests (runs are pure)."""
    if stack not in _RUNS:
        _RUNS[stack] = run_component(stack, _program(stack))
    return _RUNS[stack]


_deps = dependency_names


def _values(stack: str) -> dict[str, Any]:
    values: dict[str, Any] = ingress_run(stack).named("ingress-traefik").inputs["values"]
    return values


def _middlewares(run: ProgramRun) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(MIDDLEWARE)}


# --- the release ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_release_is_pinned_and_awaited(stack: str) -> None:
    release = ingress_run(stack).named("ingress-traefik")
    assert release.inputs["chart"] == versions.TRAEFIK.name
    assert release.inputs["version"] == versions.TRAEFIK.version
    assert release.inputs["repositoryOpts"] == {"repo": versions.TRAEFIK.repo}
    assert release.inputs["namespace"] == "traefik"
    assert release.inputs["skipAwait"] is False


def test_the_old_access_log_key_is_refused_and_a_dead_key_is_reported() -> None:
    # Traefik chart < v28 spelling: the chart's values.schema.json refuses it
    error = schema_error(charts.archive_of(versions.TRAEFIK), {"logs": {"access": {}}})
    assert error is not None and "'logs' not allowed" in error
    # a documented key that does nothing under the other values is reported as unread
    dead = {"autoscaling": {"enabled": False, "maxReplicas": 4}}
    assert unread_values("traefik", dead) == ["autoscaling.maxReplicas"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_http_redirects_to_https_and_websecure_serves_tls(stack: str) -> None:
    ports = _values(stack)["ports"]
    assert ports["web"]["http"]["redirections"]["entryPoint"] == {
        "to": "websecure",
        "scheme": "https",
        "permanent": True,
    }
    assert ports["websecure"]["http"]["tls"]["enabled"] is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_logs_metrics_service_and_service_account(stack: str) -> None:
    values = _values(stack)
    assert values["log"]["format"] == "json"
    assert values["accessLog"]["enabled"] is True
    assert values["accessLog"]["format"] == "json"
    assert values["accessLog"]["fields"]["headers"]["defaultMode"] == "drop"
    assert values["metrics"]["prometheus"]["entryPoint"] == "metrics"
    assert values["service"]["spec"]["type"] == "LoadBalancer"
    assert values["serviceAccount"]["name"] == "traefik"
    assert values["providers"]["kubernetesCRD"]["allowCrossNamespace"] is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_timeouts_never_cut_a_stream_and_outlast_the_edge(stack: str) -> None:
    config = stack_config(stack)
    assert config.edge is not None
    timeouts = _values(stack)["ports"]["websecure"]["transport"]["respondingTimeouts"]
    assert timeouts["writeTimeout"] == "0s"
    read = int(timeouts["readTimeout"].removesuffix("s"))
    assert read >= config.edge.read_timeout_seconds


def test_prod_runs_two_replicas_with_a_budget_and_anti_affinity() -> None:
    values = _values("prod")
    assert values["deployment"]["replicas"] >= 2
    assert values["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    (term,) = values["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    # the chart's selector: name traefik, instance <release>-<namespace>
    release = ingress_run("prod").named("ingress-traefik")
    assert term["labelSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "traefik",
        "app.kubernetes.io/instance": f"{release.inputs['name']}-{release.inputs['namespace']}",
    }
    assert values["updateStrategy"]["rollingUpdate"]["maxSurge"] == 0


def test_dev_runs_one_replica_without_budget_or_affinity() -> None:
    values = _values("dev")
    assert values["deployment"]["replicas"] == 1
    assert {"podDisruptionBudget", "affinity", "updateStrategy"}.isdisjoint(values)


def test_trusted_proxies_add_the_edge_tunnel_only_with_an_edge() -> None:
    with_edge = stack_config("prod")
    assert with_edge.edge is not None
    settings = traefik_settings(with_edge)
    assert str(with_edge.edge.wireguard.tunnel_cidr) in settings.trusted_proxy_cidrs
    assert settings.read_timeout_seconds == with_edge.edge.read_timeout_seconds
    without_edge = with_edge.model_copy(update={"edge": None})
    settings = traefik_settings(without_edge)
    assert settings.trusted_proxy_cidrs == ("10.42.0.0/16",)
    assert settings.read_timeout_seconds == 900
    assert _values("prod")["ports"]["websecure"]["forwardedHeaders"]["trustedIPs"] == list(
        traefik_settings(with_edge).trusted_proxy_cidrs
    )


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="read_timeout_seconds"):
        tv.TraefikSettings(prod=True, read_timeout_seconds=0, trusted_proxy_cidrs=("10.0.0.0/8",))
    with pytest.raises(ValueError, match="trusted_proxy_cidrs"):
        tv.TraefikSettings(prod=True, read_timeout_seconds=60, trusted_proxy_cidrs=())
    with pytest.raises(ValidationError, match="trusted_proxy_cidrs"):
        IngressConfig(trusted_proxy_cidrs=("10.42.0.0/33",))


# --- TLS: default certificate, store, options --------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_default_certificate_comes_from_the_internal_ca_after_it_is_ready(stack: str) -> None:
    run = ingress_run(stack)
    config = stack_config(stack)
    cert = run.named("ingress-default-certificate")
    spec = cert.inputs["spec"]
    assert spec["dnsNames"] == [f"*.{config.ingress.domain}", config.ingress.domain]
    assert spec["issuerRef"] == {
        "name": config.pki.ca_issuer_name,
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert (spec["privateKey"]["algorithm"], spec["privateKey"]["size"]) == ("ECDSA", 256)
    assert cert.inputs["metadata"]["namespace"] == "traefik"
    assert _deps(run, cert) == {"pki-cert-manager", "pki-ca-issuer"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_default_tls_store_serves_that_certificate(stack: str) -> None:
    run = ingress_run(stack)
    store = run.named("ingress-tls-store")
    cert = run.named("ingress-default-certificate")
    assert store.inputs["metadata"]["name"] == "default"
    assert (
        store.inputs["spec"]["defaultCertificate"]["secretName"]
        == cert.inputs["spec"]["secretName"]
    )
    assert _deps(run, store) == {"ingress-traefik", "ingress-default-certificate"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_default_tls_option_allows_tls12_and_newer_only(stack: str) -> None:
    run = ingress_run(stack)
    option = run.named("ingress-tls-option")
    assert option.inputs["metadata"]["name"] == "default"
    assert option.inputs["spec"]["minVersion"] == "VersionTLS12"
    assert all(
        "ECDHE" in suite and ("GCM" in suite or "CHACHA20" in suite)
        for suite in option.inputs["spec"]["cipherSuites"]
    )
    assert _deps(run, option) == {"ingress-traefik"}


# --- middlewares and the handle -----------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_middlewares_follow_config_and_wait_for_the_crds(stack: str) -> None:
    run = ingress_run(stack)
    ingress = stack_config(stack).ingress
    found = _middlewares(run)
    assert set(found) == {tv.SECURITY_HEADERS, tv.RATE_LIMIT, tv.BODY_LIMIT}
    rate = found[tv.RATE_LIMIT].inputs["spec"]["rateLimit"]
    assert (rate["average"], rate["burst"]) == (
        ingress.rate_limit_average,
        ingress.rate_limit_burst,
    )
    body = found[tv.BODY_LIMIT].inputs["spec"]["buffering"]
    assert body["maxRequestBodyBytes"] == ingress.max_body_mib * 1024 * 1024
    headers = found[tv.SECURITY_HEADERS].inputs["spec"]["headers"]
    assert headers["stsSeconds"] > 0 and headers["contentTypeNosniff"] is True
    for middleware in found.values():
        assert middleware.inputs["metadata"]["namespace"] == "traefik"
        assert _deps(run, middleware) == {"ingress-traefik"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_streaming_safe_middlewares_never_buffer_or_compress(stack: str) -> None:
    run = ingress_run(stack)
    handle = run.program_globals["ingress"].handle
    found = _middlewares(run)
    assert {ref.name for ref in handle.middlewares} == set(found)
    safe = {ref.name for ref in handle.streaming_safe_middlewares}
    assert safe == {tv.SECURITY_HEADERS, tv.RATE_LIMIT}
    for name in safe:
        assert tv.BUFFERING_OR_COMPRESSING.isdisjoint(found[name].inputs["spec"])


def test_holds_responses_flags_buffering_and_compression() -> None:
    assert tv.holds_responses({"compress": {}})
    assert tv.holds_responses(tv.body_limit_spec(max_body_mib=1))
    assert not tv.holds_responses(tv.security_headers_spec())
    assert not tv.MiddlewareDef(name="gzip", spec={"compress": {}}).streaming_safe


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_published_routes_use_the_handle_and_streaming_routes_skip_the_buffer(stack: str) -> None:
    run = ingress_run(stack)
    routes = {r.name: r for r in run.of_type("kubernetes:traefik.io/v1alpha1:IngressRoute")}
    streaming = routes["api-route"].inputs["spec"]["routes"][0]["middlewares"]
    buffered = routes["grafana-route"].inputs["spec"]["routes"][0]["middlewares"]
    assert {m["name"] for m in streaming} == {tv.SECURITY_HEADERS, tv.RATE_LIMIT}
    assert {m["name"] for m in buffered} == {tv.SECURITY_HEADERS, tv.RATE_LIMIT, tv.BODY_LIMIT}
    assert {m["namespace"] for m in streaming + buffered} == {"traefik"}
    # a route waits for Traefik's CRDs, the CA issuer and the middlewares it names
    deps = _deps(run, routes["api-route"])
    assert {"ingress-traefik", "pki-ca-issuer", "pki-cert-manager", "api-certificate"} <= deps
    assert {f"ingress-middleware-{m['name']}" for m in buffered} <= deps


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_kubernetes_resource_has_the_explicit_provider(stack: str) -> None:
    run = ingress_run(stack)
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    (component,) = run.of_type("llm-platform:ingress:TraefikIngress")
    mine = [r for r in run.resources if r.parent == component.urn]
    assert len(mine) == 7
    assert {r.provider for r in mine} == {provider.urn}


# --- schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_custom_resources_match_their_crd_schemas(stack: str) -> None:
    run = ingress_run(stack)
    custom = [
        r
        for r in run.resources
        if r.custom
        and "kind" in r.inputs
        and r.type != RELEASE
        and not r.type.startswith("kubernetes:core/")
    ]
    kinds = {r.inputs["kind"] for r in custom}
    assert {"Certificate", "TLSStore", "TLSOption", "Middleware", "IngressRoute"} <= kinds
    for resource in custom:
        validate_custom_resource(resource)


def test_schema_check_rejects_a_misspelled_middleware_field() -> None:
    import jsonschema

    rate = _middlewares(ingress_run("dev"))[tv.RATE_LIMIT]
    spec = {"rateLimit": {"avg": 10}}
    broken = RecordedResource(**{**rate.__dict__, "inputs": {**rate.inputs, "spec": spec}})
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(broken)


# --- k3s's bundled Traefik (`ingress.mode: bundled`) --------------------------------------


def _bundled_run() -> ProgramRun:
    from tests.support import run_stack, stack_values

    values = stack_values("dev")
    values["ingress"]["mode"] = "bundled"
    values["mesh"] = {"enabled": False}
    return run_stack(values, "dev")


def test_bundled_mode_adopts_k3s_traefik_through_its_helm_chart_config() -> None:
    import yaml

    run = _bundled_run()
    assert [r.inputs.get("name") for r in run.of_type("kubernetes:helm.sh/v3:Release")].count(
        "traefik"
    ) == 0
    (config,) = run.of_type("kubernetes:helm.cattle.io/v1:HelmChartConfig")
    # k3s merges a HelmChartConfig named after its HelmChart, in kube-system, into the chart.
    assert config.inputs["metadata"]["name"] == "traefik"
    assert config.inputs["metadata"]["namespace"] == "kube-system"
    values = yaml.safe_load(config.inputs["spec"]["valuesContent"])
    settings = traefik_settings(stack_config("dev"))
    assert values == tv.bundled_traefik_values(settings)
    assert values["ports"]["websecure"]["http"]["tls"] == {"enabled": True}
    assert values["providers"] == {"kubernetesCRD": {"enabled": True, "allowCrossNamespace": True}}
    # Every key is one the Traefik chart reads (the pinned one; k3s bundles the same line).
    assert unread_values("traefik", values, namespace="kube-system") == []
    namespaces = {r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:core/v1:Namespace")}
    assert "traefik" not in namespaces


def test_bundled_mode_publishes_the_same_way_from_kube_system() -> None:
    run = _bundled_run()
    for kind in ("TLSStore", "TLSOption", "Middleware"):
        for resource in run.of_type(f"kubernetes:traefik.io/v1alpha1:{kind}"):
            assert resource.inputs["metadata"]["namespace"] == "kube-system", resource.name
    routes = run.of_type("kubernetes:traefik.io/v1alpha1:IngressRoute")
    assert routes
    for route in routes:
        refs = route.inputs["spec"]["routes"][0]["middlewares"]
        assert refs and {m["namespace"] for m in refs} == {"kube-system"}, route.name
    # LiteLLM admits the ingress from kube-system; Prometheus scrapes Traefik there.
    policies = [
        r
        for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.inputs["metadata"]["namespace"] == "llm-gateway"
    ]
    sources = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for policy in policies
        for rule in policy.inputs["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if any(p.get("port") == 4000 for p in rule.get("ports", [])) and "namespaceSelector" in peer
    }
    assert sources == {"kube-system"}
    (monitor,) = [
        r
        for r in run.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")
        if r.inputs["metadata"]["name"] == "traefik"
    ]
    assert monitor.inputs["spec"]["namespaceSelector"] == {"matchNames": ["kube-system"]}
