"""`tools.smoke` against the loopback edge: the edge checks and the hop it names.

The streaming checks (first token, bunched chunks behind a buffering proxy, a model not
answering) need the fake OpenAI-compatible server and LiteLLM in the chain; see
tests/e2e/harness.py.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.edge.nginx_conf import ClientLimit
from tests.artifacts.edge.nginx_harness import free_port
from tests.e2e.harness import EdgeChain, fake_upstream_chain
from tests.fakes.upstream import FakeUpstream
from tools import smoke

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-SmokeSmokeSmokeSmoke0123456789ab"


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[EdgeChain, FakeUpstream, Path]]:
    clients = (ClientLimit(name="smoke", requests_per_second=50, burst=50),)
    with fake_upstream_chain(tmp_path, clients, {"smoke": KEY}) as (chain, upstream):
        ca = tmp_path / "ca.pem"
        ca.write_bytes(chain.fixture.pki.ca_pem)
        yield chain, upstream, ca


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = smoke.main(list(args))
    return code, out.getvalue()


def test_edge_checks_pass_and_the_key_never_appears(
    edge: tuple[EdgeChain, FakeUpstream, Path],
) -> None:
    chain, _, ca = edge
    url = f"https://127.0.0.1:{chain.fixture.https_port}"
    code, out = _run("--endpoint", url, "--key", KEY, "--ca-file", str(ca), "--json")
    assert "PASS edge health" in out
    assert "PASS wrong key refused: 401 from the edge" in out
    # The fake upstream is no model server: the model checks fail, naming the gateway.
    assert code == smoke.EXIT_FAILED
    assert "FAIL [gateway] models: no model to try" in out
    assert KEY not in out


def test_a_wrong_key_that_gets_past_the_edge_is_named(
    edge: tuple[EdgeChain, FakeUpstream, Path],
) -> None:
    _, upstream, ca = edge
    # Straight to the upstream, bypassing the edge: nothing refuses the wrong key.
    url = f"https://127.0.0.1:{upstream.port}"
    code, out = _run("--endpoint", url, "--key", KEY, "--ca-file", str(ca), "--models", "m")
    assert code == smoke.EXIT_FAILED
    assert "FAIL [edge] edge health" in out
    assert "FAIL [edge] wrong key refused: expected 401 from the edge, got 200" in out


def test_an_unreachable_edge_exits_3() -> None:
    code, out = _run("--endpoint", f"https://127.0.0.1:{free_port()}", "--key", KEY)
    assert code == smoke.EXIT_UNREACHABLE
    assert "FAIL [edge] edge reachable" in out


def test_bursts_count_groups_of_events() -> None:
    assert smoke.bursts([0.0, 0.0005, 0.001, 0.5, 0.5001, 1.0], 0.002) == 3
    assert smoke.bursts([i * 0.02 for i in range(10)], 0.002) == 10
