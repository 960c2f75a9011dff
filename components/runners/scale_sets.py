"""RunnerScaleSets: GitHub Actions runners in the cluster, scaling from zero per job.

Creates, with the cluster's explicit `k8s.Provider`:

1. Secret `arc-github-app` in `arc-runners`: the GitHub App's id, installation id and
   private key (a secret Output from secret config), the pre-defined secret the scale
   sets name (`githubConfigSecret`);
2. the Actions Runner Controller (`gha-runner-scale-set-controller`, release
   `arc-controller`) in `arc-systems`, with its CRDs, watching only `arc-runners`;
3. one scale set per configured kind (`gha-runner-scale-set`, releases
   `llm-platform-amd64`, `llm-platform-arm64`, `llm-platform-gpu`) in `arc-runners`, from
   zero to `max_runners` pods, after the controller (its CRDs) and, for the GPU runner,
   after GPU support (the `nvidia` RuntimeClass).

The pods themselves are the controller's: one listener per scale set in `arc-systems`,
one runner pod per job in `arc-runners` (values in `components/runners/values.py`).
Exposes `scale_sets` (kind -> the name workflows use in `runs-on`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.config import PlatformConfig
from components.helm import pinned_release
from components.labels import standard_labels
from components.runners.values import (
    CONTROLLER_RELEASE,
    GITHUB_APP_SECRET,
    SCALE_SET_NAMES,
    controller_values,
    scale_set_values,
)


@dataclass(frozen=True, kw_only=True)
class RunnerScaleSetsArgs:
    """Inputs of the runner area."""

    config: PlatformConfig
    """The stack config; `runners` must be enabled."""
    provider: k8s.Provider
    github_app_private_key: pulumi.Input[str]
    """The GitHub App's private key (PEM), a secret from config."""
    system_namespace: pulumi.Input[str]
    """`arc-systems`: the controller and its listeners."""
    runners_namespace: pulumi.Input[str]
    """`arc-runners`: the App's Secret and the runner pods."""
    gpu_ready: Sequence[pulumi.Resource] = ()
    """GPU support (RuntimeClass, device plugin): the GPU scale set follows it."""


class RunnerScaleSets(pulumi.ComponentResource):
    """The runner controller and its scale sets."""

    scale_sets: dict[str, str]

    def __init__(
        self, name: str, args: RunnerScaleSetsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:runners:RunnerScaleSets", name, None, opts)
        config = args.config
        app = config.runners.github_app
        if not config.runners.enabled or app is None:
            raise ValueError("RunnerScaleSets: runners are not enabled in the config")
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)

        # 1. The App's credentials, as ARC's pre-defined secret expects them (chart values.yaml).
        secret = k8s.core.v1.Secret(
            f"{name}-github-app",
            metadata={
                "name": GITHUB_APP_SECRET,
                "namespace": args.runners_namespace,
                "labels": standard_labels(name=GITHUB_APP_SECRET, component="runners"),
            },
            type="Opaque",
            string_data={
                "github_app_id": app.app_id,
                "github_app_installation_id": app.installation_id,
                "github_app_private_key": pulumi.Output.secret(args.github_app_private_key),
            },
            opts=child,
        )

        # 2. The controller and its CRDs.
        controller = pinned_release(
            f"{name}-controller",
            versions.ARC_CONTROLLER,
            namespace=args.system_namespace,
            values=controller_values(),
            release_name=CONTROLLER_RELEASE,
            overlays=config.helm_values,
            opts=child,
        )

        # 3. The scale sets: custom resources of the controller's CRDs, hence depends_on.
        self.scale_sets = {}
        for kind in sorted(config.runners.scale_sets()):
            after: list[pulumi.Resource] = [controller]
            if kind == "gpu":
                after += list(args.gpu_ready)
            pinned_release(
                f"{name}-{kind}",
                versions.ARC_SCALE_SET,
                namespace=args.runners_namespace,
                values=scale_set_values(config, kind, secret_name=secret.metadata["name"]),
                release_name=SCALE_SET_NAMES[kind],
                overlays=config.helm_values,
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=after)),
            )
            self.scale_sets[kind] = SCALE_SET_NAMES[kind]

        self.register_outputs({"scale_sets": self.scale_sets})
