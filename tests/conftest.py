"""Shared fixtures: program runs of each stack, cached per session (runs are pure)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import committed_stack_run
from tools import charts
from tools.mock_engine import ProgramRun


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
