"""Documented values keys of the pinned Helm charts, and a check for misspelled keys.

Helm ignores a values key the chart does not read, so a typo (``replicas`` for
``replicaCount``, ``podDisruptionBudget.minAvaliable``) silently drops a setting. Each
``<chart>.txt`` beside this module lists the dotted key paths of that chart's values
at the version pinned in ``components.versions``; ``undocumented_keys`` reports every
key of a values dict we generate that the list does not contain.

File format (derived data, one fact per line):

* line 1: ``# <chart> <version> from <repo>@<ref>:<path of values.yaml>``;
* further ``#`` lines: other sources (values.schema.json, subchart values files) and
  reviewed corrections of the mechanical derivation;
* every other line: a dotted path (``webhook.replicaCount``); a dot inside a key is
  escaped (``grafana.grafana\\.ini``, ``prometheus.args.storage\\.tsdb\\.path``). A path ending in ``.*``
  marks a free-form map or list (``podAnnotations.*``, ``resources.*``): any key
  below it is allowed. ``P[].key`` would document a key of the objects of list ``P``;
  lists in the pinned charts are all free-form.

The paths come from flattening the chart's values.yaml at the pinned tag (every key,
maps recursed; empty maps, lists and Kubernetes pass-through fields such as
``nodeSelector`` or ``resources`` free-form), plus the properties of its
values.schema.json where the chart ships one, plus keys that values.yaml documents
only as commented-out examples (``# minAvailable: 1``) where it has no schema.
To bump a chart, regenerate its file from the new tag the same way; the first line
must name the version pinned in ``components.versions``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

FREE_FORM_SUFFIX = ".*"
"""Suffix of a path whose map or list takes any keys below it."""

LIST_ITEM_SUFFIX = "[]"
"""Appended to a list's path segment when walking into the objects of that list."""

_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")


def escape_key(key: str) -> str:
    """A values key as one path segment: its dots escaped with a backslash."""
    return key.replace(".", "\\.")


def split_path(path: str) -> list[str]:
    """The segments of a dotted path, splitting only on unescaped dots (escapes kept)."""
    return _UNESCAPED_DOT.split(path)


_HEADER = re.compile(
    r"^# (?P<chart>[a-z0-9][a-z0-9-]*) (?P<version>\S+) from "
    r"(?P<repo>[^@\s]+)@(?P<ref>[^:\s]+):(?P<path>\S+)$"
)
_CHART_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True, kw_only=True, slots=True)
class ChartKeys:
    """The parsed keys file of one chart: where it came from and its documented paths."""

    chart: str
    version: str
    source: str
    paths: frozenset[str]


def available_charts() -> frozenset[str]:
    """Names of the charts that have a keys file."""
    return frozenset(
        entry.name.removesuffix(".txt")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".txt")
    )


def parse_keys_file(text: str, *, chart: str) -> ChartKeys:
    """Parse the text of a keys file; raise ValueError if it is malformed."""
    lines = text.splitlines()
    match = _HEADER.match(lines[0]) if lines else None
    if match is None:
        raise ValueError(
            f"keys file of {chart}: first line must be "
            "'# <chart> <version> from <repo>@<ref>:<path>'"
        )
    if match["chart"] != chart:
        raise ValueError(f"keys file of {chart}: header names chart {match['chart']!r}")
    paths = frozenset(
        line.strip() for line in lines[1:] if line.strip() and not line.startswith("#")
    )
    bad = sorted(p for p in paths if " " in p or p.startswith(".") or p.endswith("."))
    if bad:
        raise ValueError(f"keys file of {chart}: malformed paths {bad}")
    return ChartKeys(
        chart=chart,
        version=match["version"],
        source=f"{match['repo']}@{match['ref']}:{match['path']}",
        paths=paths,
    )


@cache
def chart_keys(chart: str) -> ChartKeys:
    """The keys file of ``chart``; raise KeyError naming the known charts if it has none."""
    known = available_charts()
    if not _CHART_NAME.match(chart) or chart not in known:
        raise KeyError(f"no keys file for chart {chart!r}; known: {sorted(known)}")
    text = resources.files(__name__).joinpath(f"{chart}.txt").read_text(encoding="utf-8")
    return parse_keys_file(text, chart=chart)


def documented_paths(chart: str) -> frozenset[str]:
    """Every dotted values path the pinned version of ``chart`` documents."""
    return chart_keys(chart).paths


def undocumented_keys(chart: str, values: Mapping[str, object]) -> list[str]:
    """Dotted paths in ``values`` that the pinned version of ``chart`` does not document.

    See ``undocumented_paths`` for the rules; raises KeyError for a chart without a
    keys file.
    """
    return undocumented_paths(documented_paths(chart), values)


def undocumented_paths(documented: frozenset[str], values: Mapping[str, object]) -> list[str]:
    """Dotted paths in ``values`` missing from ``documented``, sorted.

    A path is reported once, at the first segment that is unknown; nothing below it is
    reported. Keys below a free-form path (``.*``) are not checked. The objects of a
    list are walked as ``<list path>[]`` (``P[].key``) unless the list is free-form;
    scalars inside lists have no keys to check.
    """
    return sorted(_walk(values, (), documented))


def _walk(node: Mapping[str, object], prefix: tuple[str, ...], known: frozenset[str]) -> list[str]:
    found: list[str] = []
    for raw_key, value in node.items():
        segments = (*prefix, escape_key(str(raw_key)))
        path = ".".join(segments)
        if path not in known:
            found.append(path)
            continue
        if path + FREE_FORM_SUFFIX in known:
            continue
        found.extend(_walk_value(value, segments, known))
    return found


def _walk_value(value: object, segments: tuple[str, ...], known: frozenset[str]) -> list[str]:
    if isinstance(value, Mapping):
        return _walk(value, segments, known)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        item_segments = (*segments[:-1], segments[-1] + LIST_ITEM_SUFFIX)
        found: list[str] = []
        for item in value:
            if isinstance(item, Mapping):
                found.extend(_walk(item, item_segments, known))
        return found
    return []
