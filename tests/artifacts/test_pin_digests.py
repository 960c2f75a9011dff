"""`make pin-digests` (tools/pin_digests.py) against a fake OCI registry on loopback: it
follows the token challenge, writes each digest next to its tag in a copy of
components/versions.py (still formatted, still importable), stays tag-pinned where a
registry is unreachable, and writes nothing when a registry answers with an error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from components import versions
from tests.artifacts.edge.nginx_harness import free_port
from tests.fakes.oci_registry import INDEX_TYPE, FakeRegistry
from tests.support import ROOT
from tools.pin_digests import find_pins, main, split_reference


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "versions.py"
    target.write_text((ROOT / "components" / "versions.py").read_text())
    return target


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as fake:
        yield fake


def _serve_all(registry: FakeRegistry) -> dict[str, str]:
    """Serve every image of versions.py; the digest served for each variable name."""
    pins = find_pins((ROOT / "components" / "versions.py").read_text())
    return {pin.variable: registry.add(split_reference(pin.repository)[1], pin.tag) for pin in pins}


def _load(path: Path) -> object:
    spec = importlib.util.spec_from_file_location("pinned_versions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _registries(url: str) -> list[str]:
    names = {split_reference(image.repository)[0] for image in versions.IMAGES}
    return [arg for name in sorted(names) for arg in ("--registry", f"{name}={url}")]


def test_every_image_is_pinned_to_the_digest_its_registry_serves(
    copy: Path, registry: FakeRegistry
) -> None:
    served = _serve_all(registry)
    assert main(["--versions", str(copy), *_registries(registry.url)]) == 0
    pinned = _load(copy)
    for image in versions.IMAGES:
        variable = next(n for n, v in vars(versions).items() if v is image)
        written = getattr(pinned, variable)
        assert (written.repository, written.tag) == (image.repository, image.tag)
        assert written.digest == served[variable]
        assert written.ref == f"{image.repository}:{image.tag}@{served[variable]}"
    # The token challenge was followed, and the index (multi-platform) digest asked for.
    manifest_asks = [s for s in registry.seen if "/manifests/" in s[1]]
    assert any(s[0] == "GET" and s[1] == "/token" for s in registry.seen)
    assert all(INDEX_TYPE in accept for _, _, accept in manifest_asks)
    check = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ruff"), "format", "--check", "--diff", str(copy)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # A second run finds nothing to change.
    before = copy.read_text()
    assert main(["--versions", str(copy), *_registries(registry.url)]) == 0
    assert copy.read_text() == before


def test_an_unreachable_registry_leaves_its_images_pinned_by_tag(
    copy: Path, registry: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    served = _serve_all(registry)
    closed_url = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    args = [*_registries(registry.url), "--registry", f"docker.io={closed_url}", "--timeout", "5"]
    assert main(["--versions", str(copy), *args]) == 0
    pinned = _load(copy)
    out = capsys.readouterr().out
    for image in versions.IMAGES:
        variable = next(n for n, v in vars(versions).items() if v is image)
        written = getattr(pinned, variable)
        if image.repository.startswith("docker.io/"):
            assert written.digest == image.digest  # unchanged: None here
            assert f"offline: {image.repository}:{image.tag} stays pinned by tag only" in out
        else:
            assert written.digest == served[variable]


@pytest.mark.parametrize("problem", ["unknown tag", "digest not the body's"])
def test_a_registry_error_writes_nothing(
    copy: Path, registry: FakeRegistry, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pins = find_pins(copy.read_text())
    for pin in pins:
        name = split_reference(pin.repository)[1]
        if pin.variable == "REDIS":
            if problem == "digest not the body's":
                registry.add(name, pin.tag, lying=True)
            continue
        registry.add(name, pin.tag)
    before = copy.read_text()
    assert main(["--versions", str(copy), *_registries(registry.url)]) == 1
    assert copy.read_text() == before
    assert "docker.io/library/redis:8.10.1-alpine" in capsys.readouterr().err
