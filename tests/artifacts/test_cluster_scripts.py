"""The cluster's generated scripts through real tools: shellcheck, `bash -n`, and bash itself.

Every script of a bootstrap (both stacks switched to `bootstrap`, plus a variant with
time-slicing, taints and an arm64 server) and the `existing`-mode labelling script must
pass shellcheck at style level and parse. Two pieces run for real on loopback-free
temporary files: the compare-then-write step every install relies on for idempotence,
and the preflight's refusal of a host whose architecture differs from the config.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.cluster import scripts
from components.cluster.k3s import bootstrap_artifacts, existing_artifacts, node_settings
from components.config import ClusterConfig
from tests.support import stack_values


def _bootstrap(stack: str, **changes: Any) -> ClusterConfig:
    raw = stack_values(stack)["cluster"]
    raw["mode"] = "bootstrap"
    first = next(n for n, node in raw["nodes"].items() if node.get("role") == "server")
    raw["api_endpoint"] = raw["nodes"][first]["address"]
    raw.update(changes)
    return ClusterConfig.model_validate(raw)


def _variant_config() -> ClusterConfig:
    raw = stack_values("prod")["cluster"]
    raw.update(mode="bootstrap", api_endpoint="192.168.10.100", init_server="rack-2")
    raw["nodes"]["rack-3"]["arch"] = "arm64"
    raw["nodes"]["pi-1"]["taints"] = [{"key": "arch", "value": "arm64", "effect": "NoExecute"}]
    raw["gpu_classes"]["rtx-3090"]["sharing"] = "time-slicing"
    return ClusterConfig.model_validate(raw)


VARIANTS: dict[str, dict[str, str]] = {
    "dev-bootstrap": bootstrap_artifacts(_bootstrap("dev")),
    "prod-bootstrap": bootstrap_artifacts(_bootstrap("prod")),
    "prod-variant": bootstrap_artifacts(_variant_config()),
    "prod-existing": existing_artifacts(
        ClusterConfig.model_validate(stack_values("prod")["cluster"])
    ),
    "dev-existing": existing_artifacts(
        ClusterConfig.model_validate(stack_values("dev")["cluster"])
    ),
}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (run scripts/install-system-tools.sh)")
    return found


def _scripts() -> list[object]:
    return [
        pytest.param(text, id=f"{variant}-{Path(path).name}")
        for variant, files in VARIANTS.items()
        for path, text in sorted(files.items())
    ]


def test_every_kind_of_script_is_covered() -> None:
    names = {Path(p).name.split("-")[-1] for files in VARIANTS.values() for p in files}
    assert {"preflight.sh", "install.sh", "uninstall.sh", "nodes.sh"} <= names
    # Three scripts per node of the prod inventory.
    assert len(VARIANTS["prod-bootstrap"]) == 3 * 7


@pytest.mark.parametrize("text", _scripts())
def test_script_passes_shellcheck_and_bash_n(text: str, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text(text)
    parsed = subprocess.run(
        [_tool("bash"), "-n", str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert parsed.returncode == 0, parsed.stderr
    checked = subprocess.run(
        [_tool("shellcheck"), "--shell=bash", "--severity=style", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


def test_shellcheck_catches_a_broken_script(tmp_path: Path) -> None:
    script = tmp_path / "broken.sh"
    script.write_text("#!/usr/bin/env bash\nrm -rf $DIR/*\n")
    checked = subprocess.run(
        [_tool("shellcheck"), "--shell=bash", "--severity=style", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode != 0


def _common_prelude() -> str:
    """The install script's shared helpers (everything before its settings)."""
    text = VARIANTS["dev-bootstrap"]["cluster/rack-1-install.sh"]
    return text[: text.index("K3S_VERSION=")]


def test_put_file_writes_once_then_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "config.yaml"
    harness = (
        _common_prelude()
        + f"""
put_file '{target}' 0600 <<'EOF'
a: 1
EOF
echo "first=${{changed}}"
changed=0
put_file '{target}' 0600 <<'EOF'
a: 1
EOF
echo "second=${{changed}}"
put_file '{target}' 0600 <<'EOF'
a: 2
EOF
echo "third=${{changed}}"
"""
    )
    result = subprocess.run(
        [_tool("bash"), "-c", harness], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "=" in line and "wrote" not in line]
    assert lines == ["first=1", "second=0", "third=1"]
    assert target.read_text() == "a: 2\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_preflight_refuses_a_host_of_the_wrong_architecture() -> None:
    here = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    if here is None:
        pytest.skip(f"no configured architecture matches this machine ({platform.machine()})")
    raw = stack_values("prod")["cluster"]
    other = "arm64" if here == "amd64" else "amd64"
    raw["nodes"]["pi-1"]["arch"] = other
    settings = node_settings(_bootstrap("prod", nodes=raw["nodes"]), "pi-1")
    result = subprocess.run(
        [_tool("bash"), "-c", scripts.preflight_script(settings)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert f"the host is {here} but config says {other}" in result.stderr
    assert "cluster.nodes.pi-1.arch" in result.stderr
    assert "nothing was changed on any host" in result.stderr
