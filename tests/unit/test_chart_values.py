"""The documented-keys check for Helm values, and its data against components.versions."""

from __future__ import annotations

import pytest

from components import chart_values, versions
from components.chart_values import (
    available_charts,
    chart_keys,
    documented_paths,
    parse_keys_file,
    split_path,
    undocumented_keys,
    undocumented_paths,
)

# --- undocumented_keys on a real keys file ---------------------------------------------


def test_documented_cert_manager_values_pass() -> None:
    values = {
        "crds": {"enabled": True, "keep": True},
        "replicaCount": 2,
        "webhook": {"replicaCount": 2},
        "cainjector": {"replicaCount": 2},
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        "prometheus": {"enabled": True, "servicemonitor": {"enabled": True}},
        "global": {"priorityClassName": "platform-critical"},
    }
    assert undocumented_keys("cert-manager", values) == []


def test_misspelled_keys_are_reported_with_their_full_path() -> None:
    values = {
        "installCRD": True,  # the chart's key is installCRDs
        "webhook": {"replicas": 2},  # the chart's key is replicaCount
        "podDisruptionBudget": {"enabled": True, "minAvaliable": 1},
    }
    assert undocumented_keys("cert-manager", values) == [
        "installCRD",
        "podDisruptionBudget.minAvaliable",
        "webhook.replicas",
    ]


def test_unknown_parent_is_reported_once_not_per_child() -> None:
    values = {"webhok": {"replicaCount": 2, "timeoutSeconds": 10}}
    assert undocumented_keys("cert-manager", values) == ["webhok"]


def test_free_form_maps_take_any_keys_below_them() -> None:
    values = {
        "podAnnotations": {"config.linkerd.io/skip-outbound-ports": "443"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "extraArgs": ["--enable-certificate-owner-ref=true"],
    }
    assert undocumented_keys("cert-manager", values) == []
    # the free-form map itself must still be spelled right
    assert undocumented_keys("cert-manager", {"podAnnotation": {"a": "b"}}) == ["podAnnotation"]


def test_free_form_marker_allows_only_below_its_own_path() -> None:
    paths = documented_paths("traefik")
    assert "tlsStore.*" in paths
    assert undocumented_keys("traefik", {"tlsStore": {"default": {"defaultCertificate": {}}}}) == []
    # a sibling of a free-form map is checked as usual
    assert undocumented_keys("traefik", {"tlsStores": {"default": {}}}) == ["tlsStores"]


def test_unknown_chart_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="cert-manager"):
        undocumented_keys("cert-manger", {})
    with pytest.raises(KeyError):
        documented_paths("../versions")


# --- list and marker rules on a synthetic documented set ---------------------------------

_DOCUMENTED = frozenset(
    {
        "ports",
        "ports[].name",
        "ports[].port",
        "ports[].extra",
        "ports[].extra.*",
        "labels",
        "labels.*",
        "image",
        "image.tag",
    }
)


def test_objects_of_a_structured_list_are_checked_per_key() -> None:
    values = {"ports": [{"name": "http", "port": 80}, {"name": "https", "prot": 443}]}
    assert undocumented_paths(_DOCUMENTED, values) == ["ports[].prot"]


def test_free_form_markers_apply_inside_list_objects() -> None:
    values = {"ports": [{"name": "http", "extra": {"anything": {"deep": 1}}}]}
    assert undocumented_paths(_DOCUMENTED, values) == []


def test_scalars_in_lists_and_scalar_values_have_nothing_to_check() -> None:
    values = {"ports": ["8080", 9090], "image": {"tag": "1.0"}, "labels": {"x": "y"}}
    assert undocumented_paths(_DOCUMENTED, values) == []


def test_a_map_where_the_chart_has_a_scalar_is_reported() -> None:
    assert undocumented_paths(_DOCUMENTED, {"image": {"tag": {"major": 1}}}) == ["image.tag.major"]


# --- keys files against the pins -------------------------------------------------------


def test_every_pinned_chart_has_exactly_one_keys_file() -> None:
    assert available_charts() == {chart.name for chart in versions.HELM_CHARTS}


@pytest.mark.parametrize("chart", versions.HELM_CHARTS, ids=lambda chart: chart.name)
def test_keys_file_is_for_the_pinned_version(chart: versions.HelmChart) -> None:
    keys = chart_keys(chart.name)
    assert keys.version == chart.version, (
        f"{chart.name}.txt was derived from {keys.version}, but {chart.version} is pinned: "
        "regenerate it from the pinned tag"
    )
    # a file that allows everything would defeat the check
    assert "*" not in keys.paths
    assert len([p for p in keys.paths if not p.endswith(chart_values.FREE_FORM_SUFFIX)]) > 0


@pytest.mark.parametrize("chart", sorted(available_charts()))
def test_every_free_form_marker_has_its_own_path(chart: str) -> None:
    paths = documented_paths(chart)
    markers = [p for p in paths if p.endswith(chart_values.FREE_FORM_SUFFIX)]
    orphans = [m for m in markers if m.removesuffix(chart_values.FREE_FORM_SUFFIX) not in paths]
    assert orphans == []


@pytest.mark.parametrize("chart", sorted(available_charts()))
def test_every_nested_path_has_its_parent(chart: str) -> None:
    # undocumented_keys walks from the root, so a child whose parent is missing is
    # unreachable: the file would be inconsistent.
    paths = documented_paths(chart)
    orphans = []
    for path in paths:
        segments = split_path(path.removesuffix(chart_values.FREE_FORM_SUFFIX))
        if len(segments) > 1 and ".".join(segments[:-1]) not in paths:
            orphans.append(path)
    assert orphans == []


def test_keys_with_dots_are_escaped_in_paths() -> None:
    assert split_path(r"grafana.grafana\.ini.server") == ["grafana", r"grafana\.ini", "server"]
    assert r"grafana.grafana\.ini" in documented_paths("kube-prometheus-stack")
    values = {"grafana": {"grafana.ini": {"server": {"root_url": "https://g.example"}}}}
    assert undocumented_keys("kube-prometheus-stack", values) == []
    # the nested spelling of a dotted key is a different, unknown path
    nested = {"grafana": {"grafana": {"ini": {"server": {}}}}}
    assert undocumented_keys("kube-prometheus-stack", nested) == ["grafana.grafana"]


def test_keys_file_header_must_name_chart_version_and_source() -> None:
    good = "# demo 1.2.3 from owner/repo@v1.2.3:chart/values.yaml\n# note\na\na.b\nc.*\nc\n"
    keys = parse_keys_file(good, chart="demo")
    assert keys.version == "1.2.3"
    assert keys.source == "owner/repo@v1.2.3:chart/values.yaml"
    assert keys.paths == {"a", "a.b", "c", "c.*"}
    with pytest.raises(ValueError, match="first line"):
        parse_keys_file("a\na.b\n", chart="demo")
    with pytest.raises(ValueError, match="names chart 'other'"):
        parse_keys_file("# other 1.0 from o/r@1.0:values.yaml\na\n", chart="demo")
    with pytest.raises(ValueError, match="malformed"):
        parse_keys_file("# demo 1.0 from o/r@1.0:values.yaml\na b\n", chart="demo")


# --- other pins that other checks depend on -----------------------------------------------


def test_kubernetes_version_is_the_k3s_minor_and_has_validation_schemas() -> None:
    kubernetes_validate_utils = pytest.importorskip("kubernetes_validate.utils")
    k3s_minor = ".".join(versions.K3S_VERSION.removeprefix("v").split(".")[:2])
    assert k3s_minor == versions.KUBERNETES_VERSION
    supported = {
        kubernetes_validate_utils.major_minor(v) for v in kubernetes_validate_utils.all_versions()
    }
    assert versions.KUBERNETES_VERSION in supported


def test_linkerd_charts_share_one_edge_release() -> None:
    linkerd = [c for c in versions.HELM_CHARTS if c.repo == versions.LINKERD_EDGE_REPO]
    assert {c.name for c in linkerd} >= {"linkerd-crds", "linkerd-control-plane", "linkerd2-cni"}
    # edge-YY.M.N is published as chart version 20YY.M.N
    yy, month, n = versions.LINKERD_EDGE_RELEASE.removeprefix("edge-").split(".")
    assert {c.version for c in linkerd} == {f"20{yy}.{month}.{n}"}


def test_image_refs_pin_tag_and_digest() -> None:
    assert versions.CNPG_POSTGRES.ref.startswith(
        "ghcr.io/cloudnative-pg/postgresql:17.11-"
    ) and versions.CNPG_POSTGRES.ref.endswith("@" + str(versions.CNPG_POSTGRES.digest))
    assert versions.REDIS.ref == f"docker.io/library/redis:{versions.REDIS.tag}"
    assert versions.LITELLM_PROXY.tag == f"main-v{versions.LITELLM_PYPI_VERSION}-stable"
    with pytest.raises(ValueError, match="not a pinned tag"):
        versions.Image(repository="docker.io/library/redis", tag="latest")
    with pytest.raises(ValueError, match="sha256"):
        versions.Image(repository="docker.io/library/redis", tag="8", digest="sha256:abc")
    with pytest.raises(ValueError, match="https"):
        versions.HelmChart(name="x", repo="http://example.invalid", version="1.0.0")
