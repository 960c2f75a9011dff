"""Shared fixtures: program runs of each stack, cached per session (runs are pure)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import STACKS, run_stack, stack_values
from tools.mock_engine import ProgramRun


@pytest.fixture(scope="session")
def stack_run() -> Callable[[str], ProgramRun]:
    """`stack_run("dev")`: the recorded program run of a committed stack file."""
    cache: dict[str, ProgramRun] = {}

    def get(stack: str) -> ProgramRun:
        assert stack in STACKS
        if stack not in cache:
            cache[stack] = run_stack(stack_values(stack), stack)
        return cache[stack]

    return get
