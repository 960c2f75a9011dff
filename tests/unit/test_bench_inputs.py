"""The benchmark scripts' generated inputs are valid stacks (a bad one crashes `make bench`)."""

from __future__ import annotations

import pytest

from bench.render import CATALOG_SIZES, GPUS_PER_NODE, catalog_values
from components.config import parse_platform_config
from components.inference.model_server import class_replicas, cluster_models
from tests.support import stack_values


@pytest.mark.parametrize("size", CATALOG_SIZES)
def test_every_catalog_size_is_a_valid_prod_stack_running_each_copy(size: int) -> None:
    document = {"config": {f"llm-platform:{k}": v for k, v in stack_values("prod").items()}}
    config = parse_platform_config(
        {k.split(":", 1)[1]: v for k, v in catalog_values(document, size)["config"].items()}
    )
    assert len(cluster_models(config)) == size
    (gpu_class,) = {m.gpu_class for m in config.inference.models.values()}
    assert gpu_class is not None
    running = class_replicas(config, gpu_class)
    assert all(running[name] == config.inference.models[name].replicas for name in running)
    added = [n for n in config.cluster.nodes if n.startswith("bench-gpu-")]
    assert len(added) * GPUS_PER_NODE >= size
