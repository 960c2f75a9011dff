"""Run the real Pulumi program under the SDK's mock engine and record every resource.

This is what the offline render and the component tests share: `run_program` executes
`__main__.py` (or any callable) with a stack's config, against a monitor that records
each registration with its full options (parent, provider, dependsOn, protect, ...),
and resolves the stack outputs and the platform's artifacts. Secret values are replaced
by `"[secret]"` as they are recorded, so nothing downstream can leak them.

Invokes get honest placeholders from `INVOKE_RESULTS`; an invoke without one fails the
run, so a new look-up is never silently answered with nothing. Resources get the outputs a
real provider always fills and the program reads (`_computed_state`): an auto-generated
`name`, the ARN in its service's format, a command's `stdout`. Whatever the program passes
as an input but resolves to nothing is kept in `ProgramRun.dropped_inputs`: such an input
would be missing from the render, so tests require the list to be empty.

URNs are the engine's: the parent's whole chain of types, and a second registration of a
URN fails the run as the engine fails it. With `preview`, the run is a `pulumi preview`
against a prior render's state: each resource gets the `Step` its provider would plan
(`tools.replacements`), and the outputs of what does not exist yet (created or replaced,
and a command that re-runs) are unknown, so the values that flow from them are unknown in
every input downstream (recorded as `"[unknown]"`), as in a real preview.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import json
import runpy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.mocks import (
    MockCallArgs,
    MockMonitor,
    MockResourceArgs,
    Mocks,
    _resolve_callbacks,
)
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from tools.replacements import (
    AWS_AUTONAMED,
    UNKNOWN,
    UNKNOWN_AFTER_UPDATE,
    Step,
    comparable,
    comparable_entry,
    is_unknown,
    plan_step,
)

SECRET = "[secret]"  # noqa: S105 (the redaction marker, not a password)
PROJECT = "llm-platform"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"

INVOKE_RESULTS: dict[str, dict[str, Any]] = {
    # The render has no AWS account: the AMI look-up answers with a placeholder id that
    # is obviously not real, keeping the architecture that was asked for.
    "aws:ec2/getAmi:getAmi": {
        "id": "ami-00000000000000000",
        "imageId": "ami-00000000000000000",
        "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-(looked up at deploy time)",
    },
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": "000000000000",
        "arn": "arn:aws:iam::000000000000:user/render",
        "userId": "RENDER",
        "id": "000000000000",
    },
    "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com"},
    "aws:index/getRegion:getRegion": {"name": "(provider region)", "region": "(provider region)"},
    # The render runs as an IAM user, so the session's issuer is that user itself.
    "aws:iam/getSessionContext:getSessionContext": {
        "arn": "arn:aws:iam::000000000000:user/render",
        "issuerArn": "arn:aws:iam::000000000000:user/render",
        "issuerId": "RENDER",
        "issuerName": "render",
        "sessionName": "",
        "id": "arn:aws:iam::000000000000:user/render",
    },
}
ACCOUNT = INVOKE_RESULTS["aws:index/getCallerIdentity:getCallerIdentity"]["accountId"]

IAM_ARN_KINDS = {
    "aws:iam/role:Role": "role",
    "aws:iam/user:User": "user",
    "aws:iam/instanceProfile:InstanceProfile": "instance-profile",
    "aws:iam/policy:Policy": "policy",
}
ID_IS_NAME = {*IAM_ARN_KINDS, "aws:ssm/parameter:Parameter"}
"""Types whose id is their name (the S3 bucket's is its `bucket`)."""


def _name_key(typ: str) -> str:
    """Where the provider puts an AWS resource's auto-generated name when the program gives
    none (`tools.replacements.AWS_AUTONAMED`; `name` for every other type)."""
    return AWS_AUTONAMED.get(typ, "name")


def autoname(logical_name: str) -> str:
    """Pulumi's auto-name: the logical name and seven hex characters (here derived from the
    name, so two renders agree)."""
    return f"{logical_name}-{hashlib.sha256(logical_name.encode()).hexdigest()[:7]}"


def _aws_arn(typ: str, state: dict[str, Any], resource_id: str, region: str) -> str:
    """The ARN a real resource of this type gets (AWS's ARN formats); other types keep a
    render placeholder."""
    if typ in IAM_ARN_KINDS:
        path = state.get("path") or "/"
        return f"arn:aws:iam::{ACCOUNT}:{IAM_ARN_KINDS[typ]}{path}{state['name']}"
    if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        host = str(state.get("url", "")).removeprefix("https://")
        return f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    if typ == "aws:s3/bucket:Bucket":
        return f"arn:aws:s3:::{state['bucket']}"
    if typ == "aws:ssm/parameter:Parameter":
        name = str(state["name"])
        return (
            f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{'' if name.startswith('/') else '/'}{name}"
        )
    if typ == "aws:kms/key:Key":
        return f"arn:aws:kms:{region}:{ACCOUNT}:key/{resource_id}"
    return f"arn:aws:render:::{resource_id}"


def resource_id(typ: str, logical_name: str, state: dict[str, Any]) -> str:
    """The id the mocks give a resource: its name where AWS uses the name as the id."""
    if typ in ID_IS_NAME:
        return str(state["name"])
    if typ == "aws:s3/bucket:Bucket":
        return str(state["bucket"])
    return f"{logical_name}-id"


def aws_outputs(typ: str, logical_name: str, inputs: dict[str, Any], region: str) -> dict[str, str]:
    """The identifying outputs the mocks give an AWS resource: its name (given or
    auto-generated), `id` and `arn`."""
    name_key = _name_key(typ)
    state = {**inputs, name_key: inputs.get(name_key) or autoname(logical_name)}
    identifier = resource_id(typ, logical_name, state)
    outputs = {
        name_key: str(state[name_key]),
        "id": identifier,
        "arn": str(inputs.get("arn") or _aws_arn(typ, state, identifier, region or "(region)")),
    }
    if typ == "aws:kms/key:Key":
        outputs["keyId"] = identifier
    return outputs


def _length(state: Mapping[str, Any], default: int) -> int:
    """A random resource's `length` (the default while it is unknown at preview)."""
    length = state.get("length", default)
    return int(length) if isinstance(length, int | float) else default


def _computed_state(args: MockResourceArgs, region: str = "") -> dict[str, Any]:
    """Outputs a real provider would compute, as placeholders that say what they are."""
    state: dict[str, Any] = dict(args.inputs)
    if args.typ.startswith("aws:"):
        outputs = aws_outputs(args.typ, args.name, state, region)
        outputs.pop("id")
        state.update(outputs)
    if (
        args.typ.startswith("kubernetes:")
        and args.typ != "kubernetes:helm.sh/v3:Release"
        and isinstance(state.get("metadata") or {}, Mapping)
    ):
        metadata = dict(state.get("metadata") or {})
        metadata.setdefault("name", args.name)
        state["metadata"] = metadata
    if args.typ == "kubernetes:helm.sh/v3:Release":
        state.setdefault("name", args.name)
        state["status"] = {"name": state["name"], "namespace": state.get("namespace", "default")}
    if args.typ in ("command:remote:Command", "command:local:Command"):
        # What a command prints is known only once it ran: the render runs nothing.
        state.setdefault("stdout", "")
        state.setdefault("stderr", "")
    if args.typ == "aws:ec2/eip:Eip":
        state["publicIp"] = "192.0.2.10"  # TEST-NET-1: documentation address, never routed
    if args.typ == "aws:ec2/instance:Instance":
        state["privateIp"] = "10.0.0.10"
    # Random values are fixed in the render (they are secrets, redacted anyway), so two
    # renders stay byte-identical; only derived public values (a WireGuard public key)
    # show, and they are marked as placeholders where they appear.
    if args.typ in (
        "tls:index/selfSignedCert:SelfSignedCert",
        "tls:index/locallySignedCert:LocallySignedCert",
    ):
        state["certPem"] = (
            "-----BEGIN CERTIFICATE-----\n"
            f"(render placeholder: {args.name}, signed at deploy)\n"
            "-----END CERTIFICATE-----\n"
        )
        state["validityStartTime"] = "(render placeholder: creation time)"
        state["validityEndTime"] = "(render placeholder: creation time + validity_period_hours)"
    if args.typ == "tls:index/privateKey:PrivateKey":
        state["privateKeyPem"] = "(render placeholder: private key)"
        state["publicKeyPem"] = f"(render placeholder: public key of {args.name})"
    if args.typ == "random:index/randomPassword:RandomPassword":
        state["result"] = "x" * _length(state, 16)
    if args.typ == "random:index/randomBytes:RandomBytes":
        length = _length(state, 32)
        state["base64"] = base64.b64encode(bytes(range(length))).decode()
        state["hex"] = bytes(range(length)).hex()
    return state


class RenderMocks(Mocks):
    """Resources echo their inputs plus placeholder computed fields; invokes use a table."""

    def __init__(self) -> None:
        self.regions: dict[str, str] = {}
        """AWS provider id → its region, for the ARNs of the resources it manages."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == "pulumi:providers:aws":
            self.regions[f"{args.name}-id"] = str(args.inputs.get("region", ""))
        region = self.regions.get((args.provider or "").rsplit("::", 1)[-1], "")
        state = _computed_state(args, region)
        return resource_id(args.typ, args.name, state), state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token not in INVOKE_RESULTS:
            raise RuntimeError(f"offline render has no placeholder for invoke {args.token}")
        return dict(INVOKE_RESULTS[args.token]), []


def redact(value: Any) -> Any:
    """Replace every secret inside a deserialized property value by `"[secret]"`, and every
    value unknown at preview by `"[unknown]"` (an unknown secret shows as unknown: there
    is no value to leak)."""
    if isinstance(value, Unknown):
        return UNKNOWN
    if rpc.is_rpc_secret(value):
        return UNKNOWN if is_unknown(redact(rpc.unwrap_rpc_secret(value))) else SECRET
    if isinstance(value, Mapping):
        return {str(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, pulumi.Resource):
        return f"<resource {type(value).__name__}>"
    return value


def secret_digests(value: Any, path: str = "") -> dict[str, str]:
    """A short digest of each secret inside a deserialized property value, by JSON Pointer
    (RFC 6901: `/connection`, `/stringData/config.yaml`).

    A preview compares them to tell a changed secret (a new SSH host or user inside a
    command's secret `connection`) from an unchanged one, as the engine compares the values
    themselves. The render's secrets are placeholders and values derived from plain config,
    so a digest of them reveals nothing the stack file does not.
    """
    if rpc.is_rpc_secret(value):
        inner = rpc.unwrap_rpc_secret(value)
        if is_unknown(redact(inner)):
            return {}
        text = json.dumps(whole_numbers(inner), sort_keys=True, default=str)
        return {path: hashlib.sha256(text.encode()).hexdigest()[:16]}
    found: dict[str, str] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            found.update(secret_digests(item, f"{path}/{escaped}"))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.update(secret_digests(item, f"{path}/{index}"))
    return found


def whole_numbers(value: Any) -> Any:
    """The wire format carries every number as a double; give integral ones back as ints,
    so a port reads `8000` (what the Kubernetes API and kubectl accept), not `8000.0`."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


@dataclass
class RecordedResource:
    """One registration as the engine saw it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    provider: str | None
    depends_on: list[str]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    aliases: list[str]
    custom_timeouts: dict[str, str]
    inputs: dict[str, Any]
    secret_digests: dict[str, str] = field(default_factory=dict)
    """A digest of each secret input by path (`secret_digests`), so a preview sees it change."""
    step: Step | None = None
    """What a preview plans for it (preview runs only)."""

    def to_json(self) -> dict[str, Any]:
        """The plan.json entry of this resource."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "provider": self.provider,
            "dependsOn": sorted(self.depends_on),
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "deleteBeforeReplace": self.delete_before_replace,
            "ignoreChanges": sorted(self.ignore_changes),
            "aliases": self.aliases,
            "customTimeouts": self.custom_timeouts,
            "inputs": self.inputs,
            "secretDigests": self.secret_digests,
        }


def _alias_text(alias: Any) -> str:
    """An alias as text: its URN, or the name (and parent) of its spec."""
    if alias.HasField("urn"):
        return str(alias.urn)
    spec = alias.spec
    return f"name={spec.name} type={spec.type} parent={spec.parentUrn}"


def engine_urn(stack: str, project: str, parent: str, type_token: str, name: str) -> str:
    """A resource's URN as the engine makes it: the parent's whole qualified type (the
    chain of types down from the stack, which itself is left out) before the resource's
    own (`generateURN` in pulumi/pulumi `pkg/resource/deploy/deployment.go`)."""
    qualified = type_token
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != ROOT_STACK_TYPE:
            qualified = f"{parent_type}${type_token}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class DuplicateUrnError(Exception):
    """Two resources registered with one URN (the engine fails the deployment)."""


_KNOWN_AT_CHECK = {"kubernetes:helm.sh/v3:Release": ("name",)}
"""Outputs a provider fills in `Check`, so a preview knows them before anything exists: the
auto-name of an AWS resource, a Kubernetes object's name, a Helm release's name."""


def _known_at_check(type_token: str) -> tuple[str, ...]:
    if type_token in _KNOWN_AT_CHECK:
        return _KNOWN_AT_CHECK[type_token]
    if type_token.startswith("aws:"):
        return (_name_key(type_token),)
    if type_token.startswith("kubernetes:"):
        return ("metadata",)
    return ()


class RecordingMonitor(MockMonitor):
    """A mock monitor that keeps every registration with its options, secrets redacted.

    With `prior` (the state a preview compares against, plan.json entries by URN; empty for
    a stack that does not exist yet) it plans each resource's step and answers with the
    outputs a preview would have.
    """

    def __init__(self, mocks: Mocks, prior: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__(mocks)
        self.recorded: dict[str, RecordedResource] = {}
        self.thread_loops: set[asyncio.AbstractEventLoop] = set()
        self.prior = prior
        self.invoked: list[str] = []
        self.duplicates: list[str] = []
        self._registered: set[str] = set()
        self._lock = threading.Lock()

    def _note_thread_loop(self) -> None:
        # The SDK's mock monitor creates an event loop in each executor thread it runs
        # in and never closes it; keep them so the run can close them when it ends.
        self.thread_loops.add(_ensure_event_loop())  # type: ignore[no-untyped-call]

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return engine_urn(pulumi.get_stack(), pulumi.get_project(), parent, type_, name)

    def Invoke(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().Invoke(request)  # type: ignore[no-untyped-call]
        self._note_thread_loop()
        self.invoked.append(str(request.tok))
        return response

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == ROOT_STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        with self._lock:
            duplicate = urn in self._registered
            self._registered.add(urn)
        if duplicate:
            # Failing here would leave the program's other registrations hanging; the run
            # fails once the program is done (`run_program`), as the deployment would.
            self.duplicates.append(urn)
            return resource_pb2.RegisterResourceResponse(urn=urn, id="", object=None)
        self._note_thread_loop()
        raw = rpc.deserialize_properties(request.object)
        inputs = whole_numbers(redact(raw))
        digests = secret_digests(raw)
        provider = "::".join(request.provider.split("::")[0:4]) if request.provider else None
        args = MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=raw,
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
            transforms=_resolve_callbacks(request.transforms),
        )
        resource_id, state = self.mocks.new_resource(args)
        step = None
        if self.prior is not None:
            prior = self.prior.get(urn)
            step = plan_step(
                request.type,
                comparable_entry(prior) if prior is not None else None,
                comparable(inputs, digests),
                custom=bool(request.custom),
                provider_replaced=provider is not None and self._step_of(provider).op == "replace",
                ignore_changes=list(request.ignoreChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
            )
            resource_id, state = self._preview_outputs(step, args, prior, resource_id, state)
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id or "", state)
        timeouts = request.customTimeouts
        self.recorded[urn] = RecordedResource(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent or None,
            provider=provider,
            depends_on=list(request.dependencies),
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace),
            ignore_changes=list(request.ignoreChanges),
            aliases=sorted(_alias_text(a) for a in request.aliases),
            custom_timeouts={
                k: v
                for k, v in (
                    ("create", timeouts.create),
                    ("update", timeouts.update),
                    ("delete", timeouts.delete),
                )
                if v
            },
            inputs=inputs,
            secret_digests=digests,
            step=step,
        )
        state_proto = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(
            urn=urn, id=resource_id or "", object=state_proto
        )

    def _step_of(self, urn: str) -> Step:
        recorded = self.recorded.get(urn)
        return recorded.step if recorded is not None and recorded.step else Step("same")

    def _preview_outputs(
        self,
        step: Step,
        args: MockResourceArgs,
        prior: Mapping[str, Any] | None,
        resource_id: str | None,
        state: dict[str, Any],
    ) -> tuple[str | None, dict[str, Any]]:
        """The id and outputs a preview sees: all of them for an unchanged resource; the
        inputs and what `Check` fills for one that does not exist yet (the rest unknown);
        for an update, the existing outputs with the new inputs, less what the provider
        recomputes."""
        if step.op == "same":
            return resource_id, state
        if step.op in ("create", "replace") or prior is None:
            known = set(args.inputs) | set(_known_at_check(args.typ))
            return "", {k: v for k, v in state.items() if k in known}
        prior_args = MockResourceArgs(
            typ=args.typ,
            name=args.name,
            inputs=dict(prior["inputs"]),
            provider=args.provider,
            resource_id=args.resource_id,
            custom=args.custom,
        )
        prior_id, prior_state = self.mocks.new_resource(prior_args)
        updated = {**prior_state, **{k: state[k] for k in args.inputs if k in state}}
        for key in UNKNOWN_AFTER_UPDATE.get(args.typ, ()):
            updated.pop(key, None)
        return prior_id, updated


@dataclass
class ProgramRun:
    """What one run of the program registered and produced."""

    resources: list[RecordedResource]
    outputs: dict[str, Any]
    artifacts: dict[str, str]
    program_globals: dict[str, Any] = field(default_factory=dict)
    dropped_inputs: list[str] = field(default_factory=list)
    """`<type> <name>: <input>` for each input the program set to an Output that resolved to
    nothing: a real engine would get the provider's value, the render gets no input at all."""
    invoked: list[str] = field(default_factory=list)
    """Every invoke token the program called (look-ups need their provider's credentials)."""
    deleted: list[str] = field(default_factory=list)
    """Preview runs: URNs of the prior state the program no longer registers."""

    def of_type(self, type_token: str) -> list[RecordedResource]:
        """Recorded resources of one type token, in URN order."""
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> RecordedResource:
        """The recorded resource with this logical name."""
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


def config_for_engine(raw: Mapping[str, Any]) -> dict[str, str]:
    """Stack-file config values as the engine hands them to a program (objects as JSON)."""
    result: dict[str, str] = {}
    for key, value in raw.items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        result[full] = value if isinstance(value, str) else json.dumps(value)
    return result


async def _resolve(value: Any) -> Any:
    """Await an Output (or nested structure of them), redacting secrets and marking what a
    preview does not know."""
    if isinstance(value, pulumi.Output):
        if not await value.is_known():
            return UNKNOWN
        if await value.is_secret():
            return SECRET
        return await _resolve(await value.future())
    if isinstance(value, Mapping):
        return {str(k): await _resolve(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _resolve(v) for v in value]
    return value


_serialize_property = rpc.serialize_property
_drops: list[str] | None = None


async def _serialize_property_noting_drops(
    value: Any,
    deps: Any,
    property_key: Any,
    resource_obj: Any = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    result = await _serialize_property(value, deps, property_key, resource_obj, *args, **kwargs)
    if (
        result is None
        and _drops is not None
        and isinstance(value, pulumi.Output)
        and isinstance(resource_obj, pulumi.CustomResource)
    ):
        _drops.append(f"{resource_obj._type} {resource_obj._name}: {property_key}")
    return result


def run_program(
    *,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    program: Callable[[], dict[str, Any]] | Path,
    prior: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProgramRun:
    """Run a program (a `__main__.py` path or a callable) under the recording mock engine.

    Each run gets a fresh context, so runs never share a root stack, config or settings.
    `program` as a callable returns the names it wants kept (like a module's globals).
    With `prior` the run is a preview against that state (plan.json entries by URN; an
    empty mapping for a stack not deployed yet): each resource gets its `step`, resources
    of the state the program no longer registers are `ProgramRun.deleted`.
    """

    def isolated() -> ProgramRun:
        # The root stack's futures bind to the current loop, so the loop comes first.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        global _drops
        mocks = RenderMocks()
        monitor = RecordingMonitor(mocks, prior)
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=stack, preview=prior is not None, monitor=monitor
        )
        pulumi.runtime.set_all_config(dict(config), secret_keys)
        holder: dict[str, Any] = {}

        async def body() -> None:
            if isinstance(program, Path):
                holder["globals"] = runpy.run_path(str(program), run_name="__main__")
            else:
                holder["globals"] = program()
            root = pulumi.runtime.get_root_resource()
            stack_outputs = getattr(root, "outputs", {})
            holder["outputs"] = await _resolve(stack_outputs)
            platform = holder["globals"].get("platform")
            artifacts = getattr(platform, "artifacts", {}) or {}
            resolved: dict[str, str] = {}
            for path, text in sorted(artifacts.items()):
                if isinstance(text, pulumi.Output) and await text.is_secret():
                    raise RuntimeError(
                        f"artifact {path} is secret; its component must expose a redacted view"
                    )
                resolved[path] = await _resolve(text)
            holder["artifacts"] = resolved

        drops: list[str] = []
        _drops = drops
        rpc.serialize_property = _serialize_property_noting_drops
        try:
            _sync_await(run_pulumi_func(body))
        finally:
            rpc.serialize_property = _serialize_property
            _drops = None
            loop.run_until_complete(loop.shutdown_default_executor())
            for thread_loop in monitor.thread_loops - {loop}:
                thread_loop.close()
            asyncio.set_event_loop(None)
            loop.close()
        if monitor.duplicates:
            raise DuplicateUrnError(
                "; ".join(
                    f"Duplicate resource URN '{urn}'; try giving it a unique name"
                    for urn in sorted(set(monitor.duplicates))
                )
            )
        return ProgramRun(
            resources=[monitor.recorded[urn] for urn in sorted(monitor.recorded)],
            outputs=holder.get("outputs", {}),
            artifacts=holder.get("artifacts", {}),
            program_globals=holder.get("globals", {}),
            dropped_inputs=sorted(set(drops)),
            invoked=sorted(set(monitor.invoked)),
            deleted=sorted(set(prior or {}) - set(monitor.recorded)),
        )

    return contextvars.Context().run(isolated)
