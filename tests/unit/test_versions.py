"""The pins of components.versions that other checks depend on."""

from __future__ import annotations

import pytest

from components import versions


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


def test_every_pinned_chart_is_named_once() -> None:
    names = [chart.name for chart in versions.HELM_CHARTS]
    assert len(names) == len(set(names))
