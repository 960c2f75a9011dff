"""The stack's `helm_values` held to the pinned charts: every overlaid key must be read.

The config only knows release names; whether a key means anything is the chart's to say.
For each release a stack overlays, the render asks the chart itself, as
`tools.values_check` does for the program's own values: a key that changes nothing the
release renders (a typo, a key of another chart version), and values the chart's
`values.schema.json` refuses, are config errors naming `helm_values.<release>.<key>`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from components.config._base import problem_line
from components.helm import merged
from tools import charts, helm_template
from tools.releases import ReleaseRender
from tools.values_check import ReleaseInput, leaf_paths, unread_keys


def overlay_problems(
    overlays: Mapping[str, Mapping[str, Any]], releases: Sequence[ReleaseRender]
) -> list[str]:
    """One `config error:` line per overlaid key the chart ignores or refuses."""
    by_name = {release.release: release for release in releases}
    lines: list[str] = []
    for name, overlay in sorted(overlays.items()):
        release = by_name.get(name)
        if release is None:
            lines.append(
                problem_line(
                    ("helm_values", name),
                    f"this stack installs no release {name!r}; it installs {sorted(by_name)}",
                    name,
                )
            )
            continue
        # The program merged the overlay into the release already; merging again is a no-op
        # there and lets a release templated without it be checked the same way.
        values = merged(release.values, overlay)
        refused = helm_template.schema_error(charts.archive_of(release.chart), values)
        if refused is not None:
            lines.append(
                problem_line(
                    ("helm_values", name),
                    f"chart {release.chart.name} {release.chart.version} refuses the values: "
                    f"{refused}",
                    dict(overlay),
                )
            )
            continue
        wanted = [".".join(path) for path in leaf_paths(overlay)]
        checked = dataclasses.replace(ReleaseInput.of(release), values=values)
        for key in unread_keys(checked, wanted):
            lines.append(
                problem_line(
                    ("helm_values", name, *key.split(".")),
                    f"chart {release.chart.name} {release.chart.version} does not read this "
                    "key (it changes nothing the release renders)",
                    _leaf(overlay, key.split(".")),
                )
            )
    return lines


def _leaf(values: Mapping[str, Any], path: list[str]) -> Any:
    node: Any = values
    for key in path:
        node = node[key]
    return node
