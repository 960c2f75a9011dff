"""Benchmark (5): offline render cost.

- the in-process time of rendering prod (what `make render STACK=prod` does after the SDK
  is imported: project imports, config validation, the program under the mock engine,
  writing build files) vs. the bare import time of the Pulumi SDK modules the render loads;
- render time and resource count as the model catalog grows 1 -> 8 -> 32 -> 64 models;
- what templating every Helm release with the real Helm engine (`charts/`) adds: the
  render with the charts tree against the same render without it (the render before
  charts were templated), in the same interpreters.

Every measurement runs in a fresh interpreter (imports are cached per process).
Catalogs are copies of one prod model entry, each on a GPU of its own as it would be in a
real cluster: the stack gets ceil(N/8) added GPU nodes of 8 GPUs of the copies' class (so
the per-model figures include an eighth of a node), and the client whose model list named
a removed model is pointed at the first copy.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.stats import median, slope

ROOT = Path(__file__).resolve().parent.parent
CATALOG_SIZES = (1, 8, 32, 64)
SOURCE_MODEL = "qwen3-8b"
RENDER_TARGET_RATIO = 2.0
CHARTS_TARGET_RATIO = 2.0
LINEAR_TOLERANCE = 0.25  # of the render-time growth from the smallest to the largest catalog
LINEAR_NOISE_S = 0.02
GPUS_PER_NODE = 8  # the most a node may declare

_PROBE = """
import json, sys
from pathlib import Path
from tools.render import render
render("prod", Path(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps([m for m in sys.modules if m.split(".")[0].startswith("pulumi")]))  # load order
"""

_IMPORT = """
import json, sys, time
start = time.perf_counter()
for name in json.loads(sys.argv[1]):
    __import__(name)
print(time.perf_counter() - start)
"""

_RENDER = """
import json, sys, time
from pathlib import Path
for name in json.loads(sys.argv[1]):
    __import__(name)
start = time.perf_counter()
from tools.render import render
render("prod", Path(sys.argv[2]), Path(sys.argv[3]), charts_tree=sys.argv[4] == "charts")
print(time.perf_counter() - start)
"""

_CATALOG = """
import json, sys, time
from pathlib import Path
from tools.render import render
out = Path(sys.argv[2])
render("prod", Path(sys.argv[3]), out / "warm")  # pay imports and first-run costs once
results = []
for _ in range(int(sys.argv[4])):
    for size, path in json.loads(sys.argv[1]):
        start = time.perf_counter()
        run = render("prod", Path(path), out / str(size))
        results.append([size, time.perf_counter() - start, len(run.resources)])
print(json.dumps(results))
"""


def _interpreter(*argv: str) -> str:
    """Stdout of a fresh interpreter run with `argv`; RuntimeError when it fails."""
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"benchmark subprocess failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return done.stdout


def _python(code: str, *args: str) -> str:
    return _interpreter("-c", code, *args).strip().splitlines()[-1]


def catalog_values(document: dict[str, Any], size: int) -> dict[str, Any]:
    """The prod stack document with a catalog of `size` copies of one model entry."""
    doc = copy.deepcopy(document)
    config = doc["config"]
    models = config["llm-platform:inference"]["models"]
    entry = models[SOURCE_MODEL]
    names = [f"catalog-{index:03d}" for index in range(size)]
    config["llm-platform:inference"]["models"] = {name: copy.deepcopy(entry) for name in names}
    # The catalog replaces every model, so the LAN host's services would serve none.
    config["llm-platform:cluster"]["lan_gpu_hosts"] = {}
    gpu_class = entry["gpu_class"]
    nodes = config["llm-platform:cluster"]["nodes"]
    for index in range(math.ceil(size / GPUS_PER_NODE)):
        nodes[f"bench-gpu-{index:02d}"] = {
            "address": f"192.168.20.{index + 1}",
            "labels": {"node-role/ai": "true"},
            "gpu": {"gpu_class": gpu_class, "count": GPUS_PER_NODE},
        }
    for client in config["llm-platform:clients"].values():
        if "models" in client:
            kept = [m for m in client["models"] if m not in models]
            client["models"] = [names[0], *kept]
    return doc


def _wall(*args: str) -> float:
    """Wall time of one `python -m tools.render ...`, as `make render` runs it."""
    start = time.perf_counter()
    _interpreter("-m", "tools.render", *args)
    return time.perf_counter() - start


def render_cost(*, repeats: int = 3) -> dict[str, Any]:
    """Benchmark (5)."""
    prod = ROOT / "Pulumi.prod.yaml"
    document = yaml.safe_load(prod.read_text())
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        out = Path(tmp)
        modules = _python(_PROBE, str(prod), str(out / "probe"))
        imports = [float(_python(_IMPORT, modules)) for _ in range(repeats)]
        walls, walls_bare = [], []
        for i in range(repeats):
            walls.append(_wall("--stack", "prod", "--out", str(out / f"wall-{i}")))
            walls_bare.append(
                _wall("--stack", "prod", "--out", str(out / f"wall-bare-{i}"), "--no-charts")
            )
        renders, without_charts = [], []
        for i in range(repeats):  # interleaved, so load on the machine hits both alike
            renders.append(
                float(_python(_RENDER, modules, str(prod), str(out / f"prod-{i}"), "charts"))
            )
            without_charts.append(
                float(_python(_RENDER, modules, str(prod), str(out / f"bare-{i}"), "bare"))
            )
        catalogs = []
        for size in CATALOG_SIZES:
            path = out / f"Pulumi.catalog-{size}.yaml"
            path.write_text(yaml.safe_dump(catalog_values(document, size), sort_keys=False))
            catalogs.append([size, str(path)])
        raw = json.loads(
            _python(_CATALOG, json.dumps(catalogs), str(out / "catalog"), str(prod), str(repeats))
        )
    seconds = {size: median([s for n, s, _ in raw if n == size]) for size in CATALOG_SIZES}
    resources = {size: next(r for n, _, r in raw if n == size) for size in CATALOG_SIZES}
    per_model_s = slope(list(CATALOG_SIZES), [seconds[n] for n in CATALOG_SIZES])
    per_model_resources = (resources[CATALOG_SIZES[-1]] - resources[CATALOG_SIZES[0]]) / (
        CATALOG_SIZES[-1] - CATALOG_SIZES[0]
    )
    # Linear: the largest catalog costs what a line through the smaller ones predicts.
    small = CATALOG_SIZES[:-1]
    small_slope = slope(list(small), [seconds[n] for n in small])
    intercept = seconds[small[0]] - small_slope * small[0]
    largest = CATALOG_SIZES[-1]
    predicted = intercept + small_slope * largest
    deviation = seconds[largest] - predicted
    allowed = LINEAR_TOLERANCE * abs(seconds[largest] - seconds[small[0]]) + LINEAR_NOISE_S
    linear: bool | None = abs(deviation) <= allowed if per_model_resources > 0 else None
    import_s = median(imports)
    render_s = median(renders)
    bare_s = median(without_charts)
    ratio = bare_s / import_s
    charts_ratio = render_s / bare_s
    wall_s, wall_bare_s = median(walls), median(walls_bare)
    wall_ratio = wall_s / wall_bare_s
    met: bool | None = (
        ratio <= RENDER_TARGET_RATIO and wall_ratio <= CHARTS_TARGET_RATIO and bool(linear)
    )
    if linear is None:
        met = None
    per_model = (
        f"{per_model_s * 1000:.1f} ms and {per_model_resources:.1f} resources per added model"
        if per_model_resources > 0
        else "catalog size not measurable: local models add no resources to the render yet"
    )
    return {
        "id": 5,
        "name": "Render cost",
        "figures": {
            "sdk_packages": sorted({m.split(".")[0] for m in json.loads(modules)}),
            "sdk_modules_imported": len(json.loads(modules)),
            "sdk_import_s": round(import_s, 3),
            "make_render_prod_wall_s": round(wall_s, 3),
            "make_render_prod_without_charts_wall_s": round(wall_bare_s, 3),
            "wall_over_wall_without_charts": round(wall_ratio, 2),
            "render_prod_s": round(render_s, 3),
            "render_prod_without_charts_s": round(bare_s, 3),
            "charts_templating_s": round(render_s - bare_s, 3),
            "render_over_render_without_charts": round(charts_ratio, 2),
            "render_without_charts_over_import": round(ratio, 2),
            "catalog_seconds": {str(n): round(seconds[n], 3) for n in CATALOG_SIZES},
            "catalog_resources": {str(n): resources[n] for n in CATALOG_SIZES},
            "seconds_per_added_model": round(per_model_s, 4),
            "resources_per_added_model": round(per_model_resources, 2),
            f"predicted_{largest}_s": round(predicted, 3),
            f"deviation_{largest}_s": round(deviation, 3),
        },
        "headline": f"`make render` {wall_s:.2f} s, {wall_ratio:.2f} x without charts "
        f"(in-process {charts_ratio:.2f} x: {render_s - bare_s:.2f} s templating the "
        f"releases); program {ratio:.2f} x SDK import; {per_model}",
        "target": f"`make render` <= {CHARTS_TARGET_RATIO:g} x its time without charts; "
        f"render without charts <= {RENDER_TARGET_RATIO:g} x import time; per-model cost flat "
        f"(the {largest}-model render within {LINEAR_TOLERANCE:.0%} of the growth "
        f"+ {LINEAR_NOISE_S * 1000:g} ms of a line through the smaller catalogs)",
        "met": met,
        "met_parts": {
            "charts_vs_without": wall_ratio <= CHARTS_TARGET_RATIO,
            "render_vs_import": ratio <= RENDER_TARGET_RATIO,
            "linear": linear,
        },
        "method": f"`make render` wall time: `python -m tools.render` with and without "
        f"`--no-charts`, interleaved, median of {repeats}; fresh interpreter per "
        f"import/render measurement, median of {repeats}; catalog "
        f"renders in one warmed interpreter, sizes interleaved, median of {repeats}",
    }
