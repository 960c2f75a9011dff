"""Chart archives as pinned dependencies (tools/charts.py): cache, mirror, repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components import versions
from components.versions import HelmChart
from tests.support import ROOT
from tools import charts

TRAEFIK = versions.TRAEFIK
UNREACHABLE = "https://127.0.0.1:9/charts"
"""A repository on loopback where nothing listens: the pull fails at once, on this machine."""


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A mirror folder holding the pinned Traefik archive (from the suite's own cache)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    shutil.copyfile(charts.archive_of(TRAEFIK), folder / charts.archive_name(TRAEFIK))
    return folder


def test_a_mirror_fills_the_cache_then_the_cache_answers(tmp_path: Path, mirror: Path) -> None:
    cache = tmp_path / "cache"
    got = charts.obtain(TRAEFIK, cache=cache, mirror=mirror)
    assert got.source == f"mirror {mirror}"
    assert got.path == cache / "traefik-41.3.0.tgz" and got.path.is_file()
    (mirror / charts.archive_name(TRAEFIK)).unlink()
    again = charts.obtain(TRAEFIK, cache=cache, mirror=mirror)
    assert again.source == "cache" and again.path == got.path


def test_an_archive_that_is_not_the_pin_is_refused(tmp_path: Path, mirror: Path) -> None:
    # a mirror holding another chart under the pinned file name
    other = HelmChart(name="qdrant", repo=UNREACHABLE, version=TRAEFIK.version)
    (mirror / charts.archive_name(TRAEFIK)).rename(mirror / charts.archive_name(other))
    with pytest.raises(charts.ChartUnavailableError, match=r"holds traefik 41\.3\.0, not the pin"):
        charts.obtain(other, cache=tmp_path / "cache", mirror=mirror)
    assert not (tmp_path / "cache" / charts.archive_name(other)).exists()
    # and a file that is no chart at all
    junk = mirror / "junk-1.0.0.tgz"
    junk.write_bytes(b"not a chart")
    pin = HelmChart(name="junk", repo=UNREACHABLE, version="1.0.0")
    with pytest.raises(charts.ChartUnavailableError, match="is not a chart archive"):
        charts.obtain(pin, cache=tmp_path / "cache", mirror=mirror)


def test_a_bad_archive_in_the_cache_is_refused_too(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / charts.archive_name(TRAEFIK)).write_bytes(b"truncated download")
    with pytest.raises(charts.ChartUnavailableError, match="not a chart archive"):
        charts.obtain(TRAEFIK, cache=cache, mirror=None)


def test_no_source_is_one_line_naming_chart_version_and_both_sources(tmp_path: Path) -> None:
    pin = HelmChart(name="traefik", repo=UNREACHABLE, version="41.3.0")
    with pytest.raises(charts.ChartUnavailableError) as caught:
        charts.obtain(pin, cache=tmp_path / "cache", mirror=tmp_path / "empty")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("chart traefik 41.3.0 cannot be had:")
    assert f"mirror {tmp_path / 'empty' / 'traefik-41.3.0.tgz'} is absent" in message
    assert f"{UNREACHABLE} unreachable" in message
    assert "make charts" in message and "CHART_MIRROR" in message


def test_make_charts_without_any_source_prints_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the command's own code path, its pins pointed at a repository on loopback so that
    # the test reaches nothing beyond this machine
    pins = tuple(HelmChart(name=c.name, repo=UNREACHABLE, version=c.version) for c in charts.PINNED)
    monkeypatch.setattr(charts, "PINNED", pins)
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    monkeypatch.setenv("CHART_MIRROR", str(empty))
    assert charts.main(["--cache", str(tmp_path / "cache")]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    first = pins[0]
    assert lines[0].startswith(f"charts: chart {first.name} {first.version} cannot be had:")
    assert "Traceback" not in captured.err


def test_check_lists_what_the_cache_lacks(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.charts", "--check", "--cache", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == len(versions.HELM_CHARTS)


def test_the_mirror_is_named_by_chart_mirror_or_found_beside_the_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHART_MIRROR", str(tmp_path))
    assert charts.mirror_dir() == tmp_path
    monkeypatch.delenv("CHART_MIRROR")
    expected = charts.DEFAULT_MIRROR if charts.DEFAULT_MIRROR.is_dir() else None
    assert charts.mirror_dir() == expected
