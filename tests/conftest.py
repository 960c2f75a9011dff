"""Shared fixtures: program runs of each stack, cached per session (runs are pure)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.support import committed_stack_run
from tools import charts
from tools.mock_engine import ProgramRun

# Property tests check properties, not speed (speed is for the benchmarks), so no example has a
# deadline. The profile builds on the one hypothesis loaded, which under CI is its "ci" profile
# (a fixed seed, no example database).
settings.register_profile("no-deadline", parent=settings.default, deadline=None)
settings.load_profile("no-deadline")


def pytest_configure(config: pytest.Config) -> None:
    """The pinned chart archives are a dependency of the suite, like its packages: fill
    the cache from the mirror or the chart repositories, or stop with one line saying
    how to get them."""
    if not charts.missing():
        return
    try:
        charts.obtain_all(mirror=charts.mirror_dir())
    except charts.ChartUnavailableError as error:
        pytest.exit(f"charts: {error}", returncode=3)


@pytest.fixture(scope="session")
def stack_run() -> Callable[[str], ProgramRun]:
    """`stack_run("dev")`: the recorded program run of a committed stack file."""
    return committed_stack_run


@pytest.fixture(scope="session")
def rendered_stack(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`rendered_stack("prod")`: the directory `make render` writes for a committed stack,
    rendered once per session by the real render command."""
    from tools.render import main as render_main

    renders: dict[str, Path] = {}

    def get(stack: str) -> Path:
        if stack not in renders:
            target = tmp_path_factory.mktemp(f"render-{stack}")
            assert render_main(["--stack", stack, "--out", str(target)]) == 0
            renders[stack] = target
        return renders[stack]

    return get


@pytest.fixture(scope="session")
def render_objects(rendered_stack: Callable[[str], Path]) -> Callable[[str], list[dict[str, Any]]]:
    """`render_objects("prod")`: every own and chart object of a stack's render, as written."""
    from tools.render_tree import load_objects

    loaded: dict[str, list[dict[str, Any]]] = {}

    def get(stack: str) -> list[dict[str, Any]]:
        if stack not in loaded:
            loaded[stack] = load_objects(rendered_stack(stack))
        return loaded[stack]

    return get
