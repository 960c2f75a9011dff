"""`helm_values`: per-release overlays merged last, held to the platform's releases, the
pinned charts and the rule that secrets never travel in plain Helm values.

* The merge (`components.helm.merged`) and its place: the overlay is the last word on a
  release's values, everything else the program sets stays.
* Release names: a name that is no release of the platform is a config error when the
  config is read; one of the platform that this stack does not install is one at render
  time (`tools.helm_overlay`), and `RELEASE_NAMES` is every release the program creates.
* Keys: one the pinned chart does not read, or values its schema refuses, fail the render
  with a config error naming `helm_values.<release>.<key>`, before anything is written.
* Secrets: a key named like a credential, or a value that looks like one, is refused
  without echoing it; a reference to a Secret (`existingSecret`) is fine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, parse_platform_config
from components.helm import RELEASE_NAMES, merged
from tests.support import ROOT, run_stack, stack_releases, stack_values
from tools import render as render_tool
from tools.helm_overlay import overlay_problems

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def _errors(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    return list(raised.value.lines)


def _release_values(run: Any, name: str) -> dict[str, Any]:
    (release,) = [r for r in run.of_type(HELM_RELEASE) if r.inputs.get("name") == name]
    values: dict[str, Any] = release.inputs["values"]
    return values


def test_merged_merges_maps_key_by_key_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    out = merged(base, {"a": {"c": [3], "e": 2}, "d": {"f": 1}})
    assert out == {"a": {"b": 1, "c": [3], "e": 2}, "d": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}  # pure


def test_an_overlay_is_merged_last_into_its_release(stack_run: Callable[[str], Any]) -> None:
    values = stack_values("dev")
    before = _release_values(stack_run("dev"), "traefik")
    assert before["deployment"]["replicas"] != 3
    values["helm_values"] = {"traefik": {"deployment": {"replicas": 3}}}
    after = _release_values(run_stack(values, "dev"), "traefik")
    # The overlay wins over what the program sets, and changes nothing else.
    assert after["deployment"] == {**before["deployment"], "replicas": 3}
    assert {k: v for k, v in after.items() if k != "deployment"} == {
        k: v for k, v in before.items() if k != "deployment"
    }


def test_release_names_are_the_releases_the_program_installs(
    stack_run: Callable[[str], Any],
) -> None:
    viz = stack_values("prod")
    viz["mesh"]["viz"] = True  # the one release neither stack installs
    runs = [stack_run("dev"), stack_run("prod"), run_stack(viz, "prod")]
    installed = {r.inputs["name"] for run in runs for r in run.of_type(HELM_RELEASE)}
    assert installed == RELEASE_NAMES


def test_a_name_that_is_no_release_of_the_platform_is_a_config_error() -> None:
    values = stack_values("dev")
    values["helm_values"] = {"treafik": {"deployment": {"replicas": 2}}}
    (line,) = _errors(values)
    assert line.startswith("config error: helm_values.treafik: not a release of the platform")
    assert "'traefik'" in line


def test_a_release_this_stack_does_not_install_is_refused_by_the_render() -> None:
    releases = stack_releases("dev")  # dev has no data layer, so no qdrant
    (line,) = overlay_problems({"qdrant": {"replicaCount": 2}}, releases)
    assert line.startswith("config error: helm_values.qdrant: this stack installs no release")


def test_a_key_the_chart_does_not_read_names_the_release_and_the_key() -> None:
    (traefik,) = [r for r in stack_releases("dev") if r.release == "traefik"]
    assert overlay_problems({"traefik": {"deployment": {"replicas": 3}}}, [traefik]) == []
    (line,) = overlay_problems({"traefik": {"deployment": {"replicaz": 3}}}, [traefik])
    assert line.startswith("config error: helm_values.traefik.deployment.replicaz: chart traefik ")
    assert "does not read this key" in line and line.endswith("(got 3)")


def test_values_the_charts_schema_refuses_are_a_config_error() -> None:
    (traefik,) = [r for r in stack_releases("dev") if r.release == "traefik"]
    (line,) = overlay_problems({"traefik": {"deployment": {"replicas": "three"}}}, [traefik])
    assert line.startswith("config error: helm_values.traefik: chart traefik ")
    assert "refuses the values" in line


def test_the_render_stops_on_an_unread_key_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The session's templated dev releases stand in for templating them again; the
    # overlay check merges the overlay into them itself.
    monkeypatch.setattr(render_tool, "render_releases", lambda run: list(stack_releases("dev")))
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["llm-platform:helm_values"] = {"traefik": {"deployment": {"replicaz": 3}}}
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    assert render_tool.main(["--stack", "dev", "--config", str(stack), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "config error: helm_values.traefik.deployment.replicaz: chart traefik" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("overlay", "path"),
    [
        ({"grafana": {"adminPassword": "correct-horse"}}, "grafana.adminPassword"),
        ({"alertmanager": {"config": {"token": "x1"}}}, "alertmanager.config.token"),
        ({"auth": {"password": {"value": "x1"}}}, "auth.password.value"),
        (
            {"extraEnv": [{"name": "K", "value": "sk-ant-api03-AAAABBBBCCCCDDDDEEEE"}]},
            "extraEnv.0.value",
        ),
    ],
)
def test_an_overlay_may_not_carry_a_secret_in_plain_values(
    overlay: dict[str, Any], path: str
) -> None:
    values = stack_values("dev")
    values["helm_values"] = {"monitoring": overlay}
    (line,) = _errors(values)
    assert line.startswith(f"config error: helm_values.monitoring.{path}: looks like a secret")
    assert "existingSecret" in line
    assert line.endswith("(got a value that is or looks like a secret, not shown)")
    assert "correct-horse" not in line and "sk-ant" not in line


def test_references_to_secrets_and_switches_are_not_secrets() -> None:
    values = stack_values("dev")
    values["helm_values"] = {
        "monitoring": {
            "grafana": {
                "admin": {"existingSecret": "grafana-admin", "passwordKey": "admin-password"}
            },
            "prometheus": {"prometheusSpec": {"secrets": []}},
        },
        "traefik": {"deployment": {"replicas": 2}, "hub": {"token": ""}},
    }
    config = parse_platform_config(values)  # no ConfigError: nothing here is a secret
    assert config.helm_values == values["helm_values"]
