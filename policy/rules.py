"""The platform's invariants as pure checks over one resource.

Each rule takes a `Resource` (type token, name, engine inputs, protection flags) and
returns the violations it finds as messages. The same rules run in two places:
`policy/__main__.py` wraps them in a Pulumi CrossGuard policy pack for `pulumi preview`
and `pulumi up`, and `tools/policy_check.py` runs them over an offline render
(`build/<stack>/plan.json`). Inputs use the engine's property names (camelCase for AWS,
the Kubernetes object as written for Kubernetes), which both places see alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.secret_text import looks_like_secret

SECRET_MARK = "[secret]"  # noqa: S105 (the render's mark, not a password)
"""How the offline render writes a secret value."""

WORKLOAD_POD_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
"""Where the pod spec sits in each workload kind."""

STATEFUL_TYPES = frozenset(
    {
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:postgresql.cnpg.io/v1:Cluster",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
    }
)
"""Resources whose deletion loses data."""

WORLD_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
WEB_PORTS = frozenset({80, 443})
SECRET_NAME = re.compile(r"(KEY|TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL)S?$", re.IGNORECASE)
"""Env variables that by their name carry a secret (`API_KEY`, `DB_PASSWORD`, ...)."""

SECRET_DATA_KEY = re.compile(
    r"(^|[._-])(passwords?|passwd|secrets?|tokens?|api[._-]?keys?|credentials?|private[._-]?key)"
    r"($|[._-])|\.(key|pem|p12|pfx)$|^id_(rsa|ed25519|ecdsa)$",
    re.IGNORECASE,
)
"""ConfigMap keys that by their name hold a secret (`password`, `api-key`, `tls.key`, ...)."""


@dataclass(frozen=True, kw_only=True)
class Resource:
    """What a rule sees of a resource."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    protect: bool = False
    retain_on_delete: bool = False

    @property
    def kind(self) -> str:
        """Kubernetes kind from the type token (`kubernetes:apps/v1:Deployment` → Deployment)."""
        return self.type.rsplit(":", 1)[-1] if self.type.startswith("kubernetes:") else ""


@dataclass(frozen=True, kw_only=True)
class RuleSettings:
    """Per-stack switches of the rules."""

    require_protection: bool
    """Stateful resources must be protected (prod)."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One invariant: a name, what it asks, and its check."""

    name: str
    description: str
    check: Callable[[Resource, RuleSettings], list[str]]


def _dig(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def pod_spec(resource: Resource) -> Mapping[str, Any] | None:
    """The pod spec of a Kubernetes workload, or None for anything else."""
    path = WORKLOAD_POD_PATHS.get(resource.kind)
    if path is None or not resource.type.startswith("kubernetes:"):
        return None
    spec = _dig(resource.inputs, path)
    return spec if isinstance(spec, Mapping) else None


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Init, regular and ephemeral containers of a pod spec."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or ():
            if isinstance(container, Mapping):
                yield container


def check_pinned_images(resource: Resource, _: RuleSettings) -> list[str]:
    """Every container image names a fixed version: a digest or a tag that is not `latest`."""
    spec = pod_spec(resource)
    if spec is None:
        return []
    problems = []
    for container in containers(spec):
        image = str(container.get("image", ""))
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if not tag or tag == "latest":
            problems.append(
                f"container {container.get('name')!r} image {image!r} is not pinned "
                "(use a version tag or a digest, never `latest`)"
            )
    return problems


def check_requests_and_limits(resource: Resource, _: RuleSettings) -> list[str]:
    """Every container sets CPU and memory requests and limits."""
    spec = pod_spec(resource)
    if spec is None:
        return []
    problems = []
    for container in containers(spec):
        for section in ("requests", "limits"):
            values = _dig(container, ("resources", section)) or {}
            missing = [r for r in ("cpu", "memory") if r not in values]
            if missing:
                problems.append(
                    f"container {container.get('name')!r} has no {section} for {', '.join(missing)}"
                )
    return problems


def _restricted_container_problems(
    container: Mapping[str, Any], pod: Mapping[str, Any]
) -> list[str]:
    name = container.get("name")
    security = container.get("securityContext") or {}
    pod_security = pod.get("securityContext") or {}
    problems = []
    if security.get("privileged"):
        problems.append(f"container {name!r} is privileged")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"container {name!r} must set allowPrivilegeEscalation: false")
    drop = _dig(security, ("capabilities", "drop")) or []
    if "ALL" not in drop:
        problems.append(f"container {name!r} must drop ALL capabilities")
    added = set(_dig(security, ("capabilities", "add")) or []) - {"NET_BIND_SERVICE"}
    if added:
        problems.append(f"container {name!r} adds capabilities {sorted(added)}")
    non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
    if non_root is not True:
        problems.append(f"container {name!r} must run as non-root (runAsNonRoot: true)")
    seccomp = _dig(security, ("seccompProfile", "type")) or _dig(
        pod_security, ("seccompProfile", "type")
    )
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"container {name!r} needs seccompProfile RuntimeDefault or Localhost")
    return problems


def check_pod_security(resource: Resource, _: RuleSettings) -> list[str]:
    """Pods meet Pod Security "restricted", the GPU servers included."""
    spec = pod_spec(resource)
    if spec is None:
        return []
    problems = [
        f"pod uses {field}" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)
    ]
    problems += [
        f"volume {v.get('name')!r} is a hostPath"
        for v in spec.get("volumes") or ()
        if isinstance(v, Mapping) and "hostPath" in v
    ]
    for container in containers(spec):
        problems += _restricted_container_problems(container, spec)
        problems += [
            f"container {container.get('name')!r} binds hostPort {p['hostPort']}"
            for p in container.get("ports") or ()
            if isinstance(p, Mapping) and p.get("hostPort")
        ]
    return problems


def _looks_secret(value: Any) -> bool:
    """A value that is a secret by its shape (the render's redaction mark included)."""
    return isinstance(value, str) and (SECRET_MARK in value or looks_like_secret(value))


def check_no_clear_secrets(resource: Resource, _: RuleSettings) -> list[str]:
    """No secret in a ConfigMap or in a container's plain `env` value.

    Decided by structure first: CrossGuard hands a policy the plain value of a secret
    input (`pulumi_policy/deserialize.py` unwraps the engine's secret envelope), so where a
    value sits (a ConfigMap key named like a secret, an env variable named like one with a
    plain `value`) is what tells, and its shape (a key format, a long opaque token) is the
    second net for secrets under innocent names."""
    problems = []
    if resource.type == "kubernetes:core/v1:ConfigMap":
        for section in ("data", "binaryData"):
            for key, value in (resource.inputs.get(section) or {}).items():
                if SECRET_DATA_KEY.search(str(key)):
                    problems.append(f"ConfigMap key {key!r} is named as a secret; use a Secret")
                elif _looks_secret(value):
                    problems.append(f"ConfigMap key {key!r} holds a secret value")
    spec = pod_spec(resource)
    for container in containers(spec) if spec is not None else ():
        for env in container.get("env") or ():
            if not isinstance(env, Mapping) or "value" not in env:
                continue
            value, name = env.get("value"), str(env.get("name", ""))
            if (SECRET_NAME.search(name) and value) or _looks_secret(value):
                problems.append(
                    f"container {container.get('name')!r} env {name!r} is a plain value; "
                    "use valueFrom.secretKeyRef"
                )
    return problems


def check_ec2_hardening(resource: Resource, _: RuleSettings) -> list[str]:
    """EC2 instances require IMDSv2 and encrypt every volume."""
    problems = []
    if resource.type == "aws:ec2/instance:Instance":
        if _dig(resource.inputs, ("metadataOptions", "httpTokens")) != "required":
            problems.append("instance does not require IMDSv2 (metadataOptions.httpTokens)")
        if _dig(resource.inputs, ("rootBlockDevice", "encrypted")) is not True:
            problems.append("root volume is not encrypted")
        for device in resource.inputs.get("ebsBlockDevices") or ():
            if not device.get("encrypted"):
                problems.append(f"EBS volume {device.get('deviceName')!r} is not encrypted")
    if resource.type == "aws:ebs/volume:Volume" and resource.inputs.get("encrypted") is not True:
        problems.append("EBS volume is not encrypted")
    return problems


def _ingress_rules(resource: Resource) -> Iterator[Mapping[str, Any]]:
    """Ingress rules of a security group or a standalone rule, in one shape."""
    inputs = resource.inputs
    if resource.type == "aws:ec2/securityGroup:SecurityGroup":
        yield from inputs.get("ingress") or ()
    elif resource.type == "aws:ec2/securityGroupRule:SecurityGroupRule":
        if inputs.get("type") == "ingress":
            yield inputs
    elif resource.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        yield {
            "fromPort": inputs.get("fromPort"),
            "toPort": inputs.get("toPort"),
            "protocol": inputs.get("ipProtocol"),
            "cidrBlocks": [inputs["cidrIpv4"]] if inputs.get("cidrIpv4") else [],
            "ipv6CidrBlocks": [inputs["cidrIpv6"]] if inputs.get("cidrIpv6") else [],
        }


def check_world_ports(resource: Resource, _: RuleSettings) -> list[str]:
    """Nothing but 80/tcp and 443/tcp is open to 0.0.0.0/0 or ::/0."""
    problems = []
    for rule in _ingress_rules(resource):
        cidrs = set(rule.get("cidrBlocks") or ()) | set(rule.get("ipv6CidrBlocks") or ())
        if not cidrs & WORLD_CIDRS:
            continue
        low, high = rule.get("fromPort"), rule.get("toPort")
        if low != high or low not in WEB_PORTS or str(rule.get("protocol")) not in ("tcp", "6"):
            problems.append(
                f"ingress {rule.get('protocol')} {low}-{high} is open to the world; "
                "only 80/tcp and 443/tcp may be"
            )
    return problems


def check_protected(resource: Resource, settings: RuleSettings) -> list[str]:
    """Stateful resources are protected from deletion (or retained) where required."""
    if not settings.require_protection or resource.type not in STATEFUL_TYPES:
        return []
    if resource.protect or resource.retain_on_delete:
        return []
    return ["stateful resource is neither protected nor retained on delete"]


def check_route_tls(resource: Resource, _: RuleSettings) -> list[str]:
    """Every Ingress and Traefik IngressRoute serves TLS."""
    if resource.type == "kubernetes:networking.k8s.io/v1:Ingress":
        return [] if _dig(resource.inputs, ("spec", "tls")) else ["Ingress has no spec.tls"]
    if resource.type.startswith("kubernetes:traefik.io/") and resource.kind == "IngressRoute":
        spec = resource.inputs.get("spec") or {}
        problems = [] if spec.get("tls") else ["IngressRoute has no spec.tls"]
        if "web" in (spec.get("entryPoints") or ()):
            problems.append("IngressRoute listens on the plain-HTTP entry point `web`")
        return problems
    return []


RULES: tuple[Rule, ...] = (
    Rule(
        name="pinned-images",
        description="Container images are pinned to a version tag or digest, never `latest`.",
        check=check_pinned_images,
    ),
    Rule(
        name="requests-and-limits",
        description="Every container sets CPU and memory requests and limits.",
        check=check_requests_and_limits,
    ),
    Rule(
        name="pod-security-restricted",
        description="Pods meet Pod Security `restricted`, the GPU servers included.",
        check=check_pod_security,
    ),
    Rule(
        name="no-clear-secrets",
        description="No secret value in a ConfigMap or a plain container env value.",
        check=check_no_clear_secrets,
    ),
    Rule(
        name="ec2-imdsv2-encrypted",
        description="EC2 instances require IMDSv2 and encrypt their volumes.",
        check=check_ec2_hardening,
    ),
    Rule(
        name="world-open-web-ports-only",
        description="No port but 80/443 is open to 0.0.0.0/0.",
        check=check_world_ports,
    ),
    Rule(
        name="stateful-protected",
        description="Stateful resources are protected from deletion in prod.",
        check=check_protected,
    ),
    Rule(
        name="routes-use-tls",
        description="Every Ingress and IngressRoute has TLS.",
        check=check_route_tls,
    ),
)
