"""Every version the platform pins: Helm charts, container images, k3s, host packages.

This module is the one place where versions live. Components import the constants
below instead of writing a chart version or an image tag themselves, so a bump is a
one-line change here that shows up in review and in the offline render's diff.

Each pin names, in a comment, the upstream source it was read from (repository and
ref, or release note). Pins were chosen on 2026-11-24 from the newest stable releases
present in the stored upstream sources; where those sources are older than the
registries, the comment says so.

How to bump:

1. Change the version here (one edit; the constants are frozen).
2. For a Helm chart, run ``make charts`` (it fetches and verifies the new archive) and
   ``make test``: every release is templated with the new chart, and
   ``tests/artifacts/test_chart_objects.py`` flags every values key the new chart no
   longer reads, values its schema refuses, and whatever its objects break.
3. For an image, update the tag and, where one is pinned, the digest together: a tag
   with a stale digest pulls the old image, because the digest wins.
4. For k3s, keep ``KUBERNETES_VERSION`` equal to its minor: the manifests are
   validated against that Kubernetes schema with kubernetes-validate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEMVER_ISH = re.compile(r"^v?[0-9]+(\.[0-9]+){1,3}([-+.][0-9A-Za-z.+-]+)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class HelmChart:
    """A Helm chart pinned to one version in one chart repository.

    ``name`` is the chart's name inside ``repo`` (and in its archive's Chart.yaml);
    ``version`` is the chart version, spelled exactly as
    the repository's index spells it (jetstack charts carry a leading ``v``). ``repo`` is
    an HTTPS chart repository or an ``oci://`` registry path holding the chart.
    """

    name: str
    repo: str
    version: str

    def __post_init__(self) -> None:
        if not self.repo.startswith(("https://", "oci://")):
            raise ValueError(
                f"chart {self.name}: repo must be an https or oci URL, got {self.repo!r}"
            )
        if not _SEMVER_ISH.match(self.version):
            raise ValueError(f"chart {self.name}: version {self.version!r} is not a version")

    @property
    def oci(self) -> bool:
        """Whether the chart lives in an OCI registry (no repository index)."""
        return self.repo.startswith("oci://")

    @property
    def reference(self) -> str:
        """How a Release and `helm pull` name the chart: its name beside an HTTPS
        repository, or the whole ``oci://`` reference."""
        return f"{self.repo}/{self.name}" if self.oci else self.name


@dataclass(frozen=True, kw_only=True, slots=True)
class Image:
    """A container image: repository (with registry), tag and, where known, digest.

    When ``digest`` is set, ``ref`` pins the content and the tag only documents it.
    """

    repository: str
    tag: str
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.tag == "latest" or not _TAG.match(self.tag):
            raise ValueError(f"image {self.repository}: tag {self.tag!r} is not a pinned tag")
        if self.digest is not None and not _DIGEST.match(self.digest):
            raise ValueError(f"image {self.repository}: digest {self.digest!r} is not sha256")
        if "/" not in self.repository or ":" in self.repository.split("/")[-1]:
            raise ValueError(f"image repository {self.repository!r} must be registry/path")

    @property
    def ref(self) -> str:
        """The reference to put in a Pod spec: ``repository:tag[@digest]``."""
        base = f"{self.repository}:{self.tag}"
        return f"{base}@{self.digest}" if self.digest else base


def parse_image(ref: str) -> Image:
    """An image reference written in config (`registry/path:tag[@sha256:...]`) as a pinned
    `Image`; ValueError saying what is missing when it is not pinned.

    The rules are those of the pins in this module: a registry-qualified repository and
    an exact tag (never `latest`, and with a version number in it: `nightly` or `main`
    move), with a digest optional.
    """
    digest: str | None = None
    base = ref
    if "@" in ref:
        base, digest = ref.split("@", 1)
    last = base.rsplit("/", 1)[-1]
    if ":" not in last:
        raise ValueError("needs an exact tag, e.g. docker.io/vllm/vllm-openai:v0.33.0")
    repository, tag = base.rsplit(":", 1)
    if not any(ch.isdigit() for ch in tag):
        raise ValueError(f"tag {tag!r} names no version and moves; use an exact release tag")
    return Image(repository=repository, tag=tag, digest=digest)


# --- Helm repositories --------------------------------------------------------------

JETSTACK_REPO = "https://charts.jetstack.io"
TRAEFIK_REPO = "https://traefik.github.io/charts"
LINKERD_EDGE_REPO = "https://helm.linkerd.io/edge"
NVIDIA_DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"
DCGM_EXPORTER_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
PROMETHEUS_COMMUNITY_REPO = "https://prometheus-community.github.io/helm-charts"
CLOUDNATIVE_PG_REPO = "https://cloudnative-pg.github.io/charts"
QDRANT_REPO = "https://qdrant.github.io/qdrant-helm"
KEDA_REPO = "https://kedacore.github.io/charts"
AUTOSCALER_REPO = "https://kubernetes.github.io/autoscaler"
ARC_CHARTS_REPO = "oci://ghcr.io/actions/actions-runner-controller-charts"

# --- Helm charts ----------------------------------------------------------------------

# cert-manager/cert-manager tag v1.21.1 (2026-07-29), deploy/charts/cert-manager.
CERT_MANAGER = HelmChart(name="cert-manager", repo=JETSTACK_REPO, version="v1.21.1")

# cert-manager/trust-manager tag v0.24.0 (2026-06-27), deploy/charts/trust-manager.
TRUST_MANAGER = HelmChart(name="trust-manager", repo=JETSTACK_REPO, version="v0.24.0")

# traefik/traefik-helm-chart tag v41.3.0 (2026-08-21), appVersion v3.7.11.
TRAEFIK = HelmChart(name="traefik", repo=TRAEFIK_REPO, version="41.3.0")

# linkerd/linkerd2 tag edge-26.8.3 (2026-08-21). Edge charts are published as
# YYYY.M.N of the tag edge-YY.M.N (bin/compute-edge-version update-charts, run by
# .github/actions/helm-publish), the same version for every chart of the release.
LINKERD_EDGE_RELEASE = "edge-26.8.3"
LINKERD_CHART_VERSION = "2026.8.3"
LINKERD_CRDS = HelmChart(name="linkerd-crds", repo=LINKERD_EDGE_REPO, version=LINKERD_CHART_VERSION)
LINKERD_CONTROL_PLANE = HelmChart(
    name="linkerd-control-plane", repo=LINKERD_EDGE_REPO, version=LINKERD_CHART_VERSION
)
LINKERD2_CNI = HelmChart(name="linkerd2-cni", repo=LINKERD_EDGE_REPO, version=LINKERD_CHART_VERSION)
LINKERD_VIZ = HelmChart(name="linkerd-viz", repo=LINKERD_EDGE_REPO, version=LINKERD_CHART_VERSION)

# NVIDIA/k8s-device-plugin tag v0.20.0 (2026-08-19), deployments/helm/nvidia-device-plugin.
NVIDIA_DEVICE_PLUGIN = HelmChart(
    name="nvidia-device-plugin", repo=NVIDIA_DEVICE_PLUGIN_REPO, version="0.20.0"
)

# NVIDIA/dcgm-exporter tag 4.5.3-4.8.2 (DCGM 4.5.3, exporter 4.8.2), deployment/Chart.yaml.
DCGM_EXPORTER = HelmChart(name="dcgm-exporter", repo=DCGM_EXPORTER_REPO, version="4.8.2")

# prometheus-community/helm-charts tag kube-prometheus-stack-88.5.3 (2026-08-21),
# appVersion v0.93.1 (prometheus-operator); bundles grafana chart 12.11.1.
KUBE_PROMETHEUS_STACK = HelmChart(
    name="kube-prometheus-stack", repo=PROMETHEUS_COMMUNITY_REPO, version="88.5.3"
)

# cloudnative-pg/charts tag cloudnative-pg-v0.29.0 (2026-06-29), operator appVersion 1.30.0.
CLOUDNATIVE_PG = HelmChart(name="cloudnative-pg", repo=CLOUDNATIVE_PG_REPO, version="0.29.0")

# cloudnative-pg/charts tag plugin-barman-cloud-v0.7.0 (2026-06-10), appVersion v0.13.0:
# the Barman Cloud CNPG-I plugin. CNPG 1.30 deprecates in-tree `barmanObjectStore` (removal
# announced for 1.31, CNPG 1.29.2 release notes) and the "standard" Postgres images no
# longer carry barman-cloud, so object-store backups go through this plugin. Its chart
# creates cert-manager Issuer/Certificates (needs cert-manager's CRDs first).
CNPG_BARMAN_CLOUD_PLUGIN = HelmChart(
    name="plugin-barman-cloud", repo=CLOUDNATIVE_PG_REPO, version="0.7.0"
)

# qdrant/qdrant-helm tag qdrant-1.19.0 (2026-08-13), appVersion v1.19.0.
QDRANT = HelmChart(name="qdrant", repo=QDRANT_REPO, version="1.19.0")

# kedacore/charts tag v2.20.2 (keda/Chart.yaml, appVersion 2.20.2: the operator, metrics
# API server and admission webhook images ghcr.io/kedacore/*:2.20.2); CRDs are templates
# of the chart (templates/crds), installed by the release.
KEDA = HelmChart(name="keda", repo=KEDA_REPO, version="2.20.2")

# kubernetes/autoscaler tag vertical-pod-autoscaler-chart-0.11.0,
# vertical-pod-autoscaler/charts/vertical-pod-autoscaler (appVersion 1.7.1: image
# registry.k8s.io/autoscaling/vpa-recommender:1.7.1); CRDs in the chart's crds/ folder.
VERTICAL_POD_AUTOSCALER = HelmChart(
    name="vertical-pod-autoscaler", repo=AUTOSCALER_REPO, version="0.11.0"
)

# actions/actions-runner-controller tag gha-runner-scale-set-0.14.2 (2026-05-22):
# charts/gha-runner-scale-set-controller and charts/gha-runner-scale-set, both 0.14.2 with
# appVersion 0.14.2, published as OCI artifacts (docs/gha-runner-scale-set-controller/
# README.md). The controller and each scale set must run the same version.
ARC_CONTROLLER = HelmChart(
    name="gha-runner-scale-set-controller", repo=ARC_CHARTS_REPO, version="0.14.2"
)
ARC_SCALE_SET = HelmChart(name="gha-runner-scale-set", repo=ARC_CHARTS_REPO, version="0.14.2")

HELM_CHARTS: tuple[HelmChart, ...] = (
    CERT_MANAGER,
    TRUST_MANAGER,
    TRAEFIK,
    LINKERD_CRDS,
    LINKERD_CONTROL_PLANE,
    LINKERD2_CNI,
    LINKERD_VIZ,
    NVIDIA_DEVICE_PLUGIN,
    DCGM_EXPORTER,
    KUBE_PROMETHEUS_STACK,
    CLOUDNATIVE_PG,
    CNPG_BARMAN_CLOUD_PLUGIN,
    QDRANT,
    KEDA,
    VERTICAL_POD_AUTOSCALER,
    ARC_CONTROLLER,
    ARC_SCALE_SET,
)
"""Every chart the platform installs; `make charts` caches each archive (tools/charts.py)."""

# --- Container images ---------------------------------------------------------------
# No container registry was reachable while pinning, so digests are pinned only where
# an upstream file publishes them (the CloudNativePG image catalog).

# vLLM 0.33.0: PyPI release (sdist uploaded 2026-11-02); the image tag is v<version>
# (docs/getting_started/installation/gpu.cuda.inc.md in the sdist).
VLLM_OPENAI = Image(repository="docker.io/vllm/vllm-openai", tag="v0.33.0")

# LiteLLM proxy: BerriAI/litellm release notes v1.83.14 (2026-04-27) deploy this image,
# matching `pip install litellm==1.83.14`. Newer PyPI releases (1.110.x) exist, but no
# newer "-stable" image tag appears in the stored sources.
LITELLM_PYPI_VERSION = "1.83.14"
LITELLM_PROXY = Image(repository="ghcr.io/berriai/litellm", tag="main-v1.83.14-stable")

# huggingface/text-embeddings-inference tag v1.9.3; image tags are <prefix><version>
# (.github/workflows/build.yaml + matrix.json): "cpu-" for CPU, "cuda-" for the image
# with kernels for every supported compute capability (per-GPU tags such as "89-" exist).
TEI_CPU = Image(repository="ghcr.io/huggingface/text-embeddings-inference", tag="cpu-1.9.3")
TEI_CUDA = Image(repository="ghcr.io/huggingface/text-embeddings-inference", tag="cuda-1.9.3")

# docker-library/official-images library/redis @37079fb (2026-08-21): 8.10.1-alpine.
# Redis runs as a small StatefulSet with the official image (no chart).
REDIS = Image(repository="docker.io/library/redis", tag="8.10.1-alpine")

# cloudnative-pg/artifacts image-catalogs/catalog-standard-trixie.yaml @da87904
# (catalog date 20260817). "standard" images replace the deprecated "system" ones
# (cloudnative-pg/postgres-containers README); the bare MM.mm tags are system images.
POSTGRES_MAJOR = 17
CNPG_POSTGRES = Image(
    repository="ghcr.io/cloudnative-pg/postgresql",
    tag="17.11-202608170816-standard-trixie",
    digest="sha256:91e0de662d53895a45f1396f4ee1a75daeb0c26fc87853afc9c8f43e01fdaa21",
)

# docker-library/official-images library/busybox @37079fb: 1.37.0 (1.38 is "unstable").
BUSYBOX = Image(repository="docker.io/library/busybox", tag="1.37.0")

# curl/curl-container tag 8.21.0 (2026-07-01); README: published as docker.io/curlimages/curl.
CURL = Image(repository="docker.io/curlimages/curl", tag="8.21.0")

# getumbrel/umbrel-apps master ollama/docker-compose.yml pins this tag with its digest.
# Ollama on a LAN GPU host runs from it (no chart).
OLLAMA = Image(
    repository="docker.io/ollama/ollama",
    tag="0.40.16",
    digest="sha256:910d0d8107b538fb0894e63163eb195de0cc7aefcbc666dc62d3b18f71124592",
)

# The controller image of ARC_CONTROLLER (its chart's appVersion); the listener pods the
# controller starts run the same image (CONTROLLER_MANAGER_CONTAINER_IMAGE).
ARC_CONTROLLER_IMAGE = Image(
    repository="ghcr.io/actions/gha-runner-scale-set-controller", tag="0.14.2"
)

# actions/runner tag v2.336.0 (2026-07-20): .github/workflows/release.yml publishes
# ghcr.io/actions/actions-runner:<version> for linux/amd64 and linux/arm64
# (images/Dockerfile: the runner as user `runner`, UID 1001).
ACTIONS_RUNNER = Image(repository="ghcr.io/actions/actions-runner", tag="2.336.0")

IMAGES: tuple[Image, ...] = (
    VLLM_OPENAI,
    OLLAMA,
    LITELLM_PROXY,
    TEI_CPU,
    TEI_CUDA,
    REDIS,
    CNPG_POSTGRES,
    BUSYBOX,
    CURL,
    ARC_CONTROLLER_IMAGE,
    ACTIONS_RUNNER,
)

# --- Cluster and hosts ----------------------------------------------------------------

# k3s-io/docs docs/release-notes/v1.36.X.md: v1.36.2+k3s1 (2026-06-24), Kubernetes v1.36.2.
# It bundles Traefik v3.7.4; the platform installs its own Traefik, so k3s runs with
# --disable=traefik.
K3S_VERSION = "v1.36.2+k3s1"

# The Kubernetes minor of K3S_VERSION; kubernetes-validate 1.37.0 ships schemas for
# 1.25 to 1.37, and manifests are validated against this one.
KUBERNETES_VERSION = "1.36"

# NVIDIA/nvidia-container-toolkit tag v1.20.0 (2026-08-12); NVIDIA's apt repository
# versions packages <version>-1 (nvidia-container-toolkit, -base,
# libnvidia-container-tools, libnvidia-container1 share it).
NVIDIA_CONTAINER_TOOLKIT_VERSION = "1.20.0-1"
