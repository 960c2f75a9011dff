"""gixy-ng over the edge nginx.conf: no finding of medium or high severity.

gixy-ng runs from `.venv-gixy` (requirements-gixy.txt, hash-pinned; `make gixy-venv`). It
reads the stacks' rendered nginx.conf as deployed, and the same config with its included
key maps present (their entries are regular expressions, which gixy checks for ReDoS).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.edge.nginx_conf import ClientLimit
from tests.artifacts.edge.nginx_harness import EdgeFixture
from tests.fakes.upstream import TestPki
from tests.support import ROOT, STACKS

GIXY = ROOT / ".venv-gixy" / "bin" / "gixy"
SERIOUS = {"MEDIUM", "HIGH"}
# gixy is only read, never bound, so the ports are fixed: gixy-ng 0.2.59 takes any `listen`
# whose text contains "443" for a TLS server (plugins/weak_ssl_tls.py, plugins/hsts_header.py),
# so a random plain-HTTP port such as 44312 would be reported as TLS without ssl_protocols.
HTTP_PORT = 8080


def gixy(conf: Path) -> list[dict[str, Any]]:
    """gixy-ng's findings on `conf`, every severity."""
    if not GIXY.exists():
        pytest.skip(f"gixy-ng is not installed at {GIXY}: run `make gixy-venv`")
    done = subprocess.run(
        [str(GIXY), "--format", "json", str(conf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def _summary(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['severity']} {f['plugin']} line {f.get('line')}: {f['reason']}" for f in findings]


@pytest.mark.parametrize("stack", STACKS)
def test_the_rendered_edge_config_has_no_medium_or_high_finding(
    rendered_stack: Callable[[str], Path], stack: str
) -> None:
    findings = gixy(rendered_stack(stack) / "files" / "edge" / "nginx.conf")
    assert not [f for f in findings if f["severity"] in SERIOUS], _summary(findings)


def test_the_config_with_its_key_maps_has_no_medium_or_high_finding(tmp_path: Path) -> None:
    fixture = EdgeFixture(tmp_path, TestPki(), upstream_port=9443)
    settings = fixture.settings(
        (ClientLimit(name="alice", requests_per_second=5, burst=10),),
        https_port=8443,
        http_port=HTTP_PORT,
    )
    fixture.write(
        settings, {"alice": "sk-edge.Alice+Key/0123456789="}, {"alice": "sk-up-0123456789abcdef"}
    )
    findings = gixy(fixture.conf)
    assert not [f for f in findings if f["severity"] in SERIOUS], _summary(findings)


def test_gixy_reports_what_the_edge_config_once_had(tmp_path: Path) -> None:
    """Guards the test above: gixy really runs and reports a medium finding (the edge's own
    former `try_files` without `open_file_cache`, and no `worker_rlimit_nofile`)."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events { worker_connections 4096; }\n"
        "http { server { listen 127.0.0.1:8080; location / { root /srv; "
        "try_files $uri =404; } } }\n"
    )
    plugins = {f["plugin"] for f in gixy(conf) if f["severity"] in SERIOUS}
    assert {"try_files_is_evil_too", "worker_rlimit_nofile_vs_connections"} <= plugins
