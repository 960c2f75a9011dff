"""Config of the optional `runners` area: GitHub Actions runners in the cluster.

GitHub's Actions Runner Controller (ARC, runner scale sets) registers one scale set per
kind: `amd64` and `arm64` runners on the CPU nodes of that architecture and a `gpu` runner
on a GPU class. Each scales from zero to `max_runners`, one pod per job. Registration
uses a GitHub App; its private key is secret config, its two ids are not secrets.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from ._base import DnsLabel, FrozenModel, K8sQuantity, Problem, SecretConfigKey, raise_if_problems

GitHubUrl = Annotated[
    str,
    StringConstraints(
        pattern=r"^https://github\.com/[A-Za-z0-9][A-Za-z0-9-]{0,38}(/[A-Za-z0-9._-]{1,100})?$"
    ),
]
"""A repository (`https://github.com/<owner>/<repo>`) or organization URL."""


class GitHubAppConfig(FrozenModel):
    """The GitHub App the scale sets register with (repository permission Administration:
    read and write; for organization runners, Self-hosted runners: read and write)."""

    app_id: str = Field(
        pattern=r"^([0-9]{1,12}|Iv[0-9a-zA-Z.]{4,40})$",
        description="The App's ID (digits) or client ID (`Iv...`); not a secret.",
    )
    installation_id: str = Field(
        pattern=r"^[0-9]{1,12}$",
        description="The App's installation on the repository or organization; not a secret.",
    )
    private_key_secret: SecretConfigKey = Field(
        default="github_app_private_key",
        description="Secret config key holding the App's private key (PEM): "
        "`pulumi config set --secret github_app_private_key < app.private-key.pem`.",
    )


class RunnerSetConfig(FrozenModel):
    """One scale set: how many runner pods at most, and what each asks for."""

    max_runners: int = Field(default=2, ge=1, le=50, description="Runner pods at most.")
    cpu: K8sQuantity = Field(default="1", description="CPU request of a runner pod.")
    memory: K8sQuantity = Field(default="2Gi", description="Memory request of a runner pod.")
    cpu_limit: K8sQuantity = Field(default="2", description="CPU limit of a runner pod.")
    memory_limit: K8sQuantity = Field(
        default="4Gi", description="Memory limit of a runner pod (a job past it is killed)."
    )


class GpuRunnerSetConfig(RunnerSetConfig):
    """The GPU scale set: runner pods with one GPU of `gpu_class` each."""

    gpu_class: DnsLabel = Field(
        description="GPU class its pods run on; needs a GPU per runner that no model holds."
    )
    max_runners: int = Field(default=1, ge=1, le=8, description="Runner pods (GPUs) at most.")


class RunnersConfig(FrozenModel):
    """GitHub Actions runner scale sets in the cluster (off by default)."""

    enabled: bool = Field(
        default=False,
        description="Install the Actions Runner Controller and the scale sets below.",
    )
    github_config_url: GitHubUrl | None = Field(
        default=None,
        description="Where the runners register: `https://github.com/<owner>/<repo>` or an "
        "organization `https://github.com/<org>`.",
    )
    github_app: GitHubAppConfig | None = Field(
        default=None,
        description="The GitHub App the runners register with; required when enabled.",
    )
    runner_group: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$",
        description="The runner group the scale sets join (organization runners: restrict "
        "it to this repository and its deploy workflows).",
    )
    amd64: RunnerSetConfig | None = Field(
        default_factory=RunnerSetConfig, description="Runners on amd64 CPU nodes; null: none."
    )
    arm64: RunnerSetConfig | None = Field(
        default_factory=lambda: RunnerSetConfig(max_runners=1),
        description="Runners on arm64 nodes; null: none.",
    )
    gpu: GpuRunnerSetConfig | None = Field(
        default=None, description="The GPU runner; none unless configured."
    )

    @model_validator(mode="after")
    def _complete(self) -> RunnersConfig:
        if not self.enabled:
            return self
        problems = []
        if self.github_config_url is None:
            problems.append(
                Problem(("github_config_url",), "required when runners are enabled", None)
            )
        if self.github_app is None:
            problems.append(
                Problem(
                    ("github_app",),
                    "required when runners are enabled: app_id, installation_id and the "
                    "secret key holding the App's private key",
                    None,
                )
            )
        if self.amd64 is None and self.arm64 is None and self.gpu is None:
            problems.append(
                Problem(("amd64",), "enabled runners need at least one scale set", None)
            )
        raise_if_problems(problems)
        return self

    def scale_sets(self) -> dict[str, RunnerSetConfig]:
        """The configured scale sets by kind (`amd64`, `arm64`, `gpu`), none when disabled."""
        if not self.enabled:
            return {}
        sets = {"amd64": self.amd64, "arm64": self.arm64, "gpu": self.gpu}
        return {kind: spec for kind, spec in sets.items() if spec is not None}
