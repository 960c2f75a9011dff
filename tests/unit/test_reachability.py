"""The NetworkPolicy model (tools/checks/reachability.py) and the flows of the real render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import STACKS, stack_config
from tools.checks import reachability as r
from tools.checks.reachability import TCP, UDP, Endpoint

Obj = dict[str, Any]


# ---------------------------------------------------------------------------- builders


def pod(namespace: str, name: str = "app", **labels: str) -> Endpoint:
    return Endpoint(
        name=f"Pod/{namespace}/{name}",
        namespace=namespace,
        labels={"app": name, **labels},
        ports={"http": (8080, TCP), "dns": (53, UDP), "metrics": (9090, TCP)},
    )


def policy(namespace: str, name: str = "p", **spec: Any) -> Obj:
    spec.setdefault("podSelector", {})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def deny_all(namespace: str) -> Obj:
    return policy(namespace, "default-deny", policyTypes=["Ingress", "Egress"])


def deny_ingress(namespace: str) -> Obj:
    return policy(namespace, "deny-ingress", policyTypes=["Ingress"])


def allow_from(namespace: str, peer: Obj, ports: list[Obj] | None = None, name: str = "in") -> Obj:
    rule: Obj = {"from": [peer]}
    if ports is not None:
        rule["ports"] = ports
    return policy(namespace, name, policyTypes=["Ingress"], ingress=[rule])


def allow_to(namespace: str, peer: Obj, ports: list[Obj] | None = None, name: str = "out") -> Obj:
    rule: Obj = {"to": [peer]}
    if ports is not None:
        rule["ports"] = ports
    return policy(namespace, name, policyTypes=["Egress"], egress=[rule])


def ns_peer(name: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


A, B = pod("a", "client"), pod("b", "server")


# ---------------------------------------------------------------------------- selectors


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({}, True),
        (None, True),
        ({"matchLabels": {"app": "x"}}, True),
        ({"matchLabels": {"app": "y"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x", "z"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["x"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        (
            {
                "matchLabels": {"app": "x"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            False,
        ),
    ],
)
def test_label_selectors(selector: Obj | None, expected: bool) -> None:
    assert r.selector_matches(selector, {"app": "x"}) is expected


def test_policy_types_default_from_rules() -> None:
    assert r.policy_types(policy("a")) == {"Ingress"}
    assert r.policy_types(policy("a", egress=[{}])) == {"Ingress", "Egress"}
    assert r.policy_types(policy("a", policyTypes=["Egress"])) == {"Egress"}


# ---------------------------------------------------------------------------- semantics


def test_a_pod_no_policy_selects_is_open() -> None:
    other = policy("b", podSelector={"matchLabels": {"app": "someone-else"}})
    assert r.allowed([other], A, B, 8080)
    assert "not isolated" in r.allowed([], A, B, 8080).reason


def test_default_deny_denies_and_names_both_sides() -> None:
    decision = r.allowed([deny_all("a"), deny_all("b")], A, B, 8080)
    assert not decision
    assert "source egress denies" in decision.reason
    assert "destination ingress denies" in decision.reason
    assert decision.egress_policies == ("a/default-deny",)
    assert decision.ingress_policies == ("b/default-deny",)


def test_both_directions_must_allow() -> None:
    egress_ok = [deny_all("a"), deny_all("b"), allow_to("a", ns_peer("b"))]
    decision = r.allowed(egress_ok, A, B, 8080)
    assert not decision
    assert "source egress" not in decision.reason
    assert "destination ingress denies" in decision.reason
    assert r.allowed([*egress_ok, allow_from("b", ns_peer("a"))], A, B, 8080)


def test_policies_are_additive() -> None:
    policies = [
        deny_all("b"),
        allow_from("b", ns_peer("x")),
        allow_from("b", ns_peer("a"), name="2"),
    ]
    assert r.allowed(policies, A, B, 8080)


def test_pod_selector_peer_is_same_namespace_only() -> None:
    peer = {"podSelector": {"matchLabels": {"app": "client"}}}
    policies = [deny_ingress("b"), allow_from("b", peer)]
    assert r.allowed(policies, pod("b", "client"), B, 8080)
    assert not r.allowed(policies, A, B, 8080)
    assert not r.allowed(policies, pod("b", "other"), B, 8080)


def test_empty_pod_selector_peer_is_every_pod_of_the_namespace() -> None:
    policies = [deny_ingress("b"), allow_from("b", {"podSelector": {}})]
    assert r.allowed(policies, pod("b", "anyone"), B, 8080)
    assert not r.allowed(policies, A, B, 8080)


def test_namespace_selector_uses_namespace_labels_and_the_automatic_name() -> None:
    namespaces = r.namespace_labels(
        [{"kind": "Namespace", "metadata": {"name": "a", "labels": {"team": "red"}}}]
    )
    assert namespaces == {"a": {"team": "red", "kubernetes.io/metadata.name": "a"}}
    by_label = [
        deny_all("b"),
        allow_from("b", {"namespaceSelector": {"matchLabels": {"team": "red"}}}),
    ]
    assert r.allowed(by_label, A, B, 8080, namespaces=namespaces)
    assert not r.allowed(by_label, A, B, 8080)  # without the Namespace object: name label only
    assert r.allowed([deny_all("b"), allow_from("b", ns_peer("a"))], A, B, 8080)


def test_empty_namespace_selector_is_every_namespace() -> None:
    policies = [deny_all("b"), allow_from("b", {"namespaceSelector": {}})]
    assert r.allowed(policies, A, B, 8080)
    assert not r.allowed(policies, r.api_server(), B, 8080)  # selectors never match addresses


def test_namespace_and_pod_selector_in_one_peer_means_both() -> None:
    both = {**ns_peer("a"), "podSelector": {"matchLabels": {"app": "client"}}}
    policies = [deny_all("b"), allow_from("b", both)]
    assert r.allowed(policies, A, B, 8080)
    assert not r.allowed(policies, pod("a", "other"), B, 8080)
    assert not r.allowed(policies, pod("c", "client"), B, 8080)


def test_separate_peers_mean_either() -> None:
    rule = {"from": [ns_peer("c"), {"podSelector": {"matchLabels": {"app": "client"}}}]}
    policies = [deny_ingress("b"), policy("b", "in", policyTypes=["Ingress"], ingress=[rule])]
    assert r.allowed(policies, pod("c", "other"), B, 8080)
    assert r.allowed(policies, pod("b", "client"), B, 8080)
    assert not r.allowed(policies, pod("a", "other"), B, 8080)


def test_ip_block_with_except_matches_addresses_not_pods() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.1.0/24"]}}
    policies = [deny_all("b"), allow_from("b", block)]
    assert r.allowed(policies, r.api_server("10.0.0.10"), B, 8080)
    assert not r.allowed(policies, r.api_server("10.0.1.10"), B, 8080)
    assert not r.allowed(policies, r.WORLD, B, 8080)
    assert not r.allowed(policies, A, B, 8080)
    egress = [deny_all("a"), allow_to("a", {"ipBlock": {"cidr": "0.0.0.0/0"}})]
    assert r.allowed(egress, A, r.WORLD, 443)
    assert not r.allowed(egress, A, B, 8080)


def test_empty_from_and_omitted_ports_allow_everything() -> None:
    everyone = policy("b", "all", policyTypes=["Ingress"], ingress=[{}])
    assert r.allowed([deny_all("b"), everyone], A, B, 1234, UDP)
    assert r.allowed([deny_all("b"), everyone], r.WORLD, B, 8080)
    empty_list = policy("b", "all", policyTypes=["Ingress"], ingress=[{"from": [], "ports": []}])
    assert r.allowed([deny_all("b"), empty_list], A, B, 8080)


def test_empty_ingress_list_isolates() -> None:
    assert not r.allowed([policy("b", ingress=[])], A, B, 8080)


def test_numeric_port_and_protocol_default_tcp() -> None:
    policies = [deny_all("b"), allow_from("b", ns_peer("a"), [{"port": 53}])]
    assert r.allowed(policies, A, B, 53, TCP)
    assert not r.allowed(policies, A, B, 53, UDP)
    assert not r.allowed(policies, A, B, 54, TCP)
    udp = [deny_all("b"), allow_from("b", ns_peer("a"), [{"port": 53, "protocol": "UDP"}])]
    assert r.allowed(udp, A, B, 53, UDP)


def test_port_entry_without_port_is_every_port_of_its_protocol() -> None:
    policies = [deny_all("b"), allow_from("b", ns_peer("a"), [{"protocol": "UDP"}])]
    assert r.allowed(policies, A, B, 5000, UDP)
    assert not r.allowed(policies, A, B, 5000, TCP)


def test_end_port_range() -> None:
    policies = [deny_all("b"), allow_from("b", ns_peer("a"), [{"port": 8000, "endPort": 8100}])]
    assert r.allowed(policies, A, B, 8000)
    assert r.allowed(policies, A, B, 8100)
    assert not r.allowed(policies, A, B, 8101)
    assert not r.allowed(policies, A, B, 7999)


def test_named_ports_resolve_on_the_destination() -> None:
    ingress = [deny_all("b"), allow_from("b", ns_peer("a"), [{"port": "http"}])]
    assert r.allowed(ingress, A, B, 8080)
    assert not r.allowed(ingress, A, B, 9090)
    assert not r.allowed(ingress, A, r.Endpoint(name="no-ports", namespace="b"), 8080)
    # the name's protocol must match too: "dns" is 53/UDP on the destination
    dns = [deny_all("b"), allow_from("b", ns_peer("a"), [{"port": "dns", "protocol": "UDP"}])]
    assert r.allowed(dns, A, B, 53, UDP)
    assert not r.allowed(
        [deny_all("b"), allow_from("b", ns_peer("a"), [{"port": "dns"}])], A, B, 53, UDP
    )
    # egress named ports also refer to the destination pod's ports
    egress = [deny_all("a"), allow_to("a", ns_peer("b"), [{"port": "metrics"}])]
    assert r.allowed(egress, A, B, 9090)
    assert not r.allowed(egress, A, r.WORLD, 9090)


def test_egress_only_policy_leaves_ingress_open() -> None:
    egress_only = allow_to("b", ns_peer("c"))
    assert r.allowed([egress_only], A, B, 8080)
    assert not r.allowed([egress_only], B, A, 8080)
    assert r.allowed([egress_only], B, pod("c"), 8080)


def test_egress_rules_without_policy_types_isolate_egress() -> None:
    implicit = policy("a", egress=[{"to": [ns_peer("c")]}])
    assert not r.allowed([implicit], A, B, 8080)
    assert r.allowed([implicit], A, pod("c"), 8080)
    explicit_ingress = policy(
        "a", policyTypes=["Ingress"], ingress=[{}], egress=[{"to": [ns_peer("c")]}]
    )
    assert r.allowed([explicit_ingress], A, B, 8080)


def test_policies_of_other_namespaces_do_not_apply() -> None:
    assert r.allowed([deny_all("c")], A, B, 8080)


def test_host_network_pods_are_addresses() -> None:
    host = Endpoint(name="host", namespace="b", host_network=True, address="10.0.0.11")
    assert host.is_address
    # its own namespace's default-deny does not apply to it
    assert r.allowed([deny_all("b")], host, r.WORLD, 443)
    assert r.allowed([deny_all("b")], A, host, 9100)
    # reaching it from an isolated pod needs an ipBlock that holds its node address
    assert not r.allowed([deny_all("a"), allow_to("a", ns_peer("b"))], A, host, 9100)
    node_block = allow_to("a", {"ipBlock": {"cidr": "10.0.0.0/24"}})
    assert r.allowed([deny_all("a"), node_block], A, host, 9100)


def test_an_unrelated_flow_stays_denied() -> None:
    policies = [
        deny_all("a"),
        deny_all("b"),
        allow_to("a", ns_peer("b"), [{"port": 8080}]),
        allow_from("b", ns_peer("a"), [{"port": 8080}]),
    ]
    assert r.allowed(policies, A, B, 8080)
    assert not r.allowed(policies, A, B, 9090)
    assert not r.allowed(policies, B, A, 8080)
    assert not r.allowed(policies, pod("c"), B, 8080)
    assert not r.allowed(policies, r.WORLD, B, 8080)


# ---------------------------------------------------------------------------- extraction


def workload(kind: str, namespace: str, name: str, pod_spec: Obj, **template_meta: Any) -> Obj:
    template = {"metadata": {"labels": {"app": name}, **template_meta}, "spec": pod_spec}
    if kind == "CronJob":
        spec: Obj = {"jobTemplate": {"spec": {"template": template}}}
    elif kind == "Pod":
        return {
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, **template["metadata"]},
            "spec": pod_spec,
        }
    else:
        spec = {"template": template}
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def container(*ports: tuple[str, int, str]) -> Obj:
    return {
        "name": "main",
        "ports": [{"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports],
    }


@pytest.mark.parametrize(
    "kind", ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"]
)
def test_pods_from_every_workload_kind(kind: str) -> None:
    obj = workload(kind, "b", "srv", {"containers": [container(("http", 8080, TCP))]})
    (endpoint,) = r.pods([obj])
    assert endpoint.namespace == "b"
    assert endpoint.labels == {"app": "srv"}
    assert endpoint.ports == {"http": (8080, TCP)}
    assert not endpoint.is_address


def test_host_network_pods_take_the_node_address() -> None:
    obj = workload(
        "DaemonSet",
        "obs",
        "exporter",
        {"hostNetwork": True, "containers": [container(("m", 9100, TCP))]},
    )
    (endpoint,) = r.pods([obj], node_address="192.168.1.10")
    assert endpoint.host_network and endpoint.is_address
    assert endpoint.address == "192.168.1.10"


def test_meshed_pods_get_the_proxy_ports() -> None:
    ns = {
        "kind": "Namespace",
        "metadata": {"name": "b", "annotations": {"linkerd.io/inject": "enabled"}},
    }
    meshed = workload("Deployment", "b", "srv", {"containers": [container()]})
    opted_out = workload(
        "Deployment",
        "b",
        "job",
        {"containers": [container()]},
        annotations={"linkerd.io/inject": "disabled"},
    )
    found = {p.name: p for p in r.pods([ns, meshed, opted_out])}
    assert found["Deployment/b/srv"].meshed
    assert found["Deployment/b/srv"].ports["linkerd-admin"] == (4191, TCP)
    assert not found["Deployment/b/job"].meshed


def service_obj(
    namespace: str, name: str, selector: Obj | None, ports: list[Obj], **labels: str
) -> Obj:
    spec: Obj = {"ports": ports}
    if selector is not None:
        spec["selector"] = selector
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def test_service_backends_resolve_numeric_and_named_target_ports() -> None:
    objects = [
        workload("Deployment", "b", "srv", {"containers": [container(("web", 8443, TCP))]}),
        workload("Deployment", "b", "other", {"containers": [container()]}),
        workload("Deployment", "c", "srv", {"containers": [container(("web", 1, TCP))]}),
    ]
    svc_obj = service_obj(
        "b",
        "srv",
        {"app": "srv"},
        [
            {"name": "https", "port": 443, "targetPort": "web"},
            {"name": "x", "port": 80, "targetPort": 8080},
        ],
    )
    (svc,) = r.services([svc_obj])
    backends = r.service_backends(svc, r.pods(objects))
    assert [(p.name, n, proto) for p, n, proto in backends] == [
        ("Deployment/b/srv", 8443, TCP),
        ("Deployment/b/srv", 8080, TCP),
    ]
    assert r.service_backends(svc, r.pods(objects), svc.port_numbered(443)) == backends[:1]


def test_selectorless_services_use_their_endpoint_slices() -> None:
    slice_obj = {
        "kind": "EndpointSlice",
        "metadata": {
            "name": "ext-1",
            "namespace": "b",
            "labels": {"kubernetes.io/service-name": "ext"},
        },
        "endpoints": [{"addresses": ["192.168.10.50"]}],
        "ports": [{"name": "http", "port": 8000}],
    }
    (svc,) = r.services(
        [service_obj("b", "ext", None, [{"name": "http", "port": 8000}]), slice_obj]
    )
    ((endpoint, port, _),) = r.service_backends(svc, [])
    assert (endpoint.address, port, endpoint.is_address) == ("192.168.10.50", 8000, True)


# ---------------------------------------------------------------------------- required flows


def webhook_cluster() -> list[Obj]:
    return [
        workload("Deployment", "wh", "hook", {"containers": [container(("https", 10250, TCP))]}),
        service_obj("wh", "hook", {"app": "hook"}, [{"port": 443, "targetPort": "https"}]),
        {
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "hook"},
            "webhooks": [
                {"name": "v.hook", "clientConfig": {"service": {"namespace": "wh", "name": "hook"}}}
            ],
        },
        {
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.org"},
            "spec": {
                "conversion": {
                    "strategy": "Webhook",
                    "webhook": {
                        "clientConfig": {
                            "service": {"namespace": "wh", "name": "hook", "port": 443}
                        }
                    },
                }
            },
        },
        deny_all("wh"),
    ]


def test_webhook_flows_reach_the_backing_pods_on_the_target_port() -> None:
    api = r.api_server("192.168.10.11")
    flows = [f for f in r.required_flows(webhook_cluster(), api=api) if f.source is api]
    assert {(f.target.name, f.port) for f in flows} == {("Deployment/wh/hook", 10250)}
    assert len(flows) == 2  # the validating webhook and the CRD conversion webhook
    lines = r.check(webhook_cluster(), api=api)
    assert any(
        "api-server -> Deployment/wh/hook:10250/TCP" in line
        and "destination ingress denies" in line
        for line in lines
    )
    fixed = [
        *webhook_cluster(),
        allow_from("wh", {"ipBlock": {"cidr": "192.168.10.0/24"}}, [{"port": 10250}]),
    ]
    assert not [line for line in r.check(fixed, api=api) if "api-server" in line]


def test_an_aggregated_api_is_reached_by_the_api_server_on_its_target_port() -> None:
    api = r.api_server("192.168.10.11")
    objects = [
        workload("Deployment", "km", "metrics", {"containers": [container(("https", 6443, TCP))]}),
        service_obj("km", "metrics", {"app": "metrics"}, [{"port": 443, "targetPort": 6443}]),
        {
            "kind": "APIService",
            "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
            "spec": {"service": {"namespace": "km", "name": "metrics", "port": 443}},
        },
        deny_all("km"),
    ]
    (flow,) = [f for f in r.required_flows(objects, api=api) if f.source is api]
    assert (flow.target.name, flow.port) == ("Deployment/km/metrics", 6443)
    assert "APIService/v1beta1.external.metrics.k8s.io" in flow.why
    assert any("api-server -> Deployment/km/metrics:6443" in line for line in r.check(objects))
    gone = [o for o in objects if o["kind"] != "Deployment"]
    assert any(line.startswith("unresolved: APIService/") for line in r.check(gone, api=api))


def keda_cluster(server: str) -> list[Obj]:
    return [
        workload("Deployment", "keda", "keda-operator", {"containers": [container()]}),
        workload("Deployment", "obs", "prom", {"containers": [container(("web", 9090, TCP))]}),
        service_obj("obs", "prom", {"app": "prom"}, [{"port": 9090, "targetPort": "web"}]),
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "server", "namespace": "apps"},
            "spec": {
                "scaleTargetRef": {"name": "server"},
                "triggers": [
                    {
                        "type": "prometheus",
                        "name": "load",
                        "metadata": {"serverAddress": server, "query": "up", "threshold": "1"},
                    },
                    {"type": "cpu", "metadata": {"value": "50"}},
                ],
            },
        },
        deny_all("keda"),
    ]


def test_keda_queries_the_prometheus_its_triggers_name() -> None:
    objects = keda_cluster("http://prom.obs.svc.cluster.local:9090")
    flows = [f for f in r.required_flows(objects) if "ScaledObject/" in f.why]
    assert [(f.source.name, f.target.name, f.port) for f in flows] == [
        ("Deployment/keda/keda-operator", "Deployment/obs/prom", 9090)
    ]
    assert any(
        "Deployment/keda/keda-operator -> Deployment/obs/prom:9090/TCP" in line
        and "source egress denies" in line
        for line in r.check(objects)
    )
    allowed = [*objects, allow_to("keda", ns_peer("obs"), [{"port": 9090}])]
    assert not [line for line in r.check(allowed) if "ScaledObject/" in line]
    # A server address that names no Service is reported, not silently skipped.
    wrong = keda_cluster("http://prometheus.obs:9090")
    assert any("unresolved: ScaledObject/apps/server" in line for line in r.check(wrong))


def test_a_webhook_without_backing_pods_is_reported() -> None:
    objects = [o for o in webhook_cluster() if o["kind"] != "Deployment"]
    assert any(
        line.startswith("unresolved: ValidatingWebhookConfiguration/hook")
        for line in r.check(objects)
    )


def test_every_pod_needs_dns_on_udp_and_tcp() -> None:
    objects = [workload("Deployment", "b", "srv", {"containers": [container()]}), deny_all("b")]
    dns_flows = [f for f in r.required_flows(objects) if f.why == "DNS lookups"]
    assert {(f.source.name, f.target.name, f.port, f.protocol) for f in dns_flows} == {
        ("Deployment/b/srv", "Deployment/kube-system/coredns", 53, UDP),
        ("Deployment/b/srv", "Deployment/kube-system/coredns", 53, TCP),
    }
    assert len(r.check(objects)) == 2
    dns_peer = {**ns_peer("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    allow_dns = allow_to(
        "b", dns_peer, [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    )
    assert r.check([*objects, allow_dns]) == []


def monitoring_cluster(**prometheus_spec: Any) -> list[Obj]:
    return [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "Prometheus",
            "metadata": {"name": "prom", "namespace": "obs"},
            "spec": prometheus_spec,
        },
        workload("Deployment", "b", "srv", {"containers": [container(("metrics", 9000, TCP))]}),
        workload("Deployment", "c", "srv", {"containers": [container(("metrics", 9001, TCP))]}),
        workload(
            "Deployment",
            "d",
            "annotated",
            {"containers": [container(("x", 7000, TCP))]},
            annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "7001"},
        ),
        service_obj(
            "b",
            "srv",
            {"app": "srv"},
            [{"name": "m", "port": 80, "targetPort": "metrics"}],
            app="srv",
        ),
        service_obj(
            "c", "srv", {"app": "srv"}, [{"name": "m", "port": 80, "targetPort": 9001}], app="srv"
        ),
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "sm", "namespace": "obs"},
            "spec": {
                "selector": {"matchLabels": {"app": "srv"}},
                "namespaceSelector": {"matchNames": ["b"]},
                "endpoints": [{"port": "m"}],
            },
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": {"name": "pm", "namespace": "obs"},
            "spec": {
                "selector": {"matchLabels": {"app": "srv"}},
                "namespaceSelector": {"any": True},
                "podMetricsEndpoints": [{"port": "metrics"}],
            },
        },
    ]


def _scrapes(objects: list[Obj]) -> set[tuple[str, int]]:
    return {
        (f.target.name, f.port)
        for f in r.required_flows(objects)
        if f.source.name == "Prometheus/obs/prom" and f.why != "DNS lookups"
    }


def test_prometheus_scrapes_service_monitors_pod_monitors_and_annotations() -> None:
    everything = {
        "serviceMonitorSelector": {},
        "podMonitorSelector": {},
        "serviceMonitorNamespaceSelector": {},
        "podMonitorNamespaceSelector": {},
    }
    assert _scrapes(monitoring_cluster(**everything)) == {
        ("Deployment/b/srv", 9000),  # ServiceMonitor, via the named targetPort
        ("Deployment/c/srv", 9001),  # PodMonitor (any namespace); not the ServiceMonitor
        ("Deployment/d/annotated", 7001),
    }


def test_prometheus_selectors_pick_the_monitors() -> None:
    # nil selectors select no monitors; nil namespace selectors only Prometheus's own namespace
    assert _scrapes(monitoring_cluster()) == {("Deployment/d/annotated", 7001)}
    own_namespace = monitoring_cluster(serviceMonitorSelector={}, podMonitorSelector={})
    assert ("Deployment/b/srv", 9000) in _scrapes(own_namespace)


def test_prometheus_endpoint_from_the_custom_resource() -> None:
    prom = next(p for p in r.pods(monitoring_cluster()) if p.name.startswith("Prometheus/"))
    assert prom.namespace == "obs"
    assert prom.labels["app.kubernetes.io/name"] == "prometheus"
    assert prom.labels["prometheus"] == "prom"
    assert prom.ports["web"] == (9090, TCP)


def linkerd_cluster() -> list[Obj]:
    proxy = {"name": "linkerd-proxy", "ports": [{"name": "linkerd-admin", "containerPort": 4191}]}
    return [
        {
            "kind": "Namespace",
            "metadata": {"name": "app", "annotations": {"linkerd.io/inject": "enabled"}},
        },
        workload("Deployment", "app", "srv", {"containers": [container(("http", 8000, TCP))]}),
        workload(
            "Deployment",
            "linkerd",
            "linkerd-destination",
            {"containers": [container(("grpc", 8086, TCP), ("policy-grpc", 8090, TCP)), proxy]},
        ),
        workload(
            "Deployment",
            "linkerd",
            "linkerd-identity",
            {"containers": [container(("grpc", 8080, TCP)), proxy]},
        ),
        service_obj(
            "linkerd",
            "linkerd-dst",
            {"app": "linkerd-destination"},
            [{"port": 8086, "targetPort": 8086}],
        ),
        service_obj(
            "linkerd",
            "linkerd-policy",
            {"app": "linkerd-destination"},
            [{"port": 8090, "targetPort": 8090}],
        ),
        service_obj(
            "linkerd",
            "linkerd-identity",
            {"app": "linkerd-identity"},
            [{"port": 8080, "targetPort": 8080}],
        ),
    ]


def test_meshed_pods_need_the_linkerd_control_plane() -> None:
    flows = [f for f in r.required_flows(linkerd_cluster()) if "linkerd-proxy calls" in f.why]
    assert {(f.source.name, f.target.name, f.port) for f in flows} >= {
        ("Deployment/app/srv", "Deployment/linkerd/linkerd-destination", 8086),
        ("Deployment/app/srv", "Deployment/linkerd/linkerd-destination", 8090),
        ("Deployment/app/srv", "Deployment/linkerd/linkerd-identity", 8080),
    }
    lines = r.check([*linkerd_cluster(), deny_all("app")])
    assert any(
        "Deployment/app/srv -> Deployment/linkerd/linkerd-identity:8080/TCP" in line
        for line in lines
    )


def test_api_clients_heuristic_is_opt_in() -> None:
    objects = [
        workload(
            "Deployment",
            "ctl",
            "operator",
            {"serviceAccountName": "op", "containers": [container()]},
        ),
        workload("Deployment", "ctl", "plain", {"containers": [container()]}),
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "op"},
            "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "ctl"}],
        },
        deny_all("ctl"),
    ]
    assert r.rbac_service_accounts(objects) == {("ctl", "op")}
    api = r.api_server()
    assert not [f for f in r.required_flows(objects) if f.target is api]
    flows = [f for f in r.required_flows(objects, api=api, api_clients=True) if f.target is api]
    assert [(f.source.name, f.port) for f in flows] == [("Deployment/ctl/operator", 6443)]
    assert any(
        "Deployment/ctl/operator -> api-server:6443" in line
        for line in r.check(objects, api=api, api_clients=True)
    )


# ---------------------------------------------------------------------------- Linkerd policy


def linkerd_policy(server_port: int | str = 8000, *, authn: Obj | None = None) -> list[Obj]:
    objects: list[Obj] = [
        {
            "kind": "Server",
            "metadata": {"name": "srv", "namespace": "app"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "srv"}},
                "port": server_port,
                "accessPolicy": "deny",
            },
        },
        {
            "kind": "HTTPRoute",
            "metadata": {"name": "srv-api", "namespace": "app"},
            "spec": {
                "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "srv"}]
            },
        },
    ]
    if authn is not None:
        objects += [
            {**authn, "metadata": {"name": "who", "namespace": "app"}},
            {
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "srv-api", "namespace": "app"},
                "spec": {
                    "targetRef": {
                        "group": "policy.linkerd.io",
                        "kind": "HTTPRoute",
                        "name": "srv-api",
                    },
                    "requiredAuthenticationRefs": [
                        {"group": "policy.linkerd.io", "kind": authn["kind"], "name": "who"}
                    ],
                },
            },
        ]
    return objects


MESHED_SRV = Endpoint(
    name="srv", namespace="app", labels={"app": "srv"}, ports={"http": (8000, TCP)}, meshed=True
)
MESHED_CLIENT = Endpoint(name="client", namespace="gw", service_account="litellm", meshed=True)


def test_linkerd_server_without_authorization_denies() -> None:
    decision = r.linkerd_allowed(linkerd_policy(), MESHED_CLIENT, MESHED_SRV, 8000)
    assert not decision
    assert "app/srv" in decision.reason
    assert r.linkerd_allowed(linkerd_policy(), MESHED_CLIENT, MESHED_SRV, 9999)  # no Server there
    unmeshed_target = Endpoint(name="t", namespace="app", labels={"app": "srv"})
    assert r.linkerd_allowed(linkerd_policy(), MESHED_CLIENT, unmeshed_target, 8000)


def test_linkerd_server_access_policy_on_its_own() -> None:
    def server(access: str) -> list[Obj]:
        objects = linkerd_policy()
        objects[0]["spec"]["accessPolicy"] = access
        return objects

    unmeshed = Endpoint(name="prom", namespace="obs")
    assert r.linkerd_allowed(server("all-unauthenticated"), r.WORLD, MESHED_SRV, 8000)
    assert r.linkerd_allowed(server("cluster-unauthenticated"), unmeshed, MESHED_SRV, 8000)
    assert not r.linkerd_allowed(server("cluster-unauthenticated"), r.WORLD, MESHED_SRV, 8000)
    assert r.linkerd_allowed(server("all-authenticated"), MESHED_CLIENT, MESHED_SRV, 8000)
    assert not r.linkerd_allowed(server("all-authenticated"), unmeshed, MESHED_SRV, 8000)


def test_linkerd_mesh_tls_identities() -> None:
    by_name = {
        "kind": "MeshTLSAuthentication",
        "spec": {"identities": ["litellm.gw.serviceaccount.identity.linkerd.cluster.local"]},
    }
    assert r.linkerd_allowed(linkerd_policy("http", authn=by_name), MESHED_CLIENT, MESHED_SRV, 8000)
    wildcard = {
        "kind": "MeshTLSAuthentication",
        "spec": {"identities": ["*.gw.serviceaccount.identity.linkerd.cluster.local"]},
    }
    assert r.linkerd_allowed(linkerd_policy(authn=wildcard), MESHED_CLIENT, MESHED_SRV, 8000)
    by_ref = {
        "kind": "MeshTLSAuthentication",
        "spec": {
            "identityRefs": [{"kind": "ServiceAccount", "name": "litellm", "namespace": "gw"}]
        },
    }
    assert r.linkerd_allowed(linkerd_policy(authn=by_ref), MESHED_CLIENT, MESHED_SRV, 8000)
    other = Endpoint(name="other", namespace="data", service_account="litellm", meshed=True)
    assert not r.linkerd_allowed(linkerd_policy(authn=by_ref), other, MESHED_SRV, 8000)
    unmeshed = Endpoint(name="prom", namespace="gw", service_account="litellm")
    assert not r.linkerd_allowed(linkerd_policy(authn=by_ref), unmeshed, MESHED_SRV, 8000)


def test_linkerd_routes_by_path() -> None:
    objects = linkerd_policy()
    objects.append(
        {
            "kind": "HTTPRoute",
            "metadata": {"name": "srv-metrics", "namespace": "app"},
            "spec": {
                "parentRefs": [{"kind": "Server", "name": "srv"}],
                "rules": [
                    {
                        "matches": [
                            {"path": {"type": "PathPrefix", "value": "/metrics"}, "method": "GET"}
                        ]
                    }
                ],
            },
        }
    )
    objects += [
        {
            "kind": "NetworkAuthentication",
            "metadata": {"name": "any", "namespace": "app"},
            "spec": {"networks": [{"cidr": "0.0.0.0/0"}]},
        },
        {
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "srv-metrics", "namespace": "app"},
            "spec": {
                "targetRef": {"kind": "HTTPRoute", "name": "srv-metrics"},
                "requiredAuthenticationRefs": [{"kind": "NetworkAuthentication", "name": "any"}],
            },
        },
    ]
    assert r.linkerd_allowed(objects, r.WORLD, MESHED_SRV, 8000, path="/metrics")
    assert r.linkerd_allowed(objects, r.WORLD, MESHED_SRV, 8000, path="/metrics/")
    assert r.linkerd_allowed(objects, r.WORLD, MESHED_SRV, 8000)  # no path: any route
    assert not r.linkerd_allowed(objects, r.WORLD, MESHED_SRV, 8000, path="/metricsx")
    assert not r.linkerd_allowed(objects, r.WORLD, MESHED_SRV, 8000, path="/metrics", method="POST")
    assert not r.linkerd_allowed(objects, r.WORLD, MESHED_SRV, 8000, path="/v1/models")


def test_linkerd_network_authentication() -> None:
    pods_net = {"kind": "NetworkAuthentication", "spec": {"networks": [{"cidr": "10.42.0.0/16"}]}}
    unmeshed_pod = Endpoint(name="prom", namespace="obs")
    assert r.linkerd_allowed(linkerd_policy(authn=pods_net), unmeshed_pod, MESHED_SRV, 8000)
    assert not r.linkerd_allowed(linkerd_policy(authn=pods_net), r.api_server(), MESHED_SRV, 8000)
    narrow = {"kind": "NetworkAuthentication", "spec": {"networks": [{"cidr": "10.42.1.0/24"}]}}
    assert not r.linkerd_allowed(linkerd_policy(authn=narrow), unmeshed_pod, MESHED_SRV, 8000)


# ---------------------------------------------------------------------------- the real render


@pytest.fixture(scope="module")
def rendered(render_objects: Callable[[str], list[Obj]]) -> Callable[[str], list[Obj]]:
    return render_objects


def _api(stack: str) -> Endpoint:
    cluster = stack_config(stack).cluster
    servers = [n.address for n in cluster.nodes.values() if n.role == "server"]
    return r.api_server(str(cluster.api_endpoint or servers[0]))


def _find(objects: list[Obj], namespace: str, name_part: str) -> Endpoint:
    return next(p for p in r.pods(objects) if p.namespace == namespace and name_part in p.name)


@pytest.mark.parametrize("stack", STACKS)
def test_render_every_required_flow_is_allowed(
    rendered: Callable[[str], list[Obj]], stack: str
) -> None:
    denied = r.check(rendered(stack), api=_api(stack))
    assert denied == [], "\n".join(denied)


@pytest.mark.parametrize("stack", STACKS)
def test_render_required_flows_cover_each_kind(
    rendered: Callable[[str], list[Obj]], stack: str
) -> None:
    flows = r.required_flows(rendered(stack), api=_api(stack))
    whys = " ".join(f.why for f in flows)
    for needed in (
        "webhook",
        "DNS lookups",
        "ServiceMonitor/",
        "PodMonitor/",
        "linkerd-proxy calls",
    ):
        assert needed in whys


@pytest.mark.parametrize("stack", STACKS)
def test_render_unrelated_flows_stay_denied(
    rendered: Callable[[str], list[Obj]], stack: str
) -> None:
    objects = rendered(stack)
    policies = r.network_policies(objects)
    namespaces = r.namespace_labels(objects)
    gateway = _find(objects, "llm-gateway", "Deployment/llm-gateway/litellm")
    grafana = _find(objects, "observability", "grafana")
    model = _find(objects, "inference", "vllm-")
    postgres = _find(objects, "llm-gateway", "Cluster/")
    denied = [
        (model, grafana, 3000),
        (r.WORLD, postgres, 5432),
        (r.WORLD, gateway, 4000),
        (model, gateway, 4000),
        (gateway, grafana, 3000),
    ]
    if "data" in namespaces:
        denied.append((_find(objects, "data", "embeddings"), gateway, 4000))
    for src, dst, port in denied:
        decision = r.allowed(policies, src, dst, port, namespaces=namespaces)
        assert not decision, decision.reason


@pytest.mark.parametrize("stack", STACKS)
def test_render_linkerd_authorizes_only_the_named_clients(
    rendered: Callable[[str], list[Obj]], stack: str
) -> None:
    objects = rendered(stack)
    gateway = _find(objects, "llm-gateway", "Deployment/llm-gateway/litellm")
    ingress = _find(objects, "traefik", "Deployment/traefik/traefik")
    model = _find(objects, "inference", "vllm-")
    prometheus = _find(objects, "observability", "Prometheus/")
    assert gateway.meshed and ingress.meshed and model.meshed
    assert r.linkerd_allowed(objects, ingress, gateway, 4000, path="/v1/chat/completions")
    assert r.linkerd_allowed(objects, gateway, model, 8000, path="/v1/completions")
    assert r.linkerd_allowed(objects, prometheus, gateway, 4000, path="/metrics/")
    assert r.linkerd_allowed(objects, r.WORLD, gateway, 4000, path="/health/readiness")
    for src, dst, port, path in [
        (model, gateway, 4000, "/v1/chat/completions"),
        (ingress, model, 8000, "/v1/completions"),
        (prometheus, gateway, 4000, "/v1/chat/completions"),
        (r.WORLD, gateway, 4000, "/v1/models"),
    ]:
        decision = r.linkerd_allowed(objects, src, dst, port, path=path)
        assert not decision, decision.reason


def test_render_autoscaling_flows_are_required_and_allowed(
    rendered: Callable[[str], list[Obj]],
) -> None:
    """prod runs KEDA and the VPA recommender: the API server reaches KEDA's metrics API,
    KEDA's operator the Prometheus its triggers query, and every pod of both namespaces
    the API server it is bound to by RBAC; nothing else leaves them."""
    objects = rendered("prod")
    api = _api("prod")
    flows = r.required_flows(objects, api=api, api_clients=True)
    whys = " ".join(f.why for f in flows)
    assert "APIService/v1beta1.external.metrics.k8s.io" in whys
    assert "ScaledObject/inference/vllm-qwen3-14b trigger demand" in whys
    mine = [
        f
        for f in flows
        if {f.source.namespace, f.target.namespace} & {"keda", "vpa"}
        and (f.source is api or f.target is api or "ScaledObject/" in f.why)
    ]
    sources = {f.source.name for f in mine if f.target is api}
    assert {
        "Deployment/keda/keda-operator",
        "Deployment/keda/keda-operator-metrics-apiserver",
        "Deployment/vpa/vpa-vertical-pod-autoscaler-recommender",
    } <= sources
    policies = r.network_policies(objects)
    namespaces = r.namespace_labels(objects)
    for flow in mine:
        decision = r.allowed(policies, flow.source, flow.target, flow.port, namespaces=namespaces)
        assert decision, decision.reason
    # The gateway's readiness gate probes each scaled server's /health through the mesh.
    gateway = _find(objects, "llm-gateway", "Deployment/llm-gateway/litellm")
    scaled = _find(objects, "inference", "Deployment/inference/vllm-qwen3-14b")
    assert r.allowed(policies, gateway, scaled, 8000, namespaces=namespaces)
    probe = r.linkerd_allowed(objects, gateway, scaled, 8000, path="/health", method="GET")
    assert probe, probe.reason
    operator = _find(objects, "keda", "keda-operator")
    recommender = _find(objects, "vpa", "recommender")
    for src, dst, port in [
        (operator, _find(objects, "llm-gateway", "Deployment/llm-gateway/litellm"), 4000),
        (operator, _find(objects, "inference", "vllm-"), 8000),
        (recommender, _find(objects, "observability", "Prometheus/"), 9090),
    ]:
        decision = r.allowed(policies, src, dst, port, namespaces=namespaces)
        assert not decision, decision.reason


def test_render_runners_reach_what_a_deploy_needs_and_nothing_else(
    rendered: Callable[[str], list[Obj]],
) -> None:
    """Runner pods (made by ARC from the scale sets) reach the API server, the internet over
    HTTPS, the ingress (the gateway's admin API) and the nodes over SSH; the listeners the
    API server and GitHub. Nothing reaches them, and they reach no platform service."""
    objects = rendered("prod")
    policies = r.network_policies(objects)
    namespaces = r.namespace_labels(objects)
    runners = [p for p in r.pods(objects) if p.namespace == "arc-runners"]
    listeners = [
        p for p in r.pods(objects) if p.namespace == "arc-systems" and "listener" in p.name
    ]
    assert len(runners) == 3 and len(listeners) == 3
    api = _api("prod")
    node = Endpoint(name="node rack-2", address="192.168.10.12")
    stranger = Endpoint(name="a LAN address", address="192.168.10.99")
    traefik = _find(objects, "traefik", "Deployment/traefik/traefik")
    gateway = _find(objects, "llm-gateway", "Deployment/llm-gateway/litellm")
    model = _find(objects, "inference", "vllm-")
    postgres = _find(objects, "llm-gateway", "Cluster/")
    grafana = _find(objects, "observability", "grafana")
    prometheus = _find(objects, "observability", "Prometheus/")
    for runner in runners:
        for dst, port in [(api, 6443), (r.WORLD, 443), (traefik, 8443), (node, 22)]:
            decision = r.allowed(policies, runner, dst, port, namespaces=namespaces)
            assert decision, (runner.name, dst.name, port, decision.reason)
        for dst, port in [
            (gateway, 4000),
            (model, 8000),
            (postgres, 5432),
            (grafana, 3000),
            (r.WORLD, 80),
            (stranger, 22),
        ]:
            decision = r.allowed(policies, runner, dst, port, namespaces=namespaces)
            assert not decision, (runner.name, dst.name, port)
        for src in (r.WORLD, gateway, traefik, prometheus):
            assert not r.allowed(policies, src, runner, 8080, namespaces=namespaces)
    for listener in listeners:
        assert r.allowed(policies, listener, api, 6443, namespaces=namespaces)
        assert r.allowed(policies, listener, r.WORLD, 443, namespaces=namespaces)
        assert not r.allowed(policies, listener, traefik, 8443, namespaces=namespaces)
        assert not r.allowed(policies, listener, node, 22, namespaces=namespaces)
