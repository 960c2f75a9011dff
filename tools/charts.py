"""Chart archives of the pinned Helm charts: the one place that gets them.

    python -m tools.charts           # fill .cache/charts/ (what `make charts` runs)
    python -m tools.charts --check   # only say whether every pinned archive is cached

Every chart pinned in `components.versions.HELM_CHARTS` is a dependency of the offline
render and of the tests, like a Python package: its archive
`.cache/charts/<chart>-<version>.tgz` (ignored by git) is obtained, in this order,

1. from the cache, when an archive verified earlier is there;
2. from a mirror folder of archives named `<chart>-<version>.tgz`: `CHART_MIRROR`, or
   `../shared/charts` beside the checkout when that exists. A mirror is local and is
   preferred when present, so a machine without a route to chart repositories never
   waits on one;
3. from the chart's repository (`helm pull` of the pinned version), where the network
   allows.

Whatever the source, the archive is loaded by the Helm engine and its Chart.yaml must
name the pinned chart and version, or it is refused. When no source gives a chart, one
line names the chart, the version and both sources tried (`ChartUnavailableError`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from components import versions
from components.versions import HelmChart
from tools import helm_template

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "charts"
DEFAULT_MIRROR = ROOT.parent / "shared" / "charts"
MIRROR_ENV = "CHART_MIRROR"


PINNED: tuple[HelmChart, ...] = versions.HELM_CHARTS
"""What `make charts` obtains: every pinned chart."""


class ChartUnavailableError(Exception):
    """No source gave a pinned chart archive; the message is one line saying how to fix it."""


@dataclass(frozen=True, slots=True)
class Obtained:
    """Where a chart archive is, and where it came from this time."""

    chart: HelmChart
    path: Path
    source: str


def archive_name(chart: HelmChart) -> str:
    """`<chart>-<version>.tgz`, as `helm pull` saves it."""
    return f"{chart.name}-{chart.version}.tgz"


def mirror_dir() -> Path | None:
    """The mirror folder in use: `CHART_MIRROR` when set, else `../shared/charts` if present."""
    named = os.environ.get(MIRROR_ENV)
    if named:
        return Path(named)
    return DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None


def verify_archive(chart: HelmChart, archive: Path) -> None:
    """Raise ChartUnavailableError unless `archive` is a chart whose Chart.yaml is the pin."""
    try:
        name, version = helm_template.chart_identity(archive)
    except helm_template.ChartLoadError as error:
        raise ChartUnavailableError(
            f"chart {chart.name} {chart.version}: {archive} is not a chart archive ({error})"
        ) from error
    if (name, version) != (chart.name, chart.version):
        raise ChartUnavailableError(
            f"chart {chart.name} {chart.version}: {archive} holds {name} {version}, not the pin"
        )


def _install(chart: HelmChart, candidate: Path, cache: Path) -> Path:
    """Verify `candidate` and move a copy into the cache atomically."""
    verify_archive(chart, candidate)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / archive_name(chart)
    with tempfile.NamedTemporaryFile(dir=cache, suffix=".part", delete=False) as part:
        staged = Path(part.name)
    try:
        shutil.copyfile(candidate, staged)
        staged.replace(target)
    finally:
        staged.unlink(missing_ok=True)
    return target


def cached(chart: HelmChart, cache: Path = CACHE) -> Path | None:
    """The cached archive of `chart`, or None when it is not cached."""
    path = cache / archive_name(chart)
    return path if path.is_file() else None


def obtain(chart: HelmChart, *, cache: Path = CACHE, mirror: Path | None = None) -> Obtained:
    """The archive of `chart` in the cache, fetched from the mirror or its repository."""
    hit = cached(chart, cache)
    if hit is not None:
        verify_archive(chart, hit)
        return Obtained(chart, hit, "cache")
    tried: list[str] = []
    if mirror is not None:
        candidate = mirror / archive_name(chart)
        if candidate.is_file():
            return Obtained(chart, _install(chart, candidate, cache), f"mirror {mirror}")
        tried.append(f"mirror {candidate} is absent")
    else:
        tried.append(f"no mirror ({MIRROR_ENV} unset and {DEFAULT_MIRROR} absent)")
    with tempfile.TemporaryDirectory(prefix="chart-pull-") as scratch:
        try:
            pulled = helm_template.pull(chart, Path(scratch))
        except helm_template.ChartPullError as error:
            tried.append(f"{chart.repo} unreachable ({_cause(str(error))})")
        else:
            return Obtained(chart, _install(chart, pulled, cache), f"repository {chart.repo}")
    raise ChartUnavailableError(
        f"chart {chart.name} {chart.version} cannot be had: {'; '.join(tried)}. "
        f"Run `make charts` where the network reaches the chart repository, or set "
        f"{MIRROR_ENV} to a folder of chart archives"
    )


def _cause(text: str) -> str:
    """The innermost cause of a Helm error (`... dial tcp: lookup x: no such host`)."""
    lines = text.strip().splitlines()
    return lines[0].rsplit(": ", 1)[-1][:120] if lines else "no detail"


def obtain_all(
    charts: Iterable[HelmChart] | None = None,
    *,
    cache: Path = CACHE,
    mirror: Path | None = None,
) -> list[Obtained]:
    """Every pinned chart's archive; raises ChartUnavailableError on the first one missing."""
    return [obtain(chart, cache=cache, mirror=mirror) for chart in charts or PINNED]


def archive_of(chart: HelmChart, cache: Path = CACHE) -> Path:
    """The cached archive of `chart`; ChartUnavailableError (saying `make charts`) when absent."""
    hit = cached(chart, cache)
    if hit is None:
        raise ChartUnavailableError(
            f"chart {chart.name} {chart.version} is not in {cache}: run `make charts` "
            f"(it pulls the pinned charts, or copies them from {MIRROR_ENV})"
        )
    return hit


def missing(cache: Path = CACHE) -> list[HelmChart]:
    """Pinned charts whose archive is not cached."""
    return [chart for chart in PINNED if cached(chart, cache) is None]


def main(argv: list[str] | None = None) -> int:
    """`make charts`: fill the cache; exit 1 with one line when a chart cannot be had."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the cache")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"cache folder (default {CACHE})")
    args = parser.parse_args(argv)
    cache: Path = args.cache
    if args.check:
        absent = missing(cache)
        for chart in absent:
            print(
                f"charts: {archive_name(chart)} is not cached: run `make charts`", file=sys.stderr
            )
        return 1 if absent else 0
    try:
        got = obtain_all(cache=cache, mirror=mirror_dir())
    except ChartUnavailableError as error:
        print(f"charts: {error}", file=sys.stderr)
        return 1
    fetched = [o for o in got if o.source != "cache"]
    for item in fetched:
        print(f"charts: {archive_name(item.chart)} from {item.source}")
    print(f"charts: {len(got)} pinned charts in {cache} ({len(fetched)} fetched now)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
