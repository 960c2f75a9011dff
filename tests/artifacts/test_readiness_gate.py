"""The readiness gate of servers that scale to zero (`components/llm_gateway/readiness_gate.py`)
with httpx, the version the pinned proxy runs, against a fake vLLM on loopback: which
deployments a routing decision keeps while the server is gone, hung, behind the mesh's
failfast 503, and back. Periods are fractions of a second; the live tests run the gate in
the real proxy on the prod stack's rendered values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from components.llm_gateway.readiness_gate import READINESS_KEY, Gate, Readiness, probe
from tests.fakes.openai_server import OpenAiFake

POLL = 0.1
TIMEOUT = 0.3


@pytest.fixture
def server() -> Iterator[OpenAiFake]:
    with OpenAiFake("vllm-fake") as fake:
        fake.failfast_seconds = 1.0
        yield fake


def _gate(fake: OpenAiFake) -> Gate:
    return Gate(url=f"{fake.base_url}/health", poll_seconds=POLL, timeout_seconds=TIMEOUT)


def _deployments(gate: Gate) -> list[dict[str, Any]]:
    gated = {
        "url": gate.url,
        "poll_seconds": gate.poll_seconds,
        "timeout_seconds": gate.timeout_seconds,
    }
    return [
        {"model_info": {"id": "local-m", READINESS_KEY: gated}},
        {"model_info": {"id": "fallback-m-cloud"}},
    ]


def _ids(deployments: list[dict[str, Any]]) -> list[str]:
    return [d["model_info"]["id"] for d in deployments]


async def _until(check: Callable[[], bool], limit: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit, f"not within {limit} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _run(body: Callable[[Readiness], Awaitable[None]]) -> None:
    async def main() -> None:
        readiness = Readiness()
        try:
            await body(readiness)
        finally:
            await readiness.close()

    asyncio.run(main())


def test_the_gate_is_read_from_model_info_and_absent_elsewhere() -> None:
    gate = Gate(url="http://x/health", poll_seconds=1.0, timeout_seconds=0.5)
    gated, plain = _deployments(gate)
    assert Gate.from_model_info(gated["model_info"]) == gate
    assert Gate.from_model_info(plain["model_info"]) is None
    assert Gate.from_model_info(None) is None


def test_a_gated_server_counts_only_once_its_probe_passed(server: OpenAiFake) -> None:
    gate = _gate(server)

    async def body(readiness: Readiness) -> None:
        deployments = _deployments(gate)
        # Nothing known yet: the fallback alone, and the probe starts.
        assert _ids(readiness.keep_ready(deployments)) == ["fallback-m-cloud"]
        await _until(lambda: readiness.is_ready("local-m"), POLL + TIMEOUT + 0.5)
        assert _ids(readiness.keep_ready(deployments)) == ["local-m", "fallback-m-cloud"]

    _run(body)


@pytest.mark.parametrize("gone", ["stopped", "no-endpoints", "hang"])
def test_a_server_that_goes_is_dropped_within_one_probe_and_comes_back(
    server: OpenAiFake, gone: str
) -> None:
    """Refused connections (no endpoints, plain), the mesh's failfast 503 (it answers only
    after `failfast_seconds`, longer than the probe waits) and a server that accepts and
    never answers: each is out within a poll and a probe timeout, and in again as soon as
    it answers."""
    gate = _gate(server)

    async def body(readiness: Readiness) -> None:
        deployments = _deployments(gate)
        readiness.keep_ready(deployments)
        await _until(lambda: readiness.is_ready("local-m"), POLL + TIMEOUT + 0.5)
        if gone == "stopped":
            server.stop()
        else:
            server.mode = gone
        took = await _until(lambda: not readiness.is_ready("local-m"), POLL + TIMEOUT + 0.5)
        assert took <= POLL + TIMEOUT + 0.2
        assert _ids(readiness.keep_ready(deployments)) == ["fallback-m-cloud"]
        server.mode = "normal"
        server.release.set()
        server.start()
        await _until(lambda: readiness.is_ready("local-m"), POLL + TIMEOUT + 0.5)
        assert _ids(readiness.keep_ready(deployments)) == ["local-m", "fallback-m-cloud"]

    _run(body)


def test_one_probe_task_per_deployment_however_many_decisions(server: OpenAiFake) -> None:
    gate = _gate(server)

    async def body(readiness: Readiness) -> None:
        for _ in range(50):
            readiness.keep_ready(_deployments(gate))
        await asyncio.sleep(POLL * 3)
        probes = [t for t in asyncio.all_tasks() if t.get_name().startswith("readiness-")]
        assert len(probes) == 1

    _run(body)


def test_a_probe_is_ready_only_on_200(server: OpenAiFake) -> None:
    import httpx

    async def body() -> None:
        gate = _gate(server)
        async with httpx.AsyncClient() as client:
            assert await probe(client, gate)
            server.mode = "no-endpoints"
            server.failfast_seconds = 0.0  # the 503 itself, at once
            assert not await probe(client, gate)
            missing = Gate(
                url=f"{server.base_url}/nothing", poll_seconds=POLL, timeout_seconds=TIMEOUT
            )
            server.mode = "normal"
            assert not await probe(client, missing)

    asyncio.run(body())
