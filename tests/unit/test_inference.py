"""The inference area under the recording mocks: one vLLM server per in-cluster model.

The component runs on its own (a small program building only `Inference` with an explicit
provider), so these tests do not depend on the other areas being wired.
"""

from __future__ import annotations

import argparse
from functools import cache
from typing import Any

import pytest

from components.config import ConfigError, PlatformConfig, parse_platform_config
from components.inference.fit import GIB, estimate
from components.inference.model_server import (
    GPU_CLASS_LABEL,
    Inference,
    InferenceArgs,
    cluster_models,
    server_plan,
    startup_seconds,
)
from components.inference.scaling import DEMAND_WINDOW_SECONDS
from components.inference.vllm_args import vllm_args
from components.observability import metrics
from tests.support import stack_config, stack_values, vector_selectors
from tests.unit.manifest_checks import (
    manifest,
    validate_against_crd,
    validate_core,
    validate_custom_resource,
)
from tools.mock_engine import SECRET, ProgramRun, RecordedResource, run_program

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
TOKEN = "hf_TEST-SECRET-not-in-the-render"
PROMETHEUS = "http://prometheus.observability.svc.cluster.local:9090"


def _run(config: PlatformConfig, stack: str = "dev") -> ProgramRun:
    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("kubeconfig"))
        inference = Inference(
            "inference",
            InferenceArgs(
                config=config,
                provider=provider,
                huggingface_token=pulumi.Output.secret(TOKEN),
                prometheus_url=PROMETHEUS,
            ),
        )
        return {"inference": inference}

    return run_program(stack=stack, config={}, secret_keys=[], program=program)


@cache
def _stack_run(stack: str) -> ProgramRun:
    return _run(stack_config(stack), stack)


def _values_run(values: dict[str, Any]) -> ProgramRun:
    return _run(parse_platform_config(values), values["environment"])


def _servers(run: ProgramRun) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(DEPLOYMENT)}


def _arg(container: dict[str, Any], flag: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith(f"--{flag}=")]
    return value


def _with_gated_cluster_model(values: dict[str, Any]) -> dict[str, Any]:
    values["inference"]["models"]["qwen3-4b"]["gated"] = True
    return values


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_server_per_cluster_model_and_none_for_lan_models(stack: str) -> None:
    config = stack_config(stack)
    servers = _servers(_stack_run(stack))
    assert set(servers) == {f"vllm-{n}" for n in cluster_models(config)}
    lan = [n for n, m in config.inference.models.items() if m.placement == "lan"]
    assert all(f"vllm-{n}" not in servers for n in lan)
    if stack == "prod":
        assert lan  # the LAN host's model exists in config, yet has no pods


def test_dev_serves_one_small_model_prod_several_across_gpu_classes() -> None:
    assert len(_servers(_stack_run("dev"))) == 1
    prod = _servers(_stack_run("prod"))
    classes = {
        r.inputs["spec"]["template"]["spec"]["nodeSelector"][GPU_CLASS_LABEL] for r in prod.values()
    }
    assert len(prod) >= 2 and len(classes) >= 2


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deployment_spec_follows_config_and_fit(stack: str) -> None:
    config = stack_config(stack)
    servers = _servers(_stack_run(stack))
    assert servers
    for name, server in servers.items():
        model_name = name.removeprefix("vllm-")
        model = config.inference.models[model_name]
        fit = estimate(model, config.cluster.gpu_classes[model.gpu_class or ""])
        spec = server.inputs["spec"]
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        # Arguments: the model, its revision and the estimate's figures.
        assert container["image"].startswith("docker.io/vllm/vllm-openai:v")
        assert container["args"][0] == model.hf_repo
        assert _arg(container, "served-model-name") == model_name
        assert _arg(container, "revision") == model.revision
        assert int(_arg(container, "max-model-len")) == fit.max_model_len
        assert float(_arg(container, "gpu-memory-utilization")) == fit.gpu_memory_utilization
        assert int(_arg(container, "tensor-parallel-size")) == model.gpu_count
        assert int(_arg(container, "max-num-seqs")) == model.max_concurrent_sequences
        assert _arg(container, "download-dir") == "/models"
        assert not any(a.startswith("--quantization") for a in container["args"])
        # Resources and scheduling.
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(model.gpu_count)
        assert pod["runtimeClassName"] == "nvidia"
        assert pod["nodeSelector"] == {GPU_CLASS_LABEL: model.gpu_class}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "tolerations"
        ]
        assert "affinity" not in pod  # no node in maintenance in the stack files
        # Volumes: shared memory in RAM, the weight cache on its claim.
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["dshm"]["emptyDir"] == {
            "medium": "Memory",
            "sizeLimit": f"{2 * model.gpu_count}Gi",
        }
        assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == f"{name}-cache"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {
            "model-cache": "/models",
            "dshm": "/dev/shm",
            "home": "/home/vllm",
            "tmp": "/tmp",
        }
        assert {volumes[name].get("emptyDir") is not None for name in ("home", "tmp")} == {True}
        env = {e["name"]: e for e in container["env"]}
        assert env["HF_HOME"]["value"] == "/models"
        assert ("HF_TOKEN_PATH" in env) == model.gated
        assert "HF_TOKEN" not in env
        # Non-root with a read-only root file system: every path the server writes is a
        # volume mount (the caches under the model cache, home and temp on emptyDirs).
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] >= 10000
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        writable = [
            env[n]["value"]
            for n in ("HOME", "XDG_CACHE_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "TMPDIR")
        ]
        for path in writable:
            assert any(path == m or path.startswith(m + "/") for m in mounts.values()), path
        # Probes: the startup probe outlasts a cold start, all on /health.
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == "/health"
        plan = server_plan(config, model_name)
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= plan.startup_seconds
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        annotations = spec["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "8000"
        assert ("linkerd.io/inject" in annotations) == (not model.meshed)
        labels = spec["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "model-server"


def test_single_gpu_servers_restart_in_place_and_never_surge_without_a_spare() -> None:
    for name, server in _servers(_stack_run("prod")).items():
        strategy = server.inputs["spec"]["strategy"]
        # Every prod GPU is in use, so no surge pod could schedule.
        assert strategy == {"type": "Recreate"}, name


def test_a_spare_gpu_on_the_only_node_allows_a_surge_with_no_unavailability() -> None:
    values = stack_values("prod")
    values["cluster"]["nodes"]["gpu-4090"]["gpu"]["count"] = 2
    config = parse_platform_config(values)
    assert server_plan(config, "qwen3-8b").rolling is True
    strategy = _servers(_run(config, "prod"))["vllm-qwen3-8b"].inputs["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def test_node_local_caches_never_surge_across_nodes() -> None:
    values = stack_values("prod")
    values["cluster"]["nodes"]["gpu-4090b"] = {
        "address": "192.168.10.33",
        "gpu": {"gpu_class": "rtx-4090", "count": 1},
    }
    # A spare 4090 exists, but on another node than the ReadWriteOnce cache (packing puts
    # the running pod on the first node by name).
    assert server_plan(parse_platform_config(values), "qwen3-8b").rolling is False
    values["inference"]["cache_access_mode"] = "ReadWriteMany"
    assert server_plan(parse_platform_config(values), "qwen3-8b").rolling is True


def test_cold_start_timeouts_grow_with_the_weights() -> None:
    config = stack_config("prod")
    plans = {n: server_plan(config, n) for n in cluster_models(config)}
    servers = _servers(_stack_run("prod"))
    for name, plan in plans.items():
        timeouts = servers[f"vllm-{name}"].custom_timeouts
        assert timeouts["create"] == timeouts["update"] == f"{plan.startup_seconds + 300}s"
        # Beyond the provider's 10-minute default for anything over a few GB.
        assert plan.startup_seconds + 300 > 600
    small, large = sorted(plans.values(), key=lambda p: p.fit.weights_bytes)[:: len(plans) - 1]
    assert startup_seconds(small.fit) < startup_seconds(large.fit)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_services_and_caches(stack: str) -> None:
    run = _stack_run(stack)
    config = stack_config(stack)
    services = {r.inputs["metadata"]["name"]: r for r in run.of_type("kubernetes:core/v1:Service")}
    claims = {
        r.inputs["metadata"]["name"]: r
        for r in run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    }
    for name in cluster_models(config):
        service = services[f"vllm-{name}"]
        assert service.inputs["metadata"]["namespace"] == "inference"
        assert service.inputs["spec"]["ports"][0]["port"] == 8000
        assert service.inputs["metadata"]["labels"]["app.kubernetes.io/component"] == (
            "model-server"
        )
        claim = claims[f"vllm-{name}-cache"]
        plan = server_plan(config, name)
        size = claim.inputs["spec"]["resources"]["requests"]["storage"]
        assert size == f"{plan.cache_gib}Gi"
        # weights x 1.3, rounded up to whole GiB
        assert (
            plan.fit.weights_bytes * 1.3
            <= plan.cache_gib * GIB
            < (plan.fit.weights_bytes * 1.3 + GIB)
        )
        assert claim.inputs["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert "storageClassName" not in claim.inputs["spec"]  # the cluster default
    assert not run.of_type("kubernetes:policy/v1:PodDisruptionBudget")  # one replica each


def test_dev_and_prod_differ_in_cache_protection_only_where_intended() -> None:
    for stack, protected in (("dev", False), ("prod", True)):
        claims = _stack_run(stack).of_type("kubernetes:core/v1:PersistentVolumeClaim")
        assert claims and {c.protect for c in claims} == {protected}
        deployments = _stack_run(stack).of_type(DEPLOYMENT)
        assert {d.protect for d in deployments} == {False}


def test_every_object_validates_and_uses_the_explicit_provider() -> None:
    values = _with_gated_cluster_model(stack_values("dev"))
    values["inference"]["models"]["qwen3-4b"]["replicas"] = 2
    values["inference"]["cache_access_mode"] = "ReadWriteMany"
    values["inference"]["cache_storage_class"] = "nfs-client"
    values["cluster"]["nodes"]["rack-1"]["gpu"]["count"] = 2
    values["namespaces"]["inference"]["quota"]["gpus"] = 2
    runs = [_stack_run("dev"), _stack_run("prod"), _values_run(values)]
    kinds: set[str] = set()
    for run in runs:
        (provider,) = run.of_type("pulumi:providers:kubernetes")
        objects = [r for r in run.resources if r.type.startswith("kubernetes:")]
        assert objects
        for resource in objects:
            assert resource.provider == provider.urn
            assert resource.parent is not None and "Inference" in resource.parent
            if resource.type == SCALED_OBJECT:
                validate_custom_resource(resource)
            else:
                validate_core(resource)
            kinds.add(resource.type)
    assert kinds == {
        DEPLOYMENT,
        SCALED_OBJECT,
        "kubernetes:core/v1:Service",
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:core/v1:Secret",
        "kubernetes:policy/v1:PodDisruptionBudget",
    }


def test_gated_models_read_the_token_from_a_mounted_secret_file_never_in_clear() -> None:
    run = _values_run(_with_gated_cluster_model(stack_values("dev")))
    (secret,) = run.of_type("kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == SECRET
    (server,) = run.of_type(DEPLOYMENT)
    (container,) = server.inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "HF_TOKEN" not in env  # a file, not an environment variable
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["hf-token"]["readOnly"] is True
    token_path = f"{mounts['hf-token']['mountPath']}/token"
    assert env["HF_TOKEN_PATH"]["value"] == token_path
    volumes = {v["name"]: v for v in server.inputs["spec"]["template"]["spec"]["volumes"]}
    source = volumes["hf-token"]["secret"]
    assert source["secretName"] == secret.inputs["metadata"]["name"]
    assert source["items"] == [{"key": "token", "path": "token"}]
    assert secret.urn in server.depends_on
    dumped = repr([r.inputs for r in run.resources])
    assert TOKEN not in dumped
    # Without a gated in-cluster model there is no Secret (prod's gated model is on the LAN).
    assert not _stack_run("prod").of_type("kubernetes:core/v1:Secret")


def test_two_replicas_get_a_disruption_budget() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["replicas"] = 2
    values["cluster"]["nodes"]["rack-1"]["gpu"]["count"] = 2
    run = _values_run(values)
    (pdb,) = run.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    (server,) = run.of_type(DEPLOYMENT)
    assert pdb.inputs["spec"]["maxUnavailable"] == 1
    assert pdb.inputs["spec"]["selector"] == server.inputs["spec"]["selector"]
    assert server.inputs["spec"]["replicas"] == 2


def test_unmeshed_models_opt_out_of_the_proxy() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["qwen3-4b"]["meshed"] = False
    (server,) = _values_run(values).of_type(DEPLOYMENT)
    annotations = server.inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["linkerd.io/inject"] == "disabled"


def test_class_maintenance_scales_to_zero_and_back() -> None:
    values = stack_values("prod")
    values["cluster"]["gpu_classes"]["rtx-4090"]["maintenance"] = True
    servers = _servers(_values_run(values))
    assert servers["vllm-qwen3-8b"].inputs["spec"]["replicas"] == 0
    assert "replicas" not in servers["vllm-qwen3-14b"].inputs["spec"]  # KEDA's to set
    values["cluster"]["gpu_classes"]["rtx-4090"]["maintenance"] = False
    restored = _servers(_values_run(values))
    assert restored["vllm-qwen3-8b"].inputs["spec"]["replicas"] == 1


def test_node_maintenance_scales_to_zero_when_it_is_the_only_node() -> None:
    values = stack_values("dev")
    values["cluster"]["nodes"]["rack-1"]["maintenance"] = True
    (server,) = _values_run(values).of_type(DEPLOYMENT)
    assert server.inputs["spec"]["replicas"] == 0


def test_one_node_in_maintenance_keeps_pods_off_it_and_drops_what_no_longer_fits() -> None:
    values = stack_values("prod")
    values["inference"]["cache_access_mode"] = "ReadWriteMany"
    values["inference"]["models"]["qwen3-8b"]["replicas"] = 2
    values["cluster"]["nodes"]["gpu-4090b"] = {
        "address": "192.168.10.33",
        "gpu": {"gpu_class": "rtx-4090", "count": 1},
        "maintenance": True,
    }
    server = _servers(_values_run(values))["vllm-qwen3-8b"]
    pod = server.inputs["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["gpu-4090b"]}
    ]
    # Two replicas wanted, one GPU left in service: one replica, not a Pending pod.
    assert server.inputs["spec"]["replicas"] == 1
    values["cluster"]["nodes"]["gpu-4090b"]["maintenance"] = False
    back = _servers(_values_run(values))["vllm-qwen3-8b"]
    assert back.inputs["spec"]["replicas"] == 2
    assert "affinity" not in back.inputs["spec"]["template"]["spec"]


def test_the_arguments_parse_with_vllms_own_parser() -> None:
    try:
        from vllm.entrypoints.openai.cli_args import (  # type: ignore[import-not-found]
            make_arg_parser,
        )
        from vllm.utils.argparse_utils import (  # type: ignore[import-not-found]
            FlexibleArgumentParser,
        )
    except ImportError:
        pytest.skip("vLLM is not installed here (it needs a CUDA build); not a test dependency")
    for stack in ("dev", "prod"):
        config = stack_config(stack)
        for name in cluster_models(config):
            model = config.inference.models[name]
            fit = estimate(model, config.cluster.gpu_classes[model.gpu_class or ""])
            parser = make_arg_parser(FlexibleArgumentParser())
            parsed: argparse.Namespace = parser.parse_args(vllm_args(name, model, fit))
            assert parsed.model_tag == model.hf_repo
            assert parsed.max_model_len == fit.max_model_len
            assert parsed.gpu_memory_utilization == fit.gpu_memory_utilization
            assert parsed.tensor_parallel_size == model.gpu_count
            assert parsed.enable_prefix_caching is model.prefix_caching


def test_a_served_name_with_dots_and_case_keeps_its_kubernetes_objects_dns_safe() -> None:
    values = stack_values("dev")
    values["inference"]["models"]["Qwen3.4B"] = values["inference"]["models"].pop("qwen3-4b")
    values["inference"]["models"]["Qwen3.4B"]["image"] = "docker.io/vllm/vllm-openai:v0.32.1"
    run = _values_run(values)
    (server,) = run.of_type(DEPLOYMENT)
    assert server.inputs["metadata"]["name"] == "vllm-qwen3-4b"
    (container,) = server.inputs["spec"]["template"]["spec"]["containers"]
    assert _arg(container, "served-model-name") == "Qwen3.4B"
    assert container["image"] == "docker.io/vllm/vllm-openai:v0.32.1"
    labels = server.inputs["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "qwen3-4b"
    for resource in run.resources:
        if resource.type.startswith("kubernetes:"):
            validate_core(resource)


# --- demand-following servers (KEDA) ---------------------------------------------------------


def _scalers(run: ProgramRun) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(SCALED_OBJECT)}


def test_an_autoscaled_server_leaves_its_replicas_to_keda_and_is_not_awaited() -> None:
    config = stack_config("prod")
    run = _stack_run("prod")
    server = _servers(run)["vllm-qwen3-14b"]
    scaling = config.inference.models["qwen3-14b"].autoscaling
    assert scaling is not None and scaling.min == 0
    # Pulumi does not own the field, so an update never resets KEDA's choice; and a
    # server held at zero is not waited for (its cache claim never binds).
    assert "replicas" not in server.inputs["spec"]
    assert server.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    (scaler,) = _scalers(run).values()
    assert scaler.inputs["metadata"]["name"] == "vllm-qwen3-14b"
    assert "annotations" not in scaler.inputs["metadata"]  # not paused
    assert server.urn in scaler.depends_on
    spec = scaler.inputs["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "vllm-qwen3-14b",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, scaling.max)
    assert spec["cooldownPeriod"] == scaling.idle_minutes * 60 - DEMAND_WINDOW_SECONDS
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert set(triggers) == {"demand", "load", "kv-cache"}
    assert {t["metadata"]["serverAddress"] for t in triggers.values()} == {PROMETHEUS}
    sequences = config.inference.models["qwen3-14b"].max_concurrent_sequences
    assert triggers["load"]["metadata"]["threshold"] == str(sequences)
    assert triggers["demand"]["metadata"]["threshold"] == "1"
    # The fixed-replica server beside it is as it was.
    fixed = _servers(run)["vllm-qwen3-8b"]
    assert fixed.inputs["spec"]["replicas"] == 1 and "annotations" not in fixed.inputs["metadata"]


def test_the_scaled_object_matches_the_keda_crd_and_a_typo_does_not() -> None:
    import jsonschema

    (scaler,) = _scalers(_stack_run("prod")).values()
    validate_custom_resource(scaler)
    body = manifest(scaler)
    body["spec"]["cooldownPeriods"] = 60
    with pytest.raises(jsonschema.ValidationError, match="cooldownPeriods"):
        validate_against_crd(body, "typo")
    body = manifest(scaler)
    body["spec"]["minReplicaCount"] = -1
    with pytest.raises(jsonschema.ValidationError):
        validate_against_crd(body, "negative")


def test_trigger_queries_parse_and_read_only_catalogued_metrics() -> None:
    (scaler,) = _scalers(_stack_run("prod")).values()
    read: dict[str, set[str]] = {}
    for trigger in scaler.inputs["spec"]["triggers"]:
        names = {node.name for node in vector_selectors(trigger["metadata"]["query"])}
        assert names <= metrics.series_names(), names - metrics.series_names()
        read[trigger["name"]] = names
    assert read == {
        "demand": {"litellm_proxy_total_requests_metric_total"},
        "load": {"vllm:num_requests_running", "vllm:num_requests_waiting"},
        "kv-cache": {"vllm:kv_cache_usage_perc"},
    }


def test_maintenance_wins_over_autoscaling() -> None:
    values = stack_values("prod")
    values["cluster"]["gpu_classes"]["rtx-3090"]["maintenance"] = True
    run = _values_run(values)
    (scaler,) = _scalers(run).values()
    assert scaler.inputs["metadata"]["annotations"] == {"autoscaling.keda.sh/paused-replicas": "0"}
    assert "replicas" not in _servers(run)["vllm-qwen3-14b"].inputs["spec"]
    values["cluster"]["gpu_classes"]["rtx-3090"]["maintenance"] = False
    (resumed,) = _scalers(_values_run(values)).values()
    assert "annotations" not in resumed.inputs["metadata"]


def test_a_warm_minimum_is_awaited_and_spread_over_its_maximum() -> None:
    values = stack_values("prod")
    values["inference"]["cache_access_mode"] = "ReadWriteMany"
    values["cluster"]["nodes"]["gpu-4090b"] = {
        "address": "192.168.10.33",
        "gpu": {"gpu_class": "rtx-4090", "count": 1},
    }
    values["namespaces"]["inference"]["quota"]["gpus"] = 4
    values["inference"]["models"]["qwen3-8b"]["autoscaling"] = {"min": 1, "max": 2}
    run = _values_run(values)
    server = _servers(run)["vllm-qwen3-8b"]
    assert "annotations" not in server.inputs["metadata"]  # one replica always runs
    assert "replicas" not in server.inputs["spec"]
    spec = _scalers(run)["vllm-qwen3-8b"].inputs["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 2)
    pdbs = {
        r.inputs["metadata"]["name"]
        for r in run.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    }
    assert "vllm-qwen3-8b" in pdbs


def test_autoscaling_off_leaves_the_server_as_it_was() -> None:
    with_scaling = _stack_run("prod")
    values = stack_values("prod")
    values["inference"]["models"]["qwen3-14b"].pop("autoscaling")
    values["vpa"] = {"enabled": False}
    without = _values_run(values)
    assert _scalers(without) == {}
    plain = _servers(without)["vllm-qwen3-14b"].inputs
    assert plain["spec"]["replicas"] == 1 and "annotations" not in plain["metadata"]
    scaled = _servers(with_scaling)["vllm-qwen3-14b"].inputs
    rest = {k: v for k, v in plain["spec"].items() if k != "replicas"}
    assert scaled["spec"] == rest
    assert {k: v for k, v in scaled["metadata"].items() if k != "annotations"} == plain["metadata"]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            lambda m: m.update(placement="lan", lan_host="workstation", lan_port=8000),
            "inference.models.qwen3-14b.autoscaling",
            "only servers on cluster GPUs scale",
        ),
        (
            lambda m: m.update(replicas=2),
            "inference.models.qwen3-14b.replicas",
            "exclude each other",
        ),
        (
            lambda m: m.pop("cloud_fallback"),
            "inference.models.qwen3-14b.autoscaling.min",
            "a cloud_fallback must answer",
        ),
        (
            lambda m: m["autoscaling"].update(max=2),
            "inference.models.qwen3-14b.autoscaling.max",
            "hold at most 1 replicas",
        ),
        (
            lambda m: m["autoscaling"].update(idle_minutes=1),
            "inference.models.qwen3-14b.autoscaling.idle_minutes",
            "greater than or equal to 5",
        ),
        (
            lambda m: m["autoscaling"].update(min=2),
            "inference.models.qwen3-14b.autoscaling.min",
            "0 or 1",
        ),
    ],
)
def test_bad_autoscaling_is_a_config_error_naming_the_field(
    change: Any, path: str, message: str
) -> None:
    values = stack_values("prod")
    change(values["inference"]["models"]["qwen3-14b"])
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    assert any(
        line.startswith(f"config error: {path}:") and message in line for line in raised.value.lines
    ), raised.value.lines


def test_autoscaling_needs_the_metrics_prometheus_collects() -> None:
    values = stack_values("prod")
    values["observability"]["enabled"] = False
    with pytest.raises(ConfigError) as raised:
        parse_platform_config(values)
    assert (
        "config error: inference.models.qwen3-14b.autoscaling: scales on metrics Prometheus "
        "collects: needs observability.enabled" in "\n".join(raised.value.lines)
    )
