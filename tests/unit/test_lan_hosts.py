"""LAN GPU hosts: a selector-less Service and a manual EndpointSlice per host."""

from __future__ import annotations

from collections.abc import Callable

from components.inference.endpoints import model_api_bases
from tests.support import run_stack, stack_config, stack_values
from tests.unit.manifest_checks import validate_core
from tools.mock_engine import ProgramRun, RecordedResource

StackRun = Callable[[str], ProgramRun]
SLICE = "kubernetes:discovery.k8s.io/v1:EndpointSlice"


def _named(run: ProgramRun, type_token: str, name: str) -> RecordedResource:
    (found,) = [r for r in run.of_type(type_token) if r.inputs["metadata"]["name"] == name]
    return found


def test_each_lan_host_is_a_service_backed_by_a_manual_endpoint_slice(
    stack_run: StackRun,
) -> None:
    run = stack_run("prod")
    host = stack_config("prod").cluster.lan_gpu_hosts["workstation"]
    service = _named(run, "kubernetes:core/v1:Service", "lan-workstation")
    assert "selector" not in service.inputs["spec"]
    assert [p["port"] for p in service.inputs["spec"]["ports"]] == [s.port for s in host.services]
    endpoints = _named(run, SLICE, "lan-workstation-1")
    assert endpoints.inputs["metadata"]["labels"]["kubernetes.io/service-name"] == "lan-workstation"
    assert endpoints.inputs["metadata"]["namespace"] == "inference"
    (endpoint,) = endpoints.inputs["endpoints"]
    assert endpoint["addresses"] == [str(host.address)]
    assert endpoints.inputs["ports"] == [
        {"name": f"vllm-{s.port}", "port": s.port, "protocol": "TCP"} for s in host.services
    ]
    validate_core(service)
    validate_core(endpoints)


def test_the_gateway_reaches_lan_models_by_that_service() -> None:
    bases = model_api_bases(stack_config("prod"))
    assert bases["llama-3-1-8b"] == "http://lan-workstation.inference.svc.cluster.local:8000/v1"
    assert bases["Qwen3-4B"] == "http://lan-workstation.inference.svc.cluster.local:8001/v1"


def test_a_host_in_maintenance_is_not_ready_and_dev_has_none(stack_run: StackRun) -> None:
    assert stack_run("dev").of_type(SLICE) == []
    values = stack_values("prod")
    values["cluster"]["lan_gpu_hosts"]["workstation"]["maintenance"] = True
    endpoints = _named(run_stack(values, "prod"), SLICE, "lan-workstation-1")
    assert endpoints.inputs["endpoints"][0]["conditions"] == {"ready": False}
