"""The `runners` area: config rules, the releases under the recording mocks, the flows.

The controller and the scale sets cannot run here (no cluster, no GitHub); what they would
do is read from ARC's source at gha-runner-scale-set-0.14.2 (cited in
components/runners/values.py and tools/checks/arc.py), and the charts are templated by
the real Helm engine in the render (tests/artifacts/test_chart_objects.py,
tests/unit/test_reachability.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components import versions
from components.cluster.namespaces import platform_flows, platform_namespaces
from components.config import ConfigError, parse_platform_config
from components.runners.values import CONTROLLER_SERVICE_ACCOUNT, SCALE_SET_NAMES
from tests.support import STACKS, as_existing, secret_placeholder, stack_values
from tools.mock_engine import SECRET, ProgramRun

RELEASE = "kubernetes:helm.sh/v3:Release"
StackRun = Callable[[str], ProgramRun]


def _errors(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(values)
    return list(caught.value.lines)


def _runners(**overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "github_config_url": "https://github.com/acme/llm-platform",
        "github_app": {"app_id": "12", "installation_id": "34"},
        **overrides,
    }


def test_runners_are_off_unless_enabled_and_then_need_where_and_how_to_register() -> None:
    dev = parse_platform_config(stack_values("dev"))
    assert not dev.runners.enabled and dev.runners.scale_sets() == {}
    assert "github_app_private_key" not in dev.required_secrets()
    values = stack_values("dev")
    values["runners"] = {"enabled": True}
    lines = _errors(values)
    assert any(
        line.startswith("config error: runners.github_config_url: required") for line in lines
    )
    assert any(line.startswith("config error: runners.github_app: required") for line in lines)


def test_each_cpu_scale_set_needs_a_node_of_its_architecture() -> None:
    values = stack_values("dev")  # one amd64 node, with a GPU
    values["runners"] = _runners(gpu=None)
    lines = _errors(values)
    assert {line.split(": ", 2)[1] for line in lines} == {"runners.amd64", "runners.arm64"}
    assert "no arm64 node without a GPU or a NoSchedule taint" in "\n".join(lines)


def test_the_gpu_runner_needs_a_gpu_no_model_holds() -> None:
    values = stack_values("prod")
    values["runners"]["gpu"] = {"gpu_class": "rtx-4090"}  # held by qwen3-8b
    lines = _errors(values)
    assert [line.split(": ", 2)[1] for line in lines] == ["runners.gpu.max_runners"], lines
    assert "'the GPU runner'" in lines[0] and "offer 1" in lines[0]
    values["runners"]["gpu"] = {"gpu_class": "h100"}
    assert [line.split(": ", 2)[1] for line in _errors(values)] == ["runners.gpu.gpu_class"]
    values["runners"]["gpu"] = {"gpu_class": "rtx-3060", "max_runners": 2}  # one CI GPU
    assert [line.split(": ", 2)[1] for line in _errors(values)] == ["runners.gpu.max_runners"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("github_config_url", "http://github.com/acme/repo"),
        ("github_config_url", "https://github.example.org/acme"),
        ("github_app", {"app_id": "12; rm -rf /", "installation_id": "34"}),
    ],
)
def test_where_and_how_to_register_are_checked(field: str, value: Any) -> None:
    values = stack_values("prod")
    values["runners"][field] = value
    lines = _errors(values)
    assert all(f"runners.{field}" in line for line in lines), lines


def test_prod_registers_three_scale_sets_with_a_secret_app_key(stack_run: StackRun) -> None:
    run = stack_run("prod")
    releases = {r.inputs["name"]: r for r in run.of_type(RELEASE)}
    controller = releases["arc-controller"]
    assert controller.inputs["chart"] == versions.ARC_CONTROLLER.reference
    assert controller.inputs["version"] == versions.ARC_CONTROLLER.version
    assert "repositoryOpts" not in controller.inputs  # an OCI chart has no repository index
    assert controller.inputs["namespace"] == "arc-systems"
    values = controller.inputs["values"]
    assert values["flags"]["watchSingleNamespace"] == "arc-runners"
    assert values["image"]["tag"] == versions.ARC_CONTROLLER_IMAGE.tag
    assert values["serviceAccount"]["name"] == CONTROLLER_SERVICE_ACCOUNT

    (secret,) = [
        r
        for r in run.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] == "arc-github-app"
    ]
    assert secret.inputs["metadata"]["namespace"] == "arc-runners"
    assert secret.inputs["stringData"] == SECRET
    everything = json.dumps([r.inputs for r in run.resources], default=str)
    assert secret_placeholder("github_app_private_key") not in everything

    for kind, name in SCALE_SET_NAMES.items():
        release = releases[name]
        scale_set = release.inputs["values"]
        assert release.inputs["namespace"] == "arc-runners"
        assert release.inputs["chart"] == versions.ARC_SCALE_SET.reference
        assert scale_set["runnerScaleSetName"] == name
        assert scale_set["minRunners"] == 0 and scale_set["maxRunners"] >= 1
        assert scale_set["githubConfigUrl"] == "https://github.com/example-org/llm-platform"
        assert scale_set["controllerServiceAccount"] == {
            "namespace": "arc-systems",
            "name": CONTROLLER_SERVICE_ACCOUNT,
        }
        pod = scale_set["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == versions.ACTIONS_RUNNER.ref
        assert pod["automountServiceAccountToken"] is False
        assert controller.urn in release.depends_on
        if kind == "gpu":
            assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert pod["runtimeClassName"] == "nvidia"
            gpu_plugin = next(r for r in run.of_type(RELEASE) if r.name == "llm-gpu-device-plugin")
            assert gpu_plugin.urn in release.depends_on
        else:
            assert pod["nodeSelector"]["kubernetes.io/arch"] == kind
            assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_dev_has_no_runner_resources(stack_run: StackRun) -> None:
    run = stack_run("dev")
    names = {r.inputs.get("name") for r in run.of_type(RELEASE)}
    assert not names & {"arc-controller", *SCALE_SET_NAMES.values()}
    spaces = {spec.name for spec in platform_namespaces(parse_platform_config(stack_values("dev")))}
    assert not spaces & {"arc-systems", "arc-runners"}


def test_the_runners_reach_the_api_github_the_ingress_and_ssh_and_nothing_else() -> None:
    config = parse_platform_config(stack_values("prod"))
    flows = [f for f in platform_flows(config) if f.source in ("arc-systems", "arc-runners")]
    by_target = {(f.source, f.target): f.ports for f in flows}
    assert by_target.pop(("arc-systems", "world")) == (443, 6443)
    assert by_target.pop(("arc-runners", "world")) == (443, 6443)
    assert by_target.pop(("arc-runners", "traefik")) == (8000, 8443)
    # Bootstrap mode: `pulumi up` reaches every node and the managed LAN host over SSH.
    hosts = [f"{n.address}/32" for n in config.cluster.nodes.values()] + ["192.168.10.50/32"]
    assert by_target == {("arc-runners", host): (22,) for host in hosts}
    assert not [f for f in platform_flows(config) if f.target in ("arc-systems", "arc-runners")]
    flows = platform_flows(parse_platform_config(as_existing(stack_values("prod"))))
    assert not [f for f in flows if f.source == "arc-runners" and 22 in f.ports]


def test_one_committed_stack_runs_the_runners() -> None:
    """The scale sets' names are fixed (they are the workflows' `runs-on`), so two stacks
    with runners would register the same names twice."""
    enabled = [s for s in STACKS if parse_platform_config(stack_values(s)).runners.enabled]
    assert enabled == ["prod"]
