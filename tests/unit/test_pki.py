"""The internal PKI under the recording mocks, and its pure values builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from components import versions
from components.config import PkiConfig
from components.pki import values as pki_values
from components.pki.internal_pki import InternalPki, InternalPkiArgs
from tests.support import dependency_names, run_component, stack_config, unread_values
from tests.unit.manifest_checks import (
    validate_core,
    validate_custom_resource,
)
from tools import charts
from tools.helm_template import schema_error
from tools.mock_engine import ProgramRun, RecordedResource

RELEASE = "kubernetes:helm.sh/v3:Release"
_RUNS: dict[str, ProgramRun] = {}


def _program(stack: str) -> Callable[[], dict[str, Any]]:
    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        config = stack_config(stack)
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("x"))
        pki = InternalPki("pki", InternalPkiArgs(config=config, provider=provider))
        return {"pki": pki}

    return program


def pki_run(stack: str) -> ProgramRun:
    """One recorded run per stack (runs are pure, so they are shared by the tests)."""
    if stack not in _RUNS:
        _RUNS[stack] = run_component(stack, _program(stack))
    return _RUNS[stack]


_deps = dependency_names


def _custom_resources(run: ProgramRun) -> list[RecordedResource]:
    return [
        r
        for r in run.resources
        if r.custom
        and "kind" in r.inputs
        and r.type != RELEASE
        and not r.type.startswith("kubernetes:core/")
    ]


def _of_kind(run: ProgramRun, kind: str) -> list[RecordedResource]:
    return [r for r in run.resources if r.custom and r.inputs.get("kind") == kind]


# --- the chain: root key -> root certificate -> Secret -> CA ClusterIssuer -> Bundle ----


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_ca_issuer_signs_with_the_root_ca_secret(stack: str) -> None:
    run = pki_run(stack)
    config = stack_config(stack)
    (issuer,) = _of_kind(run, "ClusterIssuer")
    (secret,) = _of_kind(run, "Secret")
    assert issuer.inputs["metadata"]["name"] == config.pki.ca_issuer_name
    assert issuer.inputs["spec"] == {"ca": {"secretName": secret.inputs["metadata"]["name"]}}
    # a ClusterIssuer reads its CA Secret from cert-manager's own namespace
    assert secret.inputs["metadata"]["namespace"] == "cert-manager"
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert secret.inputs["stringData"] == "[secret]"
    # the Secret holds the certificate made from the generated key
    assert _deps(run, secret) == {"pki-root-ca", "pki-root-ca-key"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_root_ca_is_a_long_lived_ecdsa_p256_ca(stack: str) -> None:
    run = pki_run(stack)
    pki = stack_config(stack).pki
    key = run.named("pki-root-ca-key")
    assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")
    cert = run.named("pki-root-ca")
    assert cert.inputs["isCaCertificate"] is True
    assert cert.inputs["validityPeriodHours"] == pki.root_ca_days * 24
    assert cert.inputs["earlyRenewalHours"] == pki.root_ca_renew_before_days * 24
    assert cert.inputs["earlyRenewalHours"] < cert.inputs["validityPeriodHours"]
    assert "cert_signing" in cert.inputs["allowedUses"]
    assert "server_auth" not in cert.inputs["allowedUses"]
    assert cert.inputs["subject"]["commonName"] == pki.root_ca_common_name
    assert cert.inputs["privateKeyPem"] == "[secret]"


def test_root_ca_key_is_protected_in_prod_only() -> None:
    assert pki_run("prod").named("pki-root-ca-key").protect is True
    assert pki_run("dev").named("pki-root-ca-key").protect is False


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_trust_bundle_spreads_the_root_to_labelled_namespaces(stack: str) -> None:
    run = pki_run(stack)
    config = stack_config(stack)
    (bundle,) = _of_kind(run, "Bundle")
    (secret,) = _of_kind(run, "Secret")
    spec = bundle.inputs["spec"]
    assert spec["sources"] == [
        {"secret": {"name": secret.inputs["metadata"]["name"], "key": "tls.crt"}}
    ]
    assert spec["target"]["configMap"] == {"key": "ca.crt"}
    assert spec["target"]["namespaceSelector"] == {
        "matchLabels": {config.pki.trust_bundle_label: "enabled"}
    }
    pki = pki_run(stack).program_globals["pki"]
    assert pki.trust_bundle_configmap == bundle.inputs["metadata"]["name"]


# --- ordering: CRDs and webhook before custom resources ----------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_custom_resources_depend_on_the_release_installing_their_crd(stack: str) -> None:
    run = pki_run(stack)
    (issuer,) = _of_kind(run, "ClusterIssuer")
    (bundle,) = _of_kind(run, "Bundle")
    assert {"pki-cert-manager", "pki-root-ca-secret"} <= _deps(run, issuer)
    assert {"pki-trust-manager", "pki-root-ca-secret"} <= _deps(run, bundle)
    # trust-manager's webhook certificate is a cert-manager Certificate
    assert _deps(run, run.named("pki-trust-manager")) == {"pki-cert-manager"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_ca_issuer_is_awaited_until_ready_and_ready_lists_it(stack: str) -> None:
    run = pki_run(stack)
    (issuer,) = _of_kind(run, "ClusterIssuer")
    assert issuer.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    pki = run.program_globals["pki"]
    assert pki.issuer_name == stack_config(stack).pki.ca_issuer_name
    ready_names = {r.pulumi_resource_name for r in pki.ready}
    assert ready_names == {"pki-cert-manager", "pki-ca-issuer"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_releases_are_pinned_and_wait_for_readiness(stack: str) -> None:
    run = pki_run(stack)
    releases = {r.inputs["chart"]: r for r in run.of_type(RELEASE)}
    assert set(releases) == {"cert-manager", "trust-manager"}
    for chart in (versions.CERT_MANAGER, versions.TRUST_MANAGER):
        release = releases[chart.name]
        assert release.inputs["version"] == chart.version
        assert release.inputs["repositoryOpts"] == {"repo": chart.repo}
        assert release.inputs["namespace"] == "cert-manager"
        assert release.inputs["skipAwait"] is False
        assert release.inputs["waitForJobs"] is True
        assert release.inputs["values"]["crds"] == {"enabled": True, "keep": True}
    # the post-install API check is what proves the webhook serves
    assert releases["cert-manager"].inputs["values"]["startupapicheck"]["enabled"] is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_kubernetes_resource_has_the_explicit_provider_and_parent(stack: str) -> None:
    run = pki_run(stack)
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    (component,) = run.of_type("llm-platform:pki:InternalPki")
    kubernetes = [r for r in run.resources if r.type.startswith("kubernetes:")]
    assert len(kubernetes) == 5
    assert {r.provider for r in kubernetes} == {provider.urn}
    assert {r.parent for r in run.resources if r.custom and not r.type.startswith("pulumi:")} == {
        component.urn
    }


# --- HA per environment ---------------------------------------------------------------


def test_prod_cert_manager_follows_the_best_practice_replica_counts() -> None:
    values = pki_run("prod").named("pki-cert-manager").inputs["values"]
    assert values["replicaCount"] == 2
    assert values["webhook"]["replicaCount"] == 3
    assert values["cainjector"]["replicaCount"] == 2
    assert values["global"]["priorityClassName"] == "system-cluster-critical"
    for block in (values, values["webhook"], values["cainjector"]):
        assert block["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
        (spread,) = block["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert (
            spread["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "cert-manager"
        )
        assert block["resources"]["requests"].keys() == {"cpu", "memory"}
    trust = pki_run("prod").named("pki-trust-manager").inputs["values"]
    assert trust["replicaCount"] == 2
    assert trust["podDisruptionBudget"]["enabled"] is True


def test_dev_runs_single_replicas_without_disruption_budgets() -> None:
    values = pki_run("dev").named("pki-cert-manager").inputs["values"]
    for block in (values, values["webhook"], values["cainjector"]):
        assert block["replicaCount"] == 1
        assert "podDisruptionBudget" not in block
        assert "topologySpreadConstraints" not in block
        assert block["resources"]["requests"]
    trust = pki_run("dev").named("pki-trust-manager").inputs["values"]
    assert trust["replicaCount"] == 1
    assert "podDisruptionBudget" not in trust


@pytest.mark.parametrize("prod", [False, True])
def test_a_disruption_budget_exists_exactly_where_replicas_exceed_one(prod: bool) -> None:
    values = pki_values.cert_manager_values(prod=prod)
    blocks = [values, values["webhook"], values["cainjector"]]
    trust = pki_values.trust_manager_values(prod=prod, trust_namespace="cert-manager")
    for block in [*blocks, trust]:
        assert ("podDisruptionBudget" in block) == (block["replicaCount"] > 1)


def test_spread_constraints_skip_tainted_nodes_and_old_revisions() -> None:
    (spread,) = pki_values.spread_constraints({"app.kubernetes.io/name": "webhook"})
    assert spread["nodeTaintsPolicy"] == "Honor"
    assert spread["matchLabelKeys"] == ["pod-template-hash"]
    assert spread["maxSkew"] == 1


# --- chart values and schemas ------------------------------------------------------------


def test_a_misspelled_pki_value_is_refused_and_a_dead_one_reported() -> None:
    # every key of every release is checked in tests/artifacts/test_chart_objects.py
    archive = charts.archive_of(versions.CERT_MANAGER)
    error = schema_error(archive, {"webhook": {"replicas": 3}})
    assert error is not None and "'replicas' not allowed" in error
    assert unread_values("cert-manager", {"webhook": {"replicaCount": 3}}) == []
    # the key exists, but with the PDB off the chart never reads it
    dead = {"podDisruptionBudget": {"enabled": False, "minAvailable": 1}}
    assert unread_values("cert-manager", dead) == ["podDisruptionBudget.minAvailable"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_custom_resources_match_their_crd_schemas(stack: str) -> None:
    custom = _custom_resources(pki_run(stack))
    kinds = {r.inputs["kind"] for r in custom}
    assert kinds == {"ClusterIssuer", "Bundle"}
    for resource in custom:
        validate_custom_resource(resource)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_core_objects_pass_kubernetes_validate_strict(stack: str) -> None:
    (secret,) = pki_run(stack).of_type("kubernetes:core/v1:Secret")
    validate_core(secret)


def test_schema_check_rejects_a_broken_issuer() -> None:
    import jsonschema

    (issuer,) = _of_kind(pki_run("dev"), "ClusterIssuer")
    broken = RecordedResource(
        **{**issuer.__dict__, "inputs": {**issuer.inputs, "spec": {"ca": {}}}}
    )
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(broken)


# --- config ---------------------------------------------------------------------------


def test_renew_before_must_be_shorter_than_the_lifetime() -> None:
    with pytest.raises(ValidationError, match="root_ca_renew_before_days"):
        PkiConfig(root_ca_days=365, root_ca_renew_before_days=365)
    assert PkiConfig(root_ca_days=366, root_ca_renew_before_days=365).root_ca_days == 366


def test_trust_bundle_label_must_be_a_label_key() -> None:
    with pytest.raises(ValidationError, match="trust_bundle_label"):
        PkiConfig(trust_bundle_label="not a label")
