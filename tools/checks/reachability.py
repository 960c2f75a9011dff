"""Who may reach whom: Kubernetes NetworkPolicy semantics and the flows the cluster needs.

A pure-Python model of `networking.k8s.io/v1` NetworkPolicy, evaluated over plain object
dicts (the YAML the offline render writes: `build/<stack>/manifests/**` and
`build/<stack>/charts/**`). Semantics follow the Kubernetes documentation,
https://kubernetes.io/docs/concepts/services-networking/network-policies/ and the API
reference https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/:

* A pod is isolated for ingress (egress) iff some NetworkPolicy in its namespace selects it
  and lists that type in `policyTypes`. `policyTypes` defaults to `Ingress`, plus `Egress`
  when the policy has egress rules. An isolated pod accepts (sends) only traffic that some
  rule of some selecting policy allows; policies are additive. A connection needs both the
  source's egress and the destination's ingress.
* Peers: `podSelector` alone (pods of the policy's namespace), `namespaceSelector` alone
  (every pod of the matching namespaces; each Namespace carries the automatic
  `kubernetes.io/metadata.name` label), both in one peer (pods matching both), `ipBlock`
  with `except`. A missing or empty `from`/`to` matches every peer; missing or empty
  `ports` matches every port. A port entry: protocol (default TCP), `port` (a number, or a
  name resolved against the *destination* pod's container ports), `endPort` ranges, no
  `port` = every port of that protocol. Label selectors: `matchLabels` and
  `matchExpressions` (In, NotIn, Exists, DoesNotExist); `{}` matches everything.
* Endpoints outside the pod network (the API server, the internet, the node, pods with
  `hostNetwork: true`) are addresses: policies do not apply to their own side, and only an
  `ipBlock` matches them. Pod-network pods are matched only by pod and namespace selectors:
  whether an `ipBlock` also matches pod IPs is implementation-defined, so the model assumes
  it does not (a flow between pods must be allowed by selectors).

Then `required_flows` derives, from an object set, what the cluster needs to work: the API
server to every admission/conversion webhook's and aggregated API server's (APIService)
pods, every pod to CoreDNS, Prometheus to every scrape target (ServiceMonitor, PodMonitor,
`prometheus.io/scrape` annotations), KEDA's operator to the Prometheus its ScaledObjects'
triggers query, and meshed pods to the Linkerd control plane (optionally, RBAC-bound pods
to the API server);
`check` reports each one that is denied, and each target it cannot find.

What is not in the objects is synthesized: k3s's CoreDNS (kube-system, `k8s-app=kube-dns`),
the pods operators create from custom resources (Prometheus, Alertmanager, CloudNativePG
`Cluster`), the Linkerd proxy's ports and label on injected pods, the `default/kubernetes`
Service (the API server) and the kubelet Service the Prometheus operator maintains (the
node, on 10250). Selectorless Services take their backends from EndpointSlices. One node
stands for all (`node_address`, by default the API server's address).

Also modelled, as a separate layer (`linkerd_allowed`): Linkerd's `policy.linkerd.io`
authorization for meshed targets. A `Server` selects pods and a port; traffic to it needs an
`AuthorizationPolicy` targeting the Server, one of its `HTTPRoute`s or its Namespace whose
required authentications (`MeshTLSAuthentication` identities, `NetworkAuthentication`
networks, ServiceAccount refs) all hold for the client. Routes are not matched by path or
method: a flow is authorized when *some* route's policy admits the client.

Not modelled: CNI specifics (k3s's kube-router, the Linkerd CNI's iptables redirection: a
flow between meshed pods is checked on its original port only), the documented exception
that traffic from the pod's own node is always allowed (the API server may run on another
node), Service ClusterIP/NodePort translation (flows are checked pod to pod on the target
port), AdminNetworkPolicy, Linkerd's cluster default inbound policy for ports no `Server`
covers (treated as allowed), and which paths or methods a route admits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_address, ip_network
from typing import Any
from urllib.parse import urlsplit

from tools.checks import arc

Obj = Mapping[str, Any]

TCP = "TCP"
UDP = "UDP"
NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_POD_CIDR = IPv4Network("10.42.0.0/16")
"""k3s's default cluster (pod) CIDR; the platform's `mesh.scrape_cidrs` default."""
DEFAULT_API_SERVER_ADDRESS = "10.0.0.10"
"""A node-ish address outside the pod CIDR (k3s runs the API server on the host network)."""
INTERNET_ADDRESS = "203.0.113.80"
"""An address on the internet (TEST-NET-3)."""
API_SERVER_PORT = 6443
"""Where k3s's API server listens; the `kubernetes` Service's 443 forwards there."""
LINKERD_NAMESPACE = "linkerd"
LINKERD_CONTROL_SERVICES = {
    "linkerd-dst": "destination",
    "linkerd-policy": "policy",
    "linkerd-identity": "identity",
}
"""The Linkerd control-plane Services a proxy calls (linkerd-control-plane chart)."""
LINKERD_PROXY_PORTS = {"linkerd-proxy": (4143, TCP), "linkerd-admin": (4191, TCP)}
"""Container ports the proxy injector adds to a meshed pod."""
LINKERD_CLUSTER_NETWORKS = tuple(
    IPv4Network(n) for n in ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")
)
"""Linkerd's default `clusterNetworks` (IPv4 part)."""
KEDA_OPERATOR_LABELS = {"app": "keda-operator"}
"""The KEDA operator's pod selector (keda chart 2.20.2 `templates/manager/deployment.yaml`)."""
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


# ---------------------------------------------------------------------------- endpoints


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A source or destination: a pod (from a workload's template) or an address."""

    name: str
    """Human-readable: `Kind/namespace/name` for pods, a word for addresses."""
    namespace: str | None = None
    """None for addresses (the API server, the internet)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    """Named container ports: name → (port, protocol)."""
    unnamed_ports: tuple[tuple[int, str], ...] = ()
    """Container ports without a name (they count for annotation scrapes only)."""
    host_network: bool = False
    address: str | None = None
    """The IP of an address endpoint or a host-network pod (its node's address)."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    meshed: bool = False

    @property
    def is_address(self) -> bool:
        """True when NetworkPolicy sees this endpoint as an IP outside the pod network."""
        return self.namespace is None or self.host_network

    def __str__(self) -> str:
        return self.name


def world(name: str, address: str) -> Endpoint:
    """An address outside the pod network."""
    return Endpoint(name=name, address=address)


def api_server(address: str = DEFAULT_API_SERVER_ADDRESS) -> Endpoint:
    """The Kubernetes API server: on k3s it runs on the host network of a server node."""
    return world("api-server", address)


WORLD = world("internet", INTERNET_ADDRESS)
"""The internet, as seen by NetworkPolicy: an address outside every pod and node CIDR."""


# ---------------------------------------------------------------------------- selectors


def _expression_matches(expression: Obj, labels: Mapping[str, str]) -> bool:
    key = str(expression.get("key", ""))
    operator = expression.get("operator")
    values = {str(v) for v in expression.get("values") or ()}
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown label selector operator {operator!r}")


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels; `{}` (and None) match everything."""
    if not selector:
        return True
    match_labels = selector.get("matchLabels") or {}
    if any(labels.get(str(k)) != str(v) for k, v in match_labels.items()):
        return False
    return all(_expression_matches(e, labels) for e in selector.get("matchExpressions") or ())


# ---------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    """Whether a connection is allowed, and why."""

    allowed: bool
    reason: str
    egress_policies: tuple[str, ...] = ()
    """`namespace/name` of the policies that isolate the source for egress."""
    ingress_policies: tuple[str, ...] = ()
    """`namespace/name` of the policies that isolate the destination for ingress."""

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class _Side:
    allowed: bool
    isolated: bool
    policies: tuple[str, ...]


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name", ""))


def _namespace(obj: Obj) -> str:
    return str(_meta(obj).get("namespace") or "default")


def _labels(obj: Obj) -> dict[str, str]:
    return {str(k): str(v) for k, v in (_meta(obj).get("labels") or {}).items()}


def _annotations(obj: Obj) -> dict[str, str]:
    return {str(k): str(v) for k, v in (_meta(obj).get("annotations") or {}).items()}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def policy_types(policy: Obj) -> set[str]:
    """Effective `policyTypes`: Ingress always, Egress when egress rules exist."""
    spec = _spec(policy)
    declared = spec.get("policyTypes")
    if declared:
        return {str(t) for t in declared}
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def _in_ip_block(block: Obj, address: str | None) -> bool:
    if address is None:
        return False
    ip = ip_address(address)
    if ip not in ip_network(str(block["cidr"]), strict=False):
        return False
    return not any(ip in ip_network(str(cidr), strict=False) for cidr in block.get("except") or ())


def _peer_matches(
    peer: Obj, policy_namespace: str, other: Endpoint, namespaces: Mapping[str, Mapping[str, str]]
) -> bool:
    if "ipBlock" in peer:
        return other.is_address and _in_ip_block(peer["ipBlock"], other.address)
    if other.is_address or ("podSelector" not in peer and "namespaceSelector" not in peer):
        return False
    assert other.namespace is not None
    if "namespaceSelector" in peer:
        ns_labels = namespaces.get(other.namespace) or {NAME_LABEL: other.namespace}
        if not selector_matches(peer["namespaceSelector"], ns_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), other.labels)


def _port_matches(entry: Obj, dst: Endpoint, port: int, protocol: str) -> bool:
    entry_protocol = str(entry.get("protocol") or TCP)
    if entry_protocol != protocol:
        return False
    wanted = entry.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str) and not wanted.isdigit():
        named = dst.ports.get(wanted)
        return named is not None and named == (port, protocol)
    low = int(wanted)
    high = int(entry.get("endPort") or low)
    return low <= port <= high


def _rule_matches(
    rule: Obj,
    peers_key: str,
    policy_namespace: str,
    peer: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str,
    namespaces: Mapping[str, Mapping[str, str]],
) -> bool:
    peers = rule.get(peers_key) or ()
    if peers and not any(_peer_matches(p, policy_namespace, peer, namespaces) for p in peers):
        return False
    ports = rule.get("ports") or ()
    return not ports or any(_port_matches(p, dst, port, protocol) for p in ports)


def _side(
    policies: Iterable[Obj],
    direction: str,
    subject: Endpoint,
    peer: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str,
    namespaces: Mapping[str, Mapping[str, str]],
) -> _Side:
    """Evaluate one direction: `subject` is the pod whose policies apply, `peer` the other end."""
    if subject.is_address:
        return _Side(allowed=True, isolated=False, policies=())
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p.get("kind", "NetworkPolicy") == "NetworkPolicy"
        and _namespace(p) == subject.namespace
        and direction in policy_types(p)
        and selector_matches(_spec(p).get("podSelector"), subject.labels)
    ]
    names = tuple(f"{_namespace(p)}/{_name(p)}" for p in selecting)
    if not selecting:
        return _Side(allowed=True, isolated=False, policies=())
    allowed = any(
        _rule_matches(rule, peers_key, _namespace(p), peer, dst, port, protocol, namespaces)
        for p in selecting
        for rule in _spec(p).get(rules_key) or ()
    )
    return _Side(allowed=allowed, isolated=True, policies=names)


def allowed(
    policies: Iterable[Obj],
    src: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str = TCP,
    *,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
) -> Decision:
    """Whether NetworkPolicy lets `src` open a connection to `dst` on `port`/`protocol`.

    `namespaces`: namespace name → labels (see `namespace_labels`); a namespace missing
    there has only its automatic `kubernetes.io/metadata.name` label.
    """
    items = list(policies)
    ns = namespaces or {}
    egress = _side(items, "Egress", src, dst, dst, port, protocol, ns)
    ingress = _side(items, "Ingress", dst, src, dst, port, protocol, ns)
    flow = f"{src} -> {dst}:{port}/{protocol}"
    denied = [
        f"{label} denies (isolated by {', '.join(side.policies)}; no rule matches)"
        for label, side in (("source egress", egress), ("destination ingress", ingress))
        if not side.allowed
    ]
    if denied:
        reason = f"{flow}: " + "; ".join(denied)
    else:
        reason = (
            f"{flow}: allowed ({_side_note('egress', egress)}, {_side_note('ingress', ingress)})"
        )
    return Decision(
        allowed=not denied,
        reason=reason,
        egress_policies=egress.policies,
        ingress_policies=ingress.policies,
    )


def _side_note(label: str, side: _Side) -> str:
    if not side.isolated:
        return f"{label} not isolated"
    return f"{label} by one of {', '.join(side.policies)}"


# ---------------------------------------------------------------------------- extraction


def namespace_labels(objects: Iterable[Obj]) -> dict[str, dict[str, str]]:
    """Namespace name → labels, each with the automatic `kubernetes.io/metadata.name`."""
    result: dict[str, dict[str, str]] = {}
    for obj in objects:
        if obj.get("kind") == "Namespace":
            name = _name(obj)
            result[name] = {**_labels(obj), NAME_LABEL: name}
    return result


def _namespace_annotations(objects: Iterable[Obj]) -> dict[str, dict[str, str]]:
    return {_name(o): _annotations(o) for o in objects if o.get("kind") == "Namespace"}


def network_policies(objects: Iterable[Obj]) -> list[Obj]:
    """The NetworkPolicy objects of an object set."""
    return [o for o in objects if o.get("kind") == "NetworkPolicy"]


def _pod_template(obj: Obj) -> Obj | None:
    kind = obj.get("kind")
    spec = _spec(obj)
    if kind == "Pod":
        return obj
    if kind in WORKLOAD_KINDS:
        template = spec.get("template")
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    else:
        return None
    return template if isinstance(template, Mapping) else None


def _container_ports(
    pod_spec: Obj,
) -> tuple[dict[str, tuple[int, str]], tuple[tuple[int, str], ...]]:
    named: dict[str, tuple[int, str]] = {}
    unnamed: list[tuple[int, str]] = []
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or ():
            for entry in container.get("ports") or ():
                value = (int(entry["containerPort"]), str(entry.get("protocol") or TCP))
                if entry.get("name"):
                    named[str(entry["name"])] = value
                else:
                    unnamed.append(value)
    return named, tuple(unnamed)


def _is_meshed(template_annotations: Mapping[str, str], ns_annotations: Mapping[str, str]) -> bool:
    pod_value = template_annotations.get("linkerd.io/inject")
    if pod_value is not None:
        return pod_value in ("enabled", "ingress")
    return ns_annotations.get("linkerd.io/inject") in ("enabled", "ingress")


def pod_endpoint(
    obj: Obj,
    *,
    ns_annotations: Mapping[str, str] | None = None,
    node_address: str = DEFAULT_API_SERVER_ADDRESS,
    linkerd_namespace: str = LINKERD_NAMESPACE,
) -> Endpoint | None:
    """The pod a workload object runs (None when `obj` runs no pods)."""
    template = _pod_template(obj)
    if template is None:
        return None
    pod_spec = _spec(template)
    labels = _labels(template)
    annotations = _annotations(template)
    named, unnamed = _container_ports(pod_spec)
    host_network = bool(pod_spec.get("hostNetwork"))
    has_proxy = any(c.get("name") == "linkerd-proxy" for c in pod_spec.get("containers") or ())
    meshed = not host_network and (has_proxy or _is_meshed(annotations, ns_annotations or {}))
    if meshed:
        named = {**named, **LINKERD_PROXY_PORTS}
        labels = {**labels, "linkerd.io/control-plane-ns": linkerd_namespace}
    namespace = _namespace(obj)
    return Endpoint(
        name=f"{obj.get('kind')}/{namespace}/{_name(obj)}",
        namespace=namespace,
        labels=labels,
        ports=named,
        unnamed_ports=unnamed,
        host_network=host_network,
        address=node_address if host_network else None,
        annotations=annotations,
        service_account=str(
            pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"
        ),
        meshed=meshed,
    )


def prometheus_endpoint(cr: Obj) -> Endpoint:
    """The pod the Prometheus operator runs for a `Prometheus` custom resource."""
    spec = _spec(cr)
    name = _name(cr)
    pod_labels = ((spec.get("podMetadata") or {}).get("labels")) or {}
    labels = {
        **{str(k): str(v) for k, v in pod_labels.items()},
        "app.kubernetes.io/name": "prometheus",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "operator.prometheus.io/name": name,
        "prometheus": name,
    }
    return Endpoint(
        name=f"Prometheus/{_namespace(cr)}/{name}",
        namespace=_namespace(cr),
        labels=labels,
        ports={"web": (9090, TCP)},
        service_account=str(spec.get("serviceAccountName") or "default"),
    )


def alertmanager_endpoint(cr: Obj) -> Endpoint:
    """The pod the Prometheus operator runs for an `Alertmanager` custom resource."""
    spec = _spec(cr)
    name = _name(cr)
    pod_labels = ((spec.get("podMetadata") or {}).get("labels")) or {}
    labels = {
        **{str(k): str(v) for k, v in pod_labels.items()},
        "app.kubernetes.io/name": "alertmanager",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "alertmanager": name,
    }
    return Endpoint(
        name=f"Alertmanager/{_namespace(cr)}/{name}",
        namespace=_namespace(cr),
        labels=labels,
        ports={"web": (9093, TCP), "mesh-tcp": (9094, TCP), "mesh-udp": (9094, UDP)},
        service_account=str(spec.get("serviceAccountName") or "default"),
    )


def cnpg_endpoint(cluster: Obj) -> Endpoint:
    """A Postgres instance pod that CloudNativePG runs for a `Cluster` custom resource."""
    name = _name(cluster)
    return Endpoint(
        name=f"Cluster/{_namespace(cluster)}/{name}",
        namespace=_namespace(cluster),
        labels={"cnpg.io/cluster": name, "cnpg.io/podRole": "instance", "role": "primary"},
        ports={"postgresql": (5432, TCP), "metrics": (9187, TCP), "status": (8000, TCP)},
        service_account=name,
    )


def core_dns() -> Endpoint:
    """k3s's CoreDNS (deployed by k3s itself, so absent from the render)."""
    return Endpoint(
        name="Deployment/kube-system/coredns",
        namespace="kube-system",
        labels={"k8s-app": "kube-dns"},
        ports={"dns": (53, UDP), "dns-tcp": (53, TCP), "metrics": (9153, TCP)},
        service_account="coredns",
    )


def pods(
    objects: Iterable[Obj],
    *,
    node_address: str = DEFAULT_API_SERVER_ADDRESS,
    linkerd_namespace: str = LINKERD_NAMESPACE,
) -> list[Endpoint]:
    """The pods an object set runs: workloads, Pods, and operator-made pods from CRs.

    Prometheus and Alertmanager pods come from their `monitoring.coreos.com` resources,
    Postgres pods from CloudNativePG `Cluster` resources (postgresql.cnpg.io), and runner and
    listener pods from ARC `AutoscalingRunnerSet`s (`tools/checks/arc.py`). A pod is
    meshed when Linkerd injects it (annotation on the template or the namespace) or its
    template already carries a `linkerd-proxy` container (the control plane).
    """
    items = list(objects)
    ns_annotations = _namespace_annotations(items)
    result: list[Endpoint] = []
    for obj in [*items, *arc.listener_pods(items)]:
        kind = obj.get("kind")
        api = str(obj.get("apiVersion", ""))
        if kind == "Prometheus" and api.startswith("monitoring.coreos.com/"):
            result.append(prometheus_endpoint(obj))
        elif kind == "Alertmanager" and api.startswith("monitoring.coreos.com/"):
            result.append(alertmanager_endpoint(obj))
        elif kind == "Cluster" and api.startswith("postgresql.cnpg.io/"):
            result.append(cnpg_endpoint(obj))
        elif arc.is_runner_set(obj):
            runner = {**obj, "kind": "Pod", "spec": (_spec(obj).get("template") or {}).get("spec")}
            endpoint = pod_endpoint(runner, ns_annotations=ns_annotations.get(_namespace(obj)))
            if endpoint is not None:
                result.append(endpoint)
        else:
            endpoint = pod_endpoint(
                obj,
                ns_annotations=ns_annotations.get(_namespace(obj)),
                node_address=node_address,
                linkerd_namespace=linkerd_namespace,
            )
            if endpoint is not None:
                result.append(endpoint)
    return result


@dataclass(frozen=True)
class ServicePort:
    """One port of a Service."""

    name: str
    port: int
    target_port: int | str
    protocol: str


@dataclass(frozen=True, kw_only=True)
class Service:
    """A Service: its selector and ports."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    selector: Mapping[str, str] | None = None
    """None: a Service without a selector (its endpoints are managed by hand)."""
    ports: tuple[ServicePort, ...] = ()
    addresses: tuple[Endpoint, ...] = ()
    """Backends of a selectorless Service (its EndpointSlices, or built in)."""
    address_ports: Mapping[str, int] = field(default_factory=dict)
    """Port name → number on those addresses (EndpointSlice `ports`)."""

    def port_named(self, name: str) -> ServicePort | None:
        """The port with this name."""
        return next((p for p in self.ports if p.name == name), None)

    def port_numbered(self, number: int) -> ServicePort | None:
        """The port with this number."""
        return next((p for p in self.ports if p.port == number), None)


def _service_port(entry: Obj) -> ServicePort:
    port = int(entry["port"])
    target = entry.get("targetPort", port)
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    return ServicePort(
        name=str(entry.get("name") or ""),
        port=port,
        target_port=target if isinstance(target, str) else int(target),
        protocol=str(entry.get("protocol") or TCP),
    )


def _endpoint_slices(objects: Iterable[Obj]) -> dict[tuple[str, str], list[Obj]]:
    slices: dict[tuple[str, str], list[Obj]] = {}
    for obj in objects:
        service = _labels(obj).get("kubernetes.io/service-name")
        if obj.get("kind") == "EndpointSlice" and service:
            slices.setdefault((_namespace(obj), service), []).append(obj)
    return slices


def _slice_addresses(slices: Sequence[Obj]) -> tuple[tuple[Endpoint, ...], dict[str, int]]:
    addresses: list[Endpoint] = []
    ports: dict[str, int] = {}
    for piece in slices:
        for entry in piece.get("endpoints") or ():
            addresses += [world(f"address {a}", str(a)) for a in entry.get("addresses") or ()]
        ports.update({str(p.get("name") or ""): int(p["port"]) for p in piece.get("ports") or ()})
    return tuple(addresses), ports


def services(objects: Iterable[Obj]) -> list[Service]:
    """The Services of an object set; selectorless ones take their EndpointSlices' addresses."""
    items = list(objects)
    slices = _endpoint_slices(items)
    result = []
    for obj in items:
        if obj.get("kind") != "Service":
            continue
        spec = _spec(obj)
        selector = spec.get("selector")
        addresses, address_ports = _slice_addresses(slices.get((_namespace(obj), _name(obj)), []))
        result.append(
            Service(
                name=_name(obj),
                namespace=_namespace(obj),
                labels=_labels(obj),
                selector={str(k): str(v) for k, v in selector.items()} if selector else None,
                ports=tuple(_service_port(p) for p in spec.get("ports") or ()),
                addresses=() if selector else addresses,
                address_ports=address_ports,
            )
        )
    return result


def builtin_services(objects: Iterable[Obj], *, api: Endpoint, node: Endpoint) -> list[Service]:
    """Services the cluster has that no chart renders.

    `default/kubernetes` (the API server, 443 → 6443 on k3s) and, when the Prometheus
    operator runs with `--kubelet-service=<ns>/<name>`, the kubelet Service it maintains
    (every node's kubelet on 10250, plus 10255 and 4194).
    """
    result = [
        Service(
            name="kubernetes",
            namespace="default",
            labels={"component": "apiserver", "provider": "kubernetes"},
            ports=(ServicePort("https", 443, 6443, TCP),),
            addresses=(api,),
        )
    ]
    for obj in objects:
        template = _pod_template(obj)
        if template is None:
            continue
        for container in _spec(template).get("containers") or ():
            for arg in container.get("args") or ():
                if str(arg).startswith("--kubelet-service="):
                    namespace, _, name = str(arg).split("=", 1)[1].partition("/")
                    result.append(_kubelet_service(namespace, name, node))
    return result


def _kubelet_service(namespace: str, name: str, node: Endpoint) -> Service:
    return Service(
        name=name,
        namespace=namespace,
        labels={
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "app.kubernetes.io/name": "kubelet",
            "k8s-app": "kubelet",
        },
        ports=(
            ServicePort("https-metrics", 10250, 10250, TCP),
            ServicePort("http-metrics", 10255, 10255, TCP),
            ServicePort("cadvisor", 4194, 4194, TCP),
        ),
        addresses=(node,),
    )


def resolve_port(pod: Endpoint, target: int | str, protocol: str = TCP) -> int | None:
    """A numeric or named target port on a pod (None: the pod has no port of that name)."""
    if isinstance(target, int):
        return target
    named = pod.ports.get(target)
    if named is None or named[1] != protocol:
        return None
    return named[0]


def service_backends(
    service: Service, all_pods: Iterable[Endpoint], port: ServicePort | None = None
) -> list[tuple[Endpoint, int, str]]:
    """(pod, target port, protocol) behind a Service: one port, or every port if None."""
    chosen = (port,) if port is not None else service.ports
    if not service.selector:
        return _address_backends(service, chosen)
    result = []
    for pod in all_pods:
        if pod.is_address and not pod.host_network:
            continue
        if pod.namespace != service.namespace or not selector_matches(
            {"matchLabels": service.selector}, pod.labels
        ):
            continue
        for entry in chosen:
            number = resolve_port(pod, entry.target_port, entry.protocol)
            if number is not None:
                result.append((pod, number, entry.protocol))
    return result


def _address_backends(
    service: Service, chosen: Sequence[ServicePort]
) -> list[tuple[Endpoint, int, str]]:
    result = []
    for entry in chosen:
        number = service.address_ports.get(entry.name)
        if number is None and isinstance(entry.target_port, int):
            number = entry.target_port
        if number is not None:
            result += [(address, number, entry.protocol) for address in service.addresses]
    return result


# ---------------------------------------------------------------------------- required flows


@dataclass(frozen=True)
class RequiredFlow:
    """A connection the cluster needs to work."""

    source: Endpoint
    target: Endpoint
    port: int
    protocol: str
    why: str
    path: str | None = None
    """The HTTP path of the requests (scrapes), for Linkerd's route-level policy."""

    def __str__(self) -> str:
        where = f" {self.path}" if self.path else ""
        return f"{self.source} -> {self.target}:{self.port}/{self.protocol}{where} ({self.why})"


@dataclass(frozen=True)
class Problem:
    """A required flow whose target cannot be found in the object set."""

    what: str


@dataclass
class _Index:
    objects: list[Obj]
    pods: list[Endpoint]
    services: list[Service]
    namespaces: dict[str, dict[str, str]]
    problems: list[Problem] = field(default_factory=list)

    def service(self, namespace: str, name: str) -> Service | None:
        return next((s for s in self.services if s.namespace == namespace and s.name == name), None)


def _webhook_refs(obj: Obj) -> Iterator[tuple[str, Obj]]:
    kind = obj.get("kind")
    if kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for hook in obj.get("webhooks") or ():
            service = (hook.get("clientConfig") or {}).get("service")
            if service:
                yield f"{kind}/{_name(obj)} webhook {hook.get('name')}", service
    elif kind == "CustomResourceDefinition":
        conversion = _spec(obj).get("conversion") or {}
        service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
        if conversion.get("strategy") == "Webhook" and service:
            yield f"CRD/{_name(obj)} conversion webhook", service
    elif kind == "APIService":
        service = _spec(obj).get("service")
        if service:
            yield f"APIService/{_name(obj)} (aggregated API)", service


def _flows_to_backends(
    index: _Index,
    sources: Sequence[Endpoint],
    backends: Sequence[tuple[Endpoint, int, str]],
    reason: str,
    *,
    missing: str,
) -> list[RequiredFlow]:
    """A flow from each source to each backend; `missing` is a problem when either is empty."""
    if not sources or not backends:
        index.problems.append(Problem(missing))
    return [
        RequiredFlow(source, pod, number, protocol, reason)
        for source in sources
        for pod, number, protocol in backends
    ]


def _webhook_flows(index: _Index, api: Endpoint) -> list[RequiredFlow]:
    flows = []
    for what, ref in (r for obj in index.objects for r in _webhook_refs(obj)):
        namespace, name = str(ref.get("namespace")), str(ref.get("name"))
        service = index.service(namespace, name)
        number = int(ref.get("port") or 443)
        port = service.port_numbered(number) if service else None
        flows += _flows_to_backends(
            index,
            [api],
            service_backends(service, index.pods, port) if service and port else [],
            f"{what} via Service {namespace}/{name}",
            missing=f"{what}: Service {namespace}/{name}:{number} has no backing pod",
        )
    return flows


def _service_of_url(url: str, index: _Index) -> tuple[Service, ServicePort] | None:
    """The Service and port an in-cluster URL names (`http://<svc>.<ns>[.svc...]:<port>`)."""
    parsed = urlsplit(url)
    parts = (parsed.hostname or "").split(".")
    if len(parts) < 2:
        return None
    service = index.service(parts[1], parts[0])
    default = 443 if parsed.scheme == "https" else 80
    port = service.port_numbered(parsed.port or default) if service else None
    return (service, port) if service is not None and port is not None else None


def _keda_trigger_flows(index: _Index) -> list[RequiredFlow]:
    """KEDA's operator runs every ScaledObject trigger; a Prometheus trigger queries its
    `serverAddress` (keda v2.20.2 `pkg/scalers/prometheus_scaler.go`)."""
    operators = [
        p
        for p in index.pods
        if not p.is_address and selector_matches({"matchLabels": KEDA_OPERATOR_LABELS}, p.labels)
    ]
    flows = []
    for obj in index.objects:
        if obj.get("kind") != "ScaledObject" or not str(obj.get("apiVersion")).startswith(
            "keda.sh/"
        ):
            continue
        for trigger in _spec(obj).get("triggers") or ():
            address = (trigger.get("metadata") or {}).get("serverAddress")
            if trigger.get("type") != "prometheus" or not address:
                continue
            what = f"ScaledObject/{_namespace(obj)}/{_name(obj)} trigger {trigger.get('name')}"
            found = _service_of_url(str(address), index)
            flows += _flows_to_backends(
                index,
                operators,
                service_backends(found[0], index.pods, found[1]) if found else [],
                f"{what} queries {address}",
                missing=f"{what}: no KEDA operator, or {address} has no backing pod",
            )
    return flows


def _dns_flows(index: _Index, dns: Endpoint) -> list[RequiredFlow]:
    return [
        RequiredFlow(pod, dns, number, protocol, "DNS lookups")
        for pod in index.pods
        if not pod.is_address and pod is not dns
        for number, protocol in ((53, UDP), (53, TCP))
    ]


def _monitor_namespaces(monitor: Obj) -> set[str] | None:
    """Namespaces a ServiceMonitor/PodMonitor looks in (None: every namespace)."""
    selector = _spec(monitor).get("namespaceSelector") or {}
    if selector.get("any"):
        return None
    names = selector.get("matchNames")
    return {str(n) for n in names} if names else {_namespace(monitor)}


def _selected_by_prometheus(monitor: Obj, prometheus_cr: Obj | None, index: _Index) -> bool:
    """Whether a Prometheus CR picks up this monitor (its monitor and namespace selectors)."""
    if prometheus_cr is None:
        return True
    spec = _spec(prometheus_cr)
    kind = "serviceMonitor" if monitor.get("kind") == "ServiceMonitor" else "podMonitor"
    selector = spec.get(f"{kind}Selector")
    if selector is None or not selector_matches(selector, _labels(monitor)):
        return False
    ns_selector = spec.get(f"{kind}NamespaceSelector")
    if ns_selector is None:
        return _namespace(monitor) == _namespace(prometheus_cr)
    namespace = _namespace(monitor)
    labels = index.namespaces.get(namespace) or {NAME_LABEL: namespace}
    return selector_matches(ns_selector, labels)


def _in_namespaces(namespace: str | None, allowed_namespaces: set[str] | None) -> bool:
    return allowed_namespaces is None or namespace in allowed_namespaces


def _service_monitor_flows(monitor: Obj, index: _Index, prom: Endpoint) -> list[RequiredFlow]:
    spec = _spec(monitor)
    namespaces = _monitor_namespaces(monitor)
    chosen = [
        s
        for s in index.services
        if _in_namespaces(s.namespace, namespaces)
        and selector_matches(spec.get("selector"), s.labels)
    ]
    flows = []
    for endpoint in spec.get("endpoints") or ():
        for service in chosen:
            for pod, number, protocol in _monitor_backends(service, endpoint, index):
                why = f"ServiceMonitor/{_namespace(monitor)}/{_name(monitor)} scrapes Service {service.namespace}/{service.name}"
                path = str(endpoint.get("path") or "/metrics")
                flows.append(RequiredFlow(prom, pod, number, protocol, why, path))
    return flows


def _monitor_backends(
    service: Service, endpoint: Obj, index: _Index
) -> list[tuple[Endpoint, int, str]]:
    if endpoint.get("port"):
        port = service.port_named(str(endpoint["port"]))
        return service_backends(service, index.pods, port) if port else []
    target = endpoint.get("targetPort")
    if target is None:
        return []
    target_port: int | str = int(target) if str(target).isdigit() else str(target)
    probe = ServicePort(name="", port=0, target_port=target_port, protocol=TCP)
    return service_backends(service, index.pods, probe)


def _pod_monitor_flows(monitor: Obj, index: _Index, prom: Endpoint) -> list[RequiredFlow]:
    spec = _spec(monitor)
    namespaces = _monitor_namespaces(monitor)
    chosen = [
        p
        for p in index.pods
        if not (p.is_address and not p.host_network)
        and _in_namespaces(p.namespace, namespaces)
        and selector_matches(spec.get("selector"), p.labels)
    ]
    flows = []
    why = f"PodMonitor/{_namespace(monitor)}/{_name(monitor)}"
    for endpoint in spec.get("podMetricsEndpoints") or ():
        wanted = endpoint.get("port") or endpoint.get("portNumber") or endpoint.get("targetPort")
        if wanted is None:
            continue
        target: int | str = int(wanted) if str(wanted).isdigit() else str(wanted)
        for pod in chosen:
            number = resolve_port(pod, target)
            if number is not None:
                path = str(endpoint.get("path") or "/metrics")
                flows.append(RequiredFlow(prom, pod, number, TCP, f"{why} scrapes {pod}", path))
    return flows


def _annotation_flows(index: _Index, prom: Endpoint) -> list[RequiredFlow]:
    flows = []
    for pod in index.pods:
        if pod.annotations.get("prometheus.io/scrape") != "true":
            continue
        port = pod.annotations.get("prometheus.io/port")
        path = pod.annotations.get("prometheus.io/path", "/metrics")
        numbers = (
            [int(port)]
            if port and port.isdigit()
            else sorted(
                {n for n, proto in [*pod.ports.values(), *pod.unnamed_ports] if proto == TCP}
            )
        )
        flows += [
            RequiredFlow(prom, pod, n, TCP, "prometheus.io/scrape annotation", path)
            for n in numbers
        ]
    return flows


def _prometheus_crs(objects: Iterable[Obj]) -> list[Obj]:
    return [
        o
        for o in objects
        if o.get("kind") == "Prometheus"
        and str(o.get("apiVersion", "")).startswith("monitoring.coreos.com/")
    ]


def _scrape_flows(index: _Index, prometheus: Endpoint | None) -> list[RequiredFlow]:
    crs = _prometheus_crs(index.objects)
    pairs: list[tuple[Endpoint, Obj | None]] = (
        [(prometheus, None)] if prometheus else [(prometheus_endpoint(cr), cr) for cr in crs]
    )
    flows: list[RequiredFlow] = []
    for prom, cr in pairs:
        for monitor in index.objects:
            kind = monitor.get("kind")
            if kind not in ("ServiceMonitor", "PodMonitor") or not _selected_by_prometheus(
                monitor, cr, index
            ):
                continue
            if kind == "ServiceMonitor":
                flows += _service_monitor_flows(monitor, index, prom)
            else:
                flows += _pod_monitor_flows(monitor, index, prom)
        flows += _annotation_flows(index, prom)
    return flows


def rbac_service_accounts(objects: Iterable[Obj]) -> set[tuple[str, str]]:
    """(namespace, name) of every ServiceAccount a RoleBinding or ClusterRoleBinding names."""
    result: set[tuple[str, str]] = set()
    for obj in objects:
        if obj.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        for subject in obj.get("subjects") or ():
            if subject.get("kind") == "ServiceAccount":
                result.add((str(subject.get("namespace") or _namespace(obj)), str(subject["name"])))
    return result


def _api_client_flows(index: _Index, api: Endpoint) -> list[RequiredFlow]:
    """Pods whose ServiceAccount has RBAC bindings call the API server (6443 on k3s)."""
    clients = rbac_service_accounts(index.objects)
    return [
        RequiredFlow(
            pod,
            api,
            API_SERVER_PORT,
            TCP,
            f"ServiceAccount {pod.service_account} has RBAC bindings: an API client",
        )
        for pod in index.pods
        if not pod.is_address and (pod.namespace, pod.service_account) in clients
    ]


def _linkerd_flows(index: _Index, linkerd_namespace: str) -> list[RequiredFlow]:
    meshed = [p for p in index.pods if p.meshed]
    if not meshed:
        return []
    flows = []
    for name, role in LINKERD_CONTROL_SERVICES.items():
        service = index.service(linkerd_namespace, name)
        flows += _flows_to_backends(
            index,
            meshed,
            service_backends(service, index.pods) if service else [],
            f"linkerd-proxy calls the {role} service",
            missing=f"Linkerd {role}: Service {linkerd_namespace}/{name} has no backing pod",
        )
    return flows


def node(address: str = DEFAULT_API_SERVER_ADDRESS) -> Endpoint:
    """A node's own address (kubelet, host-network pods)."""
    return Endpoint(name=f"node {address}", host_network=True, address=address)


def _runs(found: Iterable[Endpoint], wanted: Endpoint) -> bool:
    return any(
        p.namespace == wanted.namespace
        and selector_matches({"matchLabels": dict(wanted.labels)}, p.labels)
        for p in found
    )


def _index(
    objects: Iterable[Obj],
    *,
    api: Endpoint,
    dns: Endpoint,
    node_address: str,
    linkerd_namespace: str,
) -> _Index:
    items = list(objects)
    found = pods(items, node_address=node_address, linkerd_namespace=linkerd_namespace)
    if not _runs(found, dns):
        found.append(dns)
    return _Index(
        objects=items,
        pods=found,
        services=[*services(items), *builtin_services(items, api=api, node=node(node_address))],
        namespaces=namespace_labels(items),
    )


def required_flows(
    objects: Iterable[Obj],
    *,
    dns: Endpoint | None = None,
    prometheus: Endpoint | None = None,
    api: Endpoint | None = None,
    node_address: str | None = None,
    linkerd_namespace: str = LINKERD_NAMESPACE,
    api_clients: bool = False,
    problems: list[Problem] | None = None,
) -> list[RequiredFlow]:
    """Every connection the object set needs, in a stable order.

    `dns` defaults to k3s's CoreDNS (`core_dns()`); `prometheus` to the pods of every
    `Prometheus` resource in `objects` (with their monitor selectors applied; an explicit
    endpoint scrapes every monitor); `api` to `api_server()`; `node_address` (where
    host-network pods and kubelets live) to the API server's address. Targets that cannot be
    found (a webhook Service without pods) are appended to `problems` when given.

    `api_clients` adds a heuristic: every pod whose ServiceAccount some (Cluster)RoleBinding
    names calls the API server. It is off by default because RBAC can serve a process outside
    the pod's network (the Linkerd CNI plugin runs in the host's namespace with the
    DaemonSet's token).
    """
    api = api or api_server()
    dns = dns or core_dns()
    index = _index(
        objects,
        api=api,
        dns=dns,
        node_address=node_address or api.address or DEFAULT_API_SERVER_ADDRESS,
        linkerd_namespace=linkerd_namespace,
    )
    flows = [
        *_webhook_flows(index, api),
        *_dns_flows(index, dns),
        *_scrape_flows(index, prometheus),
        *_keda_trigger_flows(index),
        *_linkerd_flows(index, linkerd_namespace),
        *(_api_client_flows(index, api) if api_clients else []),
    ]
    if problems is not None:
        problems.extend(index.problems)
    unique = {(str(f), f.source.name, f.target.name): f for f in flows}
    return list(unique.values())


# ---------------------------------------------------------------------------- Linkerd policy


def _refs_of_kind(items: Iterable[Obj], kind: str, namespace: str) -> dict[str, Obj]:
    return {_name(o): o for o in items if o.get("kind") == kind and _namespace(o) == namespace}


def _server_selects(server: Obj, dst: Endpoint, port: int) -> bool:
    spec = _spec(server)
    wanted = spec.get("port")
    number = resolve_port(dst, wanted if isinstance(wanted, str) else int(wanted or 0))
    return number == port and selector_matches(spec.get("podSelector"), dst.labels)


def _identity(src: Endpoint) -> str | None:
    if not src.meshed or src.namespace is None:
        return None
    return f"{src.service_account}.{src.namespace}.serviceaccount.identity.linkerd.cluster.local"


def _identity_matches(pattern: str, identity: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return identity.endswith(pattern[1:])
    return pattern == identity


def _mesh_tls_ok(authn: Obj, src: Endpoint, namespace: str) -> bool:
    identity = _identity(src)
    if identity is None:
        return False
    spec = _spec(authn)
    if any(_identity_matches(str(p), identity) for p in spec.get("identities") or ()):
        return True
    for ref in spec.get("identityRefs") or ():
        ref_ns = str(ref.get("namespace") or namespace)
        kind = ref.get("kind")
        if kind == "ServiceAccount" and (ref.get("name"), ref_ns) in (
            (src.service_account, src.namespace),
            ("*", src.namespace),
        ):
            return True
        if kind == "Namespace" and ref.get("name") in (src.namespace, "*"):
            return True
    return False


def _network_ok(authn: Obj, src: Endpoint, pod_cidr: IPv4Network) -> bool:
    for net in _spec(authn).get("networks") or ():
        cidr = ip_network(str(net["cidr"]), strict=False)
        excepts = [ip_network(str(e), strict=False) for e in net.get("except") or ()]
        if src.is_address and src.address is not None:
            ip = ip_address(src.address)
            if ip in cidr and not any(ip in e for e in excepts):
                return True
        elif (
            isinstance(cidr, IPv4Network)
            and pod_cidr.subnet_of(cidr)
            and not any(isinstance(e, IPv4Network) and e.overlaps(pod_cidr) for e in excepts)
        ):
            return True
    return False


def _authn_ok(
    ref: Obj, items: Sequence[Obj], namespace: str, src: Endpoint, pod_cidr: IPv4Network
) -> bool:
    kind = str(ref.get("kind"))
    ref_ns = str(ref.get("namespace") or namespace)
    if kind == "ServiceAccount":
        return src.meshed and (src.namespace, src.service_account) == (ref_ns, ref.get("name"))
    authn = _refs_of_kind(items, kind, ref_ns).get(str(ref.get("name")))
    if authn is None:
        return False
    if kind == "MeshTLSAuthentication":
        return _mesh_tls_ok(authn, src, ref_ns)
    if kind == "NetworkAuthentication":
        return _network_ok(authn, src, pod_cidr)
    return False


def _in_cluster_networks(src: Endpoint) -> bool:
    if not src.is_address:
        return True
    return src.address is not None and any(
        ip_address(src.address) in net for net in LINKERD_CLUSTER_NETWORKS
    )


def _access_policy_admits(access: str, src: Endpoint) -> bool:
    """A Server's `accessPolicy` on its own (before any AuthorizationPolicy)."""
    if access in ("all-unauthenticated", "audit"):
        return True
    if access == "cluster-unauthenticated":
        return _in_cluster_networks(src)
    if access in ("all-authenticated", "cluster-authenticated"):
        return src.meshed
    return False


def _policy_targets(policy: Obj, server: Obj, routes: Mapping[str, Obj]) -> bool:
    target = _spec(policy).get("targetRef") or {}
    kind, name = target.get("kind"), target.get("name")
    if kind == "Server":
        return name == _name(server)
    if kind == "Namespace":
        return True
    if kind in ("HTTPRoute", "GRPCRoute"):
        route = routes.get(str(name))
        return route is not None and _attached(route, server)
    return False


def _path_score(match_path: Obj, path: str) -> int | None:
    kind = match_path.get("type", "PathPrefix")
    value = str(match_path.get("value", "/"))
    if kind == "Exact":
        return 1_000_000 if value == path else None
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        return (
            len(prefix) if not prefix or path == prefix or path.startswith(f"{prefix}/") else None
        )
    return None


def _route_score(route: Obj, path: str, method: str) -> int | None:
    """How specifically a route matches a request (Gateway API precedence), None: not at all."""
    best: int | None = None
    for rule in _spec(route).get("rules") or [{}]:
        for match in rule.get("matches") or [{}]:
            wanted = match.get("method")
            if wanted and wanted != method:
                continue
            score = _path_score(match.get("path") or {}, path)
            if score is not None:
                best = max(best or 0, score * 2 + (1 if wanted else 0))
    return best


def _attached(route: Obj, server: Obj) -> bool:
    return any(
        p.get("kind") == "Server" and p.get("name") == _name(server)
        for p in _spec(route).get("parentRefs") or ()
    )


def _chosen_routes(
    server: Obj, routes: Mapping[str, Obj], path: str | None, method: str
) -> dict[str, Obj]:
    """The routes whose policies count: all attached ones, or the one `path` selects."""
    attached = {name: route for name, route in routes.items() if _attached(route, server)}
    if path is None or not attached:
        return attached
    scored = [
        (score, name)
        for name, route in attached.items()
        if (score := _route_score(route, path, method)) is not None
    ]
    if not scored:
        return {}
    best = max(scored)[1]
    return {best: attached[best]}


def linkerd_allowed(
    objects: Iterable[Obj],
    src: Endpoint,
    dst: Endpoint,
    port: int,
    *,
    path: str | None = None,
    method: str = "GET",
    pod_cidr: IPv4Network = DEFAULT_POD_CIDR,
) -> Decision:
    """Whether Linkerd's inbound policy on a meshed `dst` admits `src` on `port`.

    With `path` (and `method`), only the most specific matching route of the Server counts
    (Exact over the longest PathPrefix, a method match breaking ties); without, any route
    whose policy admits `src` is enough. Policies on the Server or its Namespace apply to
    every route.
    """
    flow = f"{src} -> {dst}:{port}"
    if not dst.meshed or dst.namespace is None:
        return Decision(True, f"{flow}: target not meshed")
    items = list(objects)
    ns = dst.namespace
    servers = [
        s for s in _refs_of_kind(items, "Server", ns).values() if _server_selects(s, dst, port)
    ]
    if not servers:
        return Decision(True, f"{flow}: no Server covers the port (default inbound policy)")
    routes = {**_refs_of_kind(items, "HTTPRoute", ns), **_refs_of_kind(items, "GRPCRoute", ns)}
    policies = list(_refs_of_kind(items, "AuthorizationPolicy", ns).values())
    considered: list[str] = []
    for server in servers:
        access = str(_spec(server).get("accessPolicy") or "deny")
        if _access_policy_admits(access, src):
            return Decision(True, f"{flow}: Server {ns}/{_name(server)} accessPolicy {access}")
        chosen = _chosen_routes(server, routes, path, method)
        for policy in (p for p in policies if _policy_targets(p, server, chosen)):
            considered.append(f"{ns}/{_name(policy)}")
            refs = _spec(policy).get("requiredAuthenticationRefs") or ()
            if all(_authn_ok(r, items, ns, src, pod_cidr) for r in refs):
                return Decision(
                    True, f"{flow}: authorized by AuthorizationPolicy {ns}/{_name(policy)}"
                )
    names = ", ".join(f"{ns}/{_name(s)}" for s in servers)
    tried = ", ".join(considered) or "none"
    return Decision(
        False,
        f"{flow}: Linkerd denies (Server {names}; authorization policies considered: {tried})",
    )


# ---------------------------------------------------------------------------- check


def check(
    objects: Iterable[Obj],
    *,
    api: Endpoint | None = None,
    node_address: str | None = None,
    pod_cidr: IPv4Network = DEFAULT_POD_CIDR,
    linkerd: bool = True,
    api_clients: bool = False,
) -> list[str]:
    """One line per required flow that is denied, or whose target cannot be found.

    Each line names the source, the target, port and protocol, the denying side and the
    policies it considered, and why the flow is needed. `linkerd`: also apply the Linkerd
    authorization layer (`linkerd_allowed`) to flows NetworkPolicy allows.
    """
    items = list(objects)
    problems: list[Problem] = []
    flows = required_flows(
        items, api=api, node_address=node_address, api_clients=api_clients, problems=problems
    )
    policies = network_policies(items)
    ns_labels = namespace_labels(items)
    lines = [f"unresolved: {p.what}" for p in problems]
    for flow in flows:
        decision = allowed(
            policies, flow.source, flow.target, flow.port, flow.protocol, namespaces=ns_labels
        )
        if not decision:
            lines.append(f"denied by NetworkPolicy: {decision.reason} [needed: {_need(flow)}]")
            continue
        if linkerd and flow.protocol == TCP:
            mesh = linkerd_allowed(
                items, flow.source, flow.target, flow.port, path=flow.path, pod_cidr=pod_cidr
            )
            if not mesh:
                lines.append(f"denied by Linkerd: {mesh.reason} [needed: {_need(flow)}]")
    return lines


def _need(flow: RequiredFlow) -> str:
    return f"{flow.why}, path {flow.path}" if flow.path else flow.why
