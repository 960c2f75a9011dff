"""What the program generates for LAN GPU hosts, through the real tools' rules.

* The Compose files validate against Docker Compose's own JSON Schema, the compose-spec
  schema that check-jsonschema (pinned in requirements-dev.txt) vendors from
  compose-spec/compose-spec `schema/compose-spec.json`.
* Every `vllm serve` command in them is one vLLM accepts: the options the program
  derives, then extra options that pass `vllm_flags` (vLLM's own parser rules).
* The managed hosts' scripts pass shellcheck and `bash -n`; the install's
  compare-then-write step runs in bash and changes nothing the second time.
* The render prints one fit line per model and warns of a shortened context
  (`helm_values` overlays: tests/unit/test_helm_overlay.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from components.cluster.lan_compose import compose_document
from components.cluster.lan_workstations import host_artifacts
from components.config import PlatformConfig, parse_platform_config
from components.inference.vllm_flags import DERIVED, extra_args_problems
from tests.support import stack_values
from tools.render import main as render_main

SCHEMA = json.loads(
    (
        resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    ).read_text()
)


def _variants() -> dict[str, PlatformConfig]:
    prod = stack_values("prod")
    unmanaged = stack_values("prod")
    unmanaged["cluster"]["lan_gpu_hosts"]["workstation"].update(
        managed=False, cache_dir="/srv/models"
    )
    ollama = stack_values("prod")
    ollama["cluster"]["lan_gpu_hosts"]["workstation"]["services"][1] = {
        "port": 11434,
        "server": "ollama",
    }
    qwen = ollama["inference"]["models"]["Qwen3-4B"]
    del qwen["extra_args"]
    qwen.update(lan_port=11434, backend_model="qwen3:4b", image=None)
    return {
        name: parse_platform_config(values)
        for name, values in (("prod", prod), ("unmanaged", unmanaged), ("ollama", ollama))
    }


VARIANTS = _variants()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compose_file_validates_against_the_compose_spec(variant: str) -> None:
    document = compose_document(VARIANTS[variant], "workstation")
    errors = sorted(
        jsonschema.Draft202012Validator(SCHEMA).iter_errors(document), key=lambda e: e.path
    )
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_the_schema_catches_what_compose_refuses() -> None:
    document: dict[str, Any] = compose_document(VARIANTS["prod"], "workstation")
    service = next(iter(document["services"].values()))
    service["shm_sizes"] = "4gb"
    service["restart"] = {"always": True}
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert len(list(validator.iter_errors(document))) >= 2


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_vllm_command_is_one_vllm_accepts(variant: str) -> None:
    config = VARIANTS[variant]
    for name, service in compose_document(config, "workstation")["services"].items():
        if not name.startswith("vllm-"):
            continue
        command: list[str] = service["command"]
        model = config.inference.models[service["labels"]["io.llm-platform.model"]]
        assert command[0] == model.hf_repo  # the positional model tag
        derived = command[1 : len(command) - len(model.extra_args)]
        assert all(arg.split("=", 1)[0] in DERIVED for arg in derived), derived
        assert extra_args_problems(command[len(derived) + 1 :]) == []


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (run scripts/install-system-tools.sh)")
    return found


def test_managed_host_scripts_pass_shellcheck(tmp_path: Path) -> None:
    files = host_artifacts(VARIANTS["prod"], "workstation")
    scripts = {p: t for p, t in files.items() if p.endswith(".sh")}
    assert {Path(p).name for p in scripts} == {"preflight.sh", "install.sh", "uninstall.sh"}
    shellcheck = _tool("shellcheck")
    for path, text in scripts.items():
        script = tmp_path / Path(path).name
        script.write_text(text)
        done = subprocess.run(
            [shellcheck, "--severity=style", "--shell=bash", str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout
        parsed = subprocess.run(
            ["bash", "-n", str(script)], capture_output=True, text=True, timeout=30, check=False
        )
        assert parsed.returncode == 0, parsed.stderr
    assert "HF_TOKEN=" not in files["lan/workstation/install.sh"].split("printf")[0]


def test_install_writes_the_compose_file_once_and_then_changes_nothing(tmp_path: Path) -> None:
    text = host_artifacts(VARIANTS["prod"], "workstation")["lan/workstation/install.sh"]
    # Everything up to the docker commands: the token block and the compare-then-write.
    head = text.split("\nrunning=")[0].replace("/opt/llm-platform", str(tmp_path / "opt"))
    probe = tmp_path / "probe.sh"
    probe.write_text(head + '\necho "changed=${changed}"\n')
    runs = [
        subprocess.run(
            ["bash", str(probe)],
            input="hf_TEST-TOKEN\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    assert "changed=1" in runs[0] and "changed=0" in runs[1]
    env = tmp_path / "opt" / ".env"
    assert env.read_text() == "HF_TOKEN=hf_TEST-TOKEN\n"
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    compose = (tmp_path / "opt" / "compose.yaml").read_text()
    assert compose.rstrip("\n") == host_artifacts(VARIANTS["prod"], "workstation")[
        "lan/workstation/compose.yaml"
    ].rstrip("\n")


def test_render_prints_the_fit_and_warns_of_a_shortened_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render_main(["--stack", "dev", "--no-charts", "--out", str(tmp_path / "r")]) == 0
    out, err = capsys.readouterr()
    assert "fit qwen3-4b: cluster rtx-3060 x1; weights 7.49 GiB;" in out
    assert "context 7424/8192 (shortened)" in out
    assert "warning: inference.models.qwen3-4b: serves 7424 tokens of context" in err
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "| `qwen3-4b` | cluster rtx-3060 x1 |" in summary


def test_render_refuses_a_strict_model_that_does_not_get_its_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = tmp_path / "Pulumi.dev.yaml"
    text = (Path(__file__).resolve().parents[2] / "Pulumi.dev.yaml").read_text()
    stack.write_text(text.replace("    models:\n", "    strict_context: true\n    models:\n"))
    code = render_main(["--stack", "dev", "--config", str(stack), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "config error: inference.models.qwen3-4b.context_length" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
