"""What a real `pulumi preview` plans for one resource: create, same, update or replace.

The engine asks each resource's provider to diff the old inputs (the state) against the new
ones; providers decide replacements from their schema. This module holds, per type the
platform uses, the properties whose change (or unknown value at preview) makes the provider
plan a replacement, read from each provider's source at the pinned version:

* pulumi-aws 7.51.1 bridges terraform-provider-aws: a property marked `ForceNew` in its
  resource schema (`internal/service/<service>/<resource>.go`) replaces, and the bridge
  plans delete-before-replace when the replaced resource's auto-named property (`name`,
  `bucket`) was given explicitly (pulumi-terraform-bridge `pkg/tfbridge/provider.go` `Diff`
  and `nameRequiresDeleteBeforeReplace` in `pkg/tfbridge/schema.go`). Schemas read in
  pulumi/terraform-provider-aws `patched-v5.14.0` and hashicorp/terraform-provider-aws
  `internal/service/ec2/ec2_instance.go`; `primary_network_interface` (upstream v6, after
  those) is listed with `network_interface.network_interface_id`, which it supersedes and
  which is `ForceNew` (the primary interface of an instance cannot be swapped).
* pulumi-kubernetes 4.34.2: `metadata.name`/`metadata.namespace` of every object and the
  per-kind fields of `forceNew` (`provider/pkg/provider/diff.go`: ConfigMap `data` unless
  `enableConfigMapMutable`, Secret `type`/`data`/`stringData` unless `enableSecretMutable`,
  both off by default); a replaced object whose explicit name stays the same is deleted
  first (`Diff` in `provider/pkg/provider/provider.go`); a Helm release replaces on
  `name`/`namespace` (`helm_release.go`). The provider itself: `DiffConfig` in
  `provider.go` (see `kubernetes_provider_replaces`). Read at pulumi/pulumi-kubernetes
  94977969 (after v4.32.0; the DiffConfig and forceNew code is older than both).
* pulumi-command 1.2.1: `triggers` is the only `replaceOnChanges` property
  (`provider/cmd/pulumi-resource-command/schema.json`); on an update its outputs become
  unknown at preview (pulumi-go-provider 1.3.0 `infer/resource.go`, `markComputed`: every
  output depends on every input by default).
* pulumi-random 4.21.4 and pulumi-tls 5.6.2 bridge terraform-provider-random and -tls, whose
  attributes carry `RequiresReplace` (`internal/provider/resource_*.go`), all but the
  certificate's `early_renewal_hours`.
* the LiteLLM virtual keys are this project's dynamic provider: its own `diff` decides.

The engine replaces a resource whose provider is replaced (`providerChanged` in
pulumi/pulumi `pkg/resource/deploy/step_generator.go`). Values the render shows as
`"[secret]"` compare equal: a changed secret is invisible here (docs/delivery.md says so).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

UNKNOWN = "[unknown]"
"""How the preview shows a value that is known only once `pulumi up` has run."""

Op = Literal["create", "same", "update", "replace"]

_K8S_METADATA = ("metadata.name", "metadata.namespace")
_LABEL_SELECTOR = ("spec.selector",)

AWS_REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock", "instanceTenancy", "ipv4IpamPoolId", "ipv4NetmaskLength"),
    "aws:ec2/subnet:Subnet": (
        "availabilityZone",
        "availabilityZoneId",
        "cidrBlock",
        "ipv6Native",
        "outpostArn",
        "vpcId",
    ),
    # Attaching it to another VPC is a detach and an attach, in place.
    "aws:ec2/internetGateway:InternetGateway": (),
    "aws:ec2/routeTable:RouteTable": ("vpcId",),
    # Moving a subnet to another table is ReplaceRouteTableAssociation, in place.
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("gatewayId", "subnetId"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("vpcId",),
    "aws:ec2/securityGroup:SecurityGroup": ("description", "name", "namePrefix", "vpcId"),
    "aws:ec2/flowLog:FlowLog": (
        "deliverCrossAccountRole",
        "destinationOptions",
        "eniId",
        "iamRoleArn",
        "logDestination",
        "logDestinationType",
        "logFormat",
        "logGroupName",
        "maxAggregationInterval",
        "subnetId",
        "trafficType",
        "transitGatewayAttachmentId",
        "transitGatewayId",
        "vpcId",
    ),
    "aws:ec2/networkInterface:NetworkInterface": ("interfaceType", "subnetId"),
    "aws:ec2/eip:Eip": ("address", "domain", "networkBorderGroup", "publicIpv4Pool"),
    # `userData`/`userDataBase64` replace only with `userDataReplaceOnChange` (the
    # schema's CustomizeDiff `ForceNewIf`): see `_instance_replace_keys`. Type, IAM
    # profile, metadata options, monitoring and root volume size/type update in place.
    "aws:ec2/instance:Instance": (
        "ami",
        "associatePublicIpAddress",
        "availabilityZone",
        "cpuCoreCount",
        "cpuOptions",
        "cpuThreadsPerCore",
        "ebsBlockDevices",
        "ebsOptimized",
        "enclaveOptions.enabled",
        "ephemeralBlockDevices",
        "hibernation",
        "hostId",
        "instanceMarketOptions",
        "ipv6AddressCount",
        "ipv6Addresses",
        "keyName",
        "launchTemplate",
        "networkInterfaces",
        "placementGroup",
        "placementPartitionNumber",
        "primaryNetworkInterface",
        "privateIp",
        "rootBlockDevice.encrypted",
        "rootBlockDevice.kmsKeyId",
        "securityGroups",
        "subnetId",
        "tenancy",
    ),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    "aws:iam/instanceProfile:InstanceProfile": ("name", "namePrefix", "path"),
    "aws:iam/rolePolicy:RolePolicy": ("name", "namePrefix", "role"),
    "aws:iam/user:User": (),
    "aws:iam/userPolicy:UserPolicy": ("name", "namePrefix", "user"),
    "aws:iam/accessKey:AccessKey": ("pgpKey", "user"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("clientIdLists", "url"),
    "aws:kms/key:Key": ("customKeyStoreId", "customerMasterKeySpec", "keyUsage", "multiRegion"),
    "aws:kms/alias:Alias": ("name", "namePrefix"),
    "aws:route53/record:Record": ("name", "zoneId"),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "bucket",
        "expectedBucketOwner",
    ),
    "aws:s3/bucketLogging:BucketLogging": ("bucket", "expectedBucketOwner"),
    "aws:s3/bucketObjectv2:BucketObjectv2": ("bucket", "key"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ("bucket",),
    "aws:s3/bucketPolicy:BucketPolicy": ("bucket",),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ("bucket",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "bucket",
        "expectedBucketOwner",
    ),
    "aws:s3/bucketVersioning:BucketVersioning": ("bucket", "expectedBucketOwner"),
    "aws:ssm/parameter:Parameter": ("name",),
    # pulumi-aws 7 gives every resource a `region` argument defaulting to the provider's
    # and replacing on change: a new provider region moves (replaces) everything on it.
    "pulumi:providers:aws": ("region",),
}

AWS_AUTONAMED = {
    "aws:iam/role:Role": "name",
    "aws:iam/instanceProfile:InstanceProfile": "name",
    "aws:iam/rolePolicy:RolePolicy": "name",
    "aws:iam/user:User": "name",
    "aws:iam/userPolicy:UserPolicy": "name",
    "aws:ec2/securityGroup:SecurityGroup": "name",
    "aws:kms/alias:Alias": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:ssm/parameter:Parameter": "name",
}
"""The property pulumi-aws fills with an auto-name when the program gives none; given
explicitly, a replacement must delete the old resource first (the name is taken)."""

OTHER_REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "command:remote:Command": ("triggers",),
    "command:local:Command": ("triggers",),
    "random:index/randomBytes:RandomBytes": ("keepers", "length"),
    "random:index/randomPassword:RandomPassword": (
        "keepers",
        "length",
        "lower",
        "minLower",
        "minNumeric",
        "minSpecial",
        "minUpper",
        "number",
        "numeric",
        "overrideSpecial",
        "special",
        "upper",
    ),
    "tls:index/privateKey:PrivateKey": ("algorithm", "ecdsaCurve", "rsaBits"),
    "tls:index/selfSignedCert:SelfSignedCert": (
        "allowedUses",
        "dnsNames",
        "ipAddresses",
        "isCaCertificate",
        "maxPathLength",
        "privateKeyPem",
        "setAuthorityKeyId",
        "setSubjectKeyId",
        "subject",
        "uris",
        "validityPeriodHours",
    ),
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
}

KUBERNETES_FORCE_NEW: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): _LABEL_SELECTOR,
    ("apps", "DaemonSet"): _LABEL_SELECTOR,
    ("apps", "StatefulSet"): (
        "spec.podManagementPolicy",
        "spec.revisionHistoryLimit",
        "spec.selector",
        "spec.serviceName",
        "spec.volumeClaimTemplates",
    ),
    ("batch", "Job"): ("spec.completions", "spec.parallelism", "spec.selector", "spec.template"),
    ("core", "ConfigMap"): ("binaryData", "data"),
    ("core", "Secret"): ("data", "stringData", "type"),
    ("core", "PersistentVolumeClaim"): (
        "spec.accessModes",
        "spec.selector",
        "spec.storageClassName",
        "spec.volumeName",
    ),
    ("core", "ResourceQuota"): ("spec.scopes",),
    ("core", "Service"): ("spec.clusterIP",),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("roleRef",),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("roleRef",),
    ("storage.k8s.io", "StorageClass"): ("parameters", "provisioner"),
}
"""pulumi-kubernetes' `forceNew` table by (group, kind), for the versions the platform
uses (`apps/v1`, `batch/v1`, `core/v1`, ...); every other kind replaces on its identity only."""

UNKNOWN_AFTER_UPDATE = {
    "command:remote:Command": ("stdout", "stderr"),
    "command:local:Command": ("stdout", "stderr"),
    "kubernetes:helm.sh/v3:Release": ("status",),
}
"""Outputs a provider leaves unknown at preview when the resource is only updated."""


@dataclass(frozen=True)
class Step:
    """What a preview plans for one resource."""

    op: Op
    replace_keys: tuple[str, ...] = ()
    """The properties (or `provider`) that force the replacement."""
    delete_before_replace: bool = False
    """The old resource goes first: whatever it serves is down until the new one is up."""
    changed: tuple[str, ...] = ()
    """Every changed property path (dotted), unknown values included."""

    def to_json(self) -> dict[str, Any]:
        """The step as `preview.json` records it."""
        return {
            "op": self.op,
            "replaceKeys": list(self.replace_keys),
            "deleteBeforeReplace": self.delete_before_replace,
            "changed": list(self.changed),
        }


class UnknownResourceTypeError(KeyError):
    """A type with no replace-on-change rules: add them here, with their source."""


def is_unknown(value: Any) -> bool:
    """Whether a recorded value is, or holds, a value unknown at preview."""
    if value == UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_unknown(v) for v in value)
    return False


def changed_paths(old: Any, new: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every leaf that differs between two JSON values, as (dotted path, old, new)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                yield sub, None, new[key]
            elif key not in new:
                yield sub, old[key], None
            else:
                yield from changed_paths(old[key], new[key], sub)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from changed_paths(a, b, f"{path}[{index}]")
    elif old != new:
        yield path, old, new


def entry_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Every field that differs between two `plan.json` entries of one URN (`changed_paths`
    of everything but the URN itself)."""
    before = {k: v for k, v in old.items() if k != "urn"}
    after = {k: v for k, v in new.items() if k != "urn"}
    return list(changed_paths(before, after))


def comparable(inputs: Mapping[str, Any], digests: Mapping[str, str]) -> dict[str, Any]:
    """Recorded inputs with each `"[secret]"` replaced by its digest, so two renders'
    inputs compare as the engine compares the values: a changed secret differs."""
    result: Any = json.loads(json.dumps(inputs))
    for pointer, digest in digests.items():
        *parents, last = [
            part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]
        ]
        target = result
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = f"[secret {digest}]"
        else:
            target[last] = f"[secret {digest}]"
    return dict(result)


def comparable_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs of a `plan.json` entry as `plan_step` compares them (`comparable`)."""
    return comparable(entry.get("inputs") or {}, entry.get("secretDigests") or {})


def _touches(changed: str, rule: str) -> bool:
    """Whether a change at `changed` changes the value at `rule` (one is inside the other)."""
    return (
        changed == rule
        or changed.startswith((f"{rule}.", f"{rule}["))
        or rule.startswith((f"{changed}.", f"{changed}["))
    )


def kubernetes_group_kind(resource_type: str) -> tuple[str, str]:
    """(group, kind) of a `kubernetes:<group>/<version>:<Kind>` token."""
    _, group_version, kind = resource_type.split(":", 2)
    return group_version.rsplit("/", 1)[0], kind


def kubernetes_provider_replaces(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The replace keys of pulumi-kubernetes' `DiffConfig` for its provider's inputs.

    In order, as `DiffConfig` decides: a changed (not added, not removed)
    `clusterIdentifier` replaces; an unknown `kubeconfig`, `context` or `cluster` replaces
    (it cannot tell whether the cluster changed); a kubeconfig whose value changed is
    taken as a change of its active cluster (the render cannot parse a kubeconfig it
    shows as a secret, so this is the conservative reading); a new
    `renderYamlToDirectory` replaces. Then, when `clusterIdentifier` is set and unchanged,
    nothing replaces at all: the identifier is the cluster's identity.
    """
    key = "clusterIdentifier"
    replaces = []
    if key in old and key in new and old[key] != new[key]:
        replaces.append(key)
    identified = key in old and key in new and old[key] == new[key] and new[key] is not None
    unknown = [k for k in ("kubeconfig", "context", "cluster") if is_unknown(new.get(k))]
    if unknown:
        replaces.append(unknown[0])
    else:
        replaces += [
            k
            for k in ("kubeconfig", "context", "cluster", "renderYamlToDirectory")
            if old.get(k) != new.get(k)
        ]
    return [] if identified else replaces


def _dynamic_provider_diff(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[list[str], bool]:
    """(replace keys, delete first) from the dynamic provider's own `diff`."""
    # The serialized provider is a secret input: the resource is known by its inputs.
    from components.llm_gateway.virtual_keys import (
        CHECK_MARKER,
        AdminApiCheckProvider,
        VirtualKeyProvider,
    )

    if new.get("check") == CHECK_MARKER:
        checked = AdminApiCheckProvider().diff("", dict(old), dict(new))
        return list(checked.replaces or []), bool(checked.delete_before_replace)
    if not {"admin_url", "key", "key_alias", "master_key"} <= set(new):
        raise UnknownResourceTypeError(
            f"a dynamic resource whose provider this preview does not know (inputs {sorted(new)})"
        )
    result = VirtualKeyProvider().diff("", dict(old), dict(new))
    return list(result.replaces or []), bool(result.delete_before_replace)


def replace_on_change(resource_type: str) -> tuple[str, ...]:
    """The property paths whose change replaces a resource of this type."""
    if resource_type in AWS_REPLACE_ON_CHANGE:
        return AWS_REPLACE_ON_CHANGE[resource_type]
    if resource_type in OTHER_REPLACE_ON_CHANGE:
        return OTHER_REPLACE_ON_CHANGE[resource_type]
    if resource_type.startswith("kubernetes:"):
        return _K8S_METADATA + KUBERNETES_FORCE_NEW.get(kubernetes_group_kind(resource_type), ())
    raise UnknownResourceTypeError(
        f"no replace-on-change rules for {resource_type}: add them to tools/replacements.py "
        "from the provider's schema"
    )


def _with_ignored(
    old: Mapping[str, Any], new: Mapping[str, Any], ignore_changes: Sequence[str]
) -> dict[str, Any]:
    """The new inputs with ignored top-level properties set back to the old values (the
    engine's `processIgnoreChanges`)."""
    result = dict(new)
    for name in ignore_changes:
        top = name.split(".", 1)[0].split("[", 1)[0]
        if top in old:
            result[top] = old[top]
    return result


def plan_step(
    resource_type: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    *,
    custom: bool = True,
    provider_replaced: bool = False,
    ignore_changes: Sequence[str] = (),
    delete_before_replace: bool = False,
) -> Step:
    """The step a preview plans for a resource given its state (`old`, None when it does
    not exist yet) and its new inputs (unknown values as `UNKNOWN`).

    `delete_before_replace` is the resource option; providers may ask for it too.
    """
    if old is None:
        return Step("create")
    if resource_type.startswith("pulumi:providers:"):
        old, new = _parsed_config(old), _parsed_config(new)
    new = _with_ignored(old, new, ignore_changes)
    changed = tuple(path for path, _, _ in changed_paths(dict(old), new))
    if not custom:
        return Step("same" if not changed else "update", changed=changed)
    if provider_replaced:
        return Step("replace", ("provider",), delete_before_replace, changed)
    if not changed:
        return Step("same")
    provider_first = False
    if resource_type == "pulumi:providers:kubernetes":
        keys = kubernetes_provider_replaces(old, new)
    elif resource_type == "pulumi-python:dynamic:Resource":
        keys, provider_first = _dynamic_provider_diff(old, new)
    else:
        rules = replace_on_change(resource_type)
        keys = sorted({rule for rule in rules for path in changed if _touches(path, rule)})
        if resource_type == "aws:ec2/instance:Instance":
            keys += _instance_replace_keys(changed, new)
    if not keys:
        return Step("update", changed=changed)
    provider_first = provider_first or _provider_deletes_first(resource_type, old, new)
    return Step("replace", tuple(keys), delete_before_replace or provider_first, changed)


def _parsed_config(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A provider's inputs with object values parsed: the SDK hands them over as JSON text,
    and the provider compares the objects (`CheckConfig` parses them)."""
    result = {}
    for key, value in inputs.items():
        if isinstance(value, str) and value[:1] in "{[":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        result[key] = value
    return result


def _instance_replace_keys(changed: Sequence[str], new: Mapping[str, Any]) -> list[str]:
    if new.get("userDataReplaceOnChange") is not True:
        return []
    return [key for key in ("userData", "userDataBase64") if key in changed]


def _provider_deletes_first(
    resource_type: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> bool:
    """Whether the provider itself plans delete-before-replace for a replacement."""
    if resource_type in AWS_AUTONAMED:
        return AWS_AUTONAMED[resource_type] in new
    if resource_type.startswith("kubernetes:") and resource_type != "kubernetes:helm.sh/v3:Release":
        before, after = old.get("metadata") or {}, new.get("metadata") or {}
        return (
            "name" in after
            and after.get("name") == before.get("name")
            and after.get("namespace") == before.get("namespace")
        )
    return False


def load_plan(render_dir: Path) -> dict[str, dict[str, Any]]:
    """A render's `plan.json` entries by URN: the state a preview compares against."""
    plan = json.loads((render_dir / "plan.json").read_text())
    return {r["urn"]: r for r in plan["resources"]}
