"""Helpers the tests share: stack files, running the program under the recording mocks."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser

from components import versions
from components.config import PlatformConfig, parse_platform_config
from components.s3_bucket import WorkloadIdentity
from tools import charts
from tools.crd_schemas import Gvk, schemas_from_crds
from tools.mock_engine import (
    PROJECT,
    ProgramRun,
    RecordedResource,
    config_for_engine,
    run_program,
)
from tools.releases import KUBE_VERSION, ReleaseRender, render_releases
from tools.render import load_stack_document
from tools.values_check import ReleaseInput, unread_keys

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "__main__.py"
STACKS = ("dev", "prod")


def stack_values(stack: str) -> dict[str, Any]:
    """The `llm-platform:*` values of a stack file, keyed by bare name (a fresh copy)."""
    document = load_stack_document((ROOT / f"Pulumi.{stack}.yaml").read_text())
    prefix = f"{PROJECT}:"
    return {
        k[len(prefix) :]: copy.deepcopy(v)
        for k, v in document["config"].items()
        if k.startswith(prefix)
    }


SAMPLE_JWKS = (
    '{"keys":[{"use":"sig","kty":"RSA","kid":"render-sample","alg":"RS256",'
    '"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",'
    '"e":"AQAB"}]}'
)
"""A JSON Web Key Set of one public RSA key (RFC 7517's example key), for configs of an
existing cluster with web identity."""


TEST_ISSUER_HOST = "issuer.test.example"
TEST_IDENTITY = WorkloadIdentity(
    provider_arn=f"arn:aws:iam::000000000000:oidc-provider/{TEST_ISSUER_HOST}",
    issuer_host=TEST_ISSUER_HOST,
)
"""A stand-in for `ServiceAccountIssuer.identity` in tests of one area."""


def as_existing(values: dict[str, Any]) -> dict[str, Any]:
    """Stack values adopting an existing cluster: its kubeconfig instead of SSH, the
    platform's own Traefik (the cluster started without k3s's), and (prod, whose backups use
    web identity) the cluster's key set."""
    values["cluster"]["mode"] = "existing"
    values["cluster"].pop("api_endpoint", None)
    for host in values["cluster"].get("lan_gpu_hosts", {}).values():
        host["managed"] = False  # nothing is reached over SSH in existing mode
    values.setdefault("ingress", {}).setdefault("mode", "platform")
    if values.get("environment") == "prod":
        credentials = values.setdefault("aws", {}).setdefault("backup_credentials", {})
        credentials["service_account_jwks"] = SAMPLE_JWKS
    return values


def stack_config(stack: str) -> PlatformConfig:
    """The validated config model of a stack file."""
    return parse_platform_config(stack_values(stack))


def secret_placeholder(key: str) -> str:
    """The value a test gives a required secret; tests assert it never leaks."""
    return f"TEST-SECRET-{key}-5f2b"


def run_stack(values: dict[str, Any], stack: str = "dev") -> ProgramRun:
    """Run the real `__main__.py` under the recording mocks with these config values."""
    platform = parse_platform_config(values)
    config = config_for_engine(values)
    secret_keys = []
    for key in platform.required_secrets():
        config[f"{PROJECT}:{key}"] = secret_placeholder(key)
        secret_keys.append(f"{PROJECT}:{key}")
    config["pulumi:disable-default-providers"] = '["aws", "kubernetes"]'
    return run_program(stack=stack, config=config, secret_keys=secret_keys, program=MAIN)


def run_component(stack: str, program: Callable[[], dict[str, Any]]) -> ProgramRun:
    """Run a program building one area, with a stack's config values, under the mocks."""
    return run_program(
        stack=stack, config=config_for_engine(stack_values(stack)), secret_keys=[], program=program
    )


def dependency_names(run: ProgramRun, resource: RecordedResource) -> set[str]:
    """Names of the resources a recorded resource explicitly depends on."""
    by_urn = {r.urn: r.name for r in run.resources}
    return {by_urn[urn] for urn in resource.depends_on}


@cache
def committed_stack_run(stack: str) -> ProgramRun:
    """The program run of a committed stack file, once per test session (runs are pure)."""
    assert stack in STACKS
    return run_stack(stack_values(stack), stack)


@cache
def stack_releases(stack: str) -> tuple[ReleaseRender, ...]:
    """Every Helm release of a committed stack, templated by the real Helm engine."""
    return tuple(render_releases(committed_stack_run(stack)))


@cache
def crd_schemas() -> dict[Gvk, dict[str, Any]]:
    """Strict schemas of every custom resource kind the stacks' pinned charts install.

    The union over both stacks: a component test under the mocks may build an area one
    stack leaves off.
    """
    crds = [body for stack in STACKS for r in stack_releases(stack) for body in r.all_objects()]
    return schemas_from_crds(crds)


def unread_values(
    chart: str,
    values: Mapping[str, Any],
    *,
    namespace: str = "default",
    release: str = "",
    only: list[str] | None = None,
) -> list[str]:
    """Keys of `values` (or of `only` among them) the pinned `chart` does not read
    (`tools.values_check`), rendered as the stacks render it (the cluster's Kubernetes
    and API versions)."""
    (pin,) = [c for c in versions.HELM_CHARTS if c.name == chart]
    api_versions = frozenset().union(*(r.api_versions for r in stack_releases("prod")))
    return unread_keys(
        ReleaseInput(
            archive=charts.archive_of(pin),
            release=release or chart,
            namespace=namespace,
            values=values,
            kube_version=KUBE_VERSION,
            api_versions=api_versions,
        ),
        only,
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 10 s (a server the tests started)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def load_stack_lines(stack: str, engine: Mapping[str, str], secret_keys: list[str]) -> list[str]:
    """The `config error` lines `load_stack` raises as `__main__` runs it on this engine
    config (empty when the stack loads)."""
    from components.config import ConfigError, load_stack

    def program() -> dict[str, Any]:
        try:
            load_stack()
        except ConfigError as error:
            return {"lines": list(error.lines)}
        return {"lines": []}

    run = run_program(stack=stack, config=dict(engine), secret_keys=secret_keys, program=program)
    lines: list[str] = run.program_globals["lines"]
    return lines


def vector_selectors(expr: str) -> list[Any]:
    """Every vector selector of a PromQL expression (`promql_parser.VectorSelector`), in
    the order the parser walks them."""
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found
