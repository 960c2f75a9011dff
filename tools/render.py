"""Offline render: run the real program under the mock engine and write `build/<stack>/`.

    python -m tools.render --stack dev [--config Pulumi.other.yaml] [--out build/dev]

Needs no cloud, cluster, credentials or Pulumi CLI. Required secrets get placeholder
values (recorded as "[secret]"), look-ups get honest placeholders (see mock_engine).
Output is deterministic: sorted, no timestamps. Exit codes: 0 rendered, 2 invalid
config (one `config error:` line per problem on stderr), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import traceback
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components import versions
from components.config import (
    ConfigError,
    PlatformConfig,
    parse_platform_config,
    plain_secret_lines,
    provider_region_lines,
    secret_keys_named_by,
    stack_name_lines,
)
from components.derived import Derived, derived_values
from components.inference.fit_report import fit_line, fit_rows, fit_table, shortened_warning
from tools import charts, helm_template
from tools.checks.capacity import images
from tools.helm_overlay import overlay_problems
from tools.mock_engine import (
    PROJECT,
    ROOT_STACK_TYPE,
    ProgramRun,
    RecordedResource,
    config_for_engine,
    run_program,
)
from tools.releases import ReleaseError, ReleaseRender, release_files, render_releases
from tools.what_you_get import what_you_get_markdown

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "__main__.py"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
FIRST_KEYS = ("apiVersion", "kind", "metadata", "spec", "data", "stringData", "type")


class RenderError(Exception):
    """The render could not be written (not a config problem)."""


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the
    last one: a second `qwen3-4b:` would silently replace the first model)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise StackFileError(
                    f"key {key!r} is given twice in one mapping (lines {seen[key]} and {line})"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _strict_mapping(loader: _StrictLoader, node: yaml.Node) -> dict[Any, Any]:
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


class StackFileError(Exception):
    """A stack file that is not valid YAML, or gives a key twice."""


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What is wrong and where, without the snippet of the line PyYAML quotes (the line
    may hold a secret)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or "not valid YAML"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def load_stack_document(text: str) -> Any:
    """A stack file's document, duplicate keys refused; raises `StackFileError`."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise StackFileError(_yaml_problem(error)) from None


def read_stack_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Config values of a stack file and the keys it marks secure (encrypted values)."""
    try:
        document = load_stack_document(path.read_text()) or {}
    except OSError as error:
        raise RenderError(f"cannot read stack file {path}: {error.strerror}") from None
    except StackFileError as error:
        raise ConfigError([f"config error: {path.name}: {error}"]) from None
    if not isinstance(document, dict):
        raise ConfigError([f"config error: {path.name}: must be a mapping with `config:`"])
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise RenderError(f"{path}: `config` must be a mapping")
    values: dict[str, Any] = {}
    secure: list[str] = []
    for key, value in config.items():
        # A key without a namespace belongs to the project, as the Pulumi CLI reads it.
        full = key if ":" in str(key) else f"{PROJECT}:{key}"
        if full in values or full in secure:
            raise ConfigError([f"config error: {full}: given twice (once without its namespace)"])
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.append(full)
            continue
        values[full] = value
    return values, secure


def project_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The `llm-platform:*` values keyed by their bare names."""
    prefix = f"{PROJECT}:"
    return {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}


def _ordered(value: Any) -> Any:
    """Sort mapping keys recursively, Kubernetes' conventional top keys first."""
    if isinstance(value, Mapping):
        keys = sorted(value, key=lambda k: (FIRST_KEYS.index(k) if k in FIRST_KEYS else 99, k))
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump_yaml(value: Any) -> str:
    return yaml.dump(
        _ordered(value), Dumper=_SafeDumper, sort_keys=False, default_flow_style=False, width=100
    )


def _dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def _is_manifest(resource: RecordedResource) -> bool:
    return (
        resource.custom
        and resource.type.startswith("kubernetes:")
        and not resource.type.startswith("pulumi:providers:")
        and resource.type != HELM_RELEASE
        and "kind" in resource.inputs
    )


def manifest_path(resource: RecordedResource) -> Path:
    """`manifests/<namespace or _cluster>/<kind>-<name>.yaml`."""
    metadata = resource.inputs.get("metadata") or {}
    namespace = metadata.get("namespace") or "_cluster"
    name = metadata.get("name") or resource.name
    return Path("manifests") / str(namespace) / f"{resource.inputs['kind'].lower()}-{name}.yaml"


def helm_document(resource: RecordedResource) -> dict[str, Any]:
    """What a reviewer needs of a Helm release."""
    inputs = resource.inputs
    repo = (inputs.get("repositoryOpts") or {}).get("repo")
    return {
        "release": inputs.get("name", resource.name),
        "chart": inputs.get("chart"),
        "repo": repo,
        "version": inputs.get("version"),
        "namespace": inputs.get("namespace"),
        "values": inputs.get("values") or {},
    }


def _aws_path(resource: RecordedResource) -> Path:
    _, module, kind = resource.type.split(":", 2)
    return Path("aws") / module.split("/")[0] / f"{kind}-{resource.name}.json"


def summary_markdown(
    stack: str,
    run: ProgramRun,
    releases: Sequence[ReleaseRender] = (),
    config: PlatformConfig | None = None,
    secrets_set: Collection[str] = (),
) -> str:
    """What the stack gives and asks (models, endpoints, clients, secrets, AWS cost,
    versions), then counts per component and type, the fit of each model, what each Helm
    release creates, and a diagram of the components that create something."""
    by_urn = {r.urn: r for r in run.resources}
    creating = _creating_components(run.resources, by_urn)
    components = [r for r in run.resources if r.urn in creating]
    lines = [f"# Render of stack `{stack}`", "", f"{len(run.resources)} resources.", ""]
    if config is not None:
        lines += what_you_get_markdown(config, run.outputs, releases, secrets_set)
    if config is not None and config.inference.models:
        lines += ["## Model fit", "", *fit_table(fit_rows(config)), ""]
    lines += ["## Resources by type", "", "| type | count |", "| --- | ---: |"]
    for type_token, count in sorted(Counter(r.type for r in run.resources).items()):
        lines.append(f"| `{type_token}` | {count} |")
    lines += ["", "## Resources by component", "", "| component | resources |", "| --- | ---: |"]

    def owner(resource: RecordedResource) -> str:
        parent = resource.parent
        while parent is not None and parent in by_urn and by_urn[parent].custom:
            parent = by_urn[parent].parent
        return by_urn[parent].name if parent in by_urn else "(stack)"

    for name, count in sorted(Counter(owner(r) for r in run.resources if r.custom).items()):
        lines.append(f"| `{name}` | {count} |")
    lines += _releases_markdown(releases)
    lines += _image_pins_markdown()
    lines += ["", "## Components", "", "```mermaid", "graph TD"]
    for component in components:
        parent = component.parent
        if parent in by_urn and by_urn[parent].type != ROOT_STACK_TYPE:
            lines.append(f"  {by_urn[parent].name} --> {component.name}")
        else:
            lines.append(f"  stack[stack {stack}] --> {component.name}")
    lines += ["```", ""]
    return "\n".join(lines)


def _creating_components(
    resources: Sequence[RecordedResource], by_urn: Mapping[str, RecordedResource]
) -> set[str]:
    """URNs of the components with at least one resource under them (a component that is
    switched off registers itself and nothing else, and stays out of the diagram)."""
    creating: set[str] = set()
    for resource in resources:
        if not resource.custom:
            continue
        parent = resource.parent
        for _ in range(len(resources)):  # bounded: a parent chain is no longer than this
            if parent is None or parent not in by_urn or by_urn[parent].type == ROOT_STACK_TYPE:
                break
            if not by_urn[parent].custom:
                creating.add(parent)
            parent = by_urn[parent].parent
    return creating


def _image_pins_markdown() -> list[str]:
    """How each of the program's own images is pinned: by digest, or by tag only."""
    lines = ["", "## Image pins (components/versions.py)", ""]
    for image in versions.IMAGES:
        how = f"digest `{image.digest}`" if image.digest else "**tag only** (no digest)"
        lines.append(f"- `{image.repository}:{image.tag}`: {how}")
    if any(image.digest is None for image in versions.IMAGES):
        lines += [
            "",
            "Images pinned by tag only run whatever the registry serves under that tag; "
            "`make pin-digests` pins them where the registries are reachable.",
        ]
    return lines


def _releases_markdown(releases: Sequence[ReleaseRender]) -> list[str]:
    """What each release creates (objects by kind, hooks, CRDs) and the images it runs."""
    if not releases:
        return []
    lines = ["", f"## Helm releases (templated by {helm_template.ENGINE})", ""]
    lines += ["| release | chart | namespace | objects | of which hooks | CRDs |"]
    lines += ["| --- | --- | --- | ---: | ---: | ---: |"]
    for release in releases:
        hooks = sum(1 for o in release.objects if o.hook is not None)
        lines.append(
            f"| `{release.release}` | {release.chart.name} {release.chart.version} | "
            f"`{release.namespace}` | {len(release.objects)} | {hooks} | "
            f"{len(release.crds) + sum(1 for o in release.objects if o.body.get('kind') == 'CustomResourceDefinition')} |"
        )
    lines += ["", "### Objects of each release by kind", ""]
    for release in releases:
        kinds = Counter(str(o.body.get("kind")) for o in release.objects)
        listed = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        lines.append(f"- `{release.release}`: {listed or 'none'}")
    lines += ["", "### Container images the charts run (pods and operator resources)", ""]
    for release in releases:
        refs = images([o.body for o in release.objects])
        lines.append(f"- `{release.release}`: " + (", ".join(f"`{r}`" for r in refs) or "none"))
    return lines


def write_render(
    stack: str,
    run: ProgramRun,
    out: Path,
    releases: Sequence[ReleaseRender] = (),
    config: PlatformConfig | None = None,
    derived: Sequence[Derived] = (),
    secrets_set: Collection[str] = (),
) -> None:
    """Write the whole render directory from one program run, its templated releases and
    the values the program derived (`components.derived`)."""
    if out.exists():
        if any(out.iterdir()) and not (out / "plan.json").exists():
            raise RenderError(f"refusing to replace {out}: it is not an earlier render")
        shutil.rmtree(out)
    files: dict[Path, str] = {}
    files[Path("plan.json")] = _dump_json(
        {"project": PROJECT, "stack": stack, "resources": [r.to_json() for r in run.resources]}
    )
    for resource in run.resources:
        if _is_manifest(resource):
            path = manifest_path(resource)
            if path in files:
                raise RenderError(f"two manifests render to {path}")
            files[path] = _dump_yaml(resource.inputs)
        elif resource.type == HELM_RELEASE:
            files[Path("helm") / f"{helm_document(resource)['release']}.yaml"] = _dump_yaml(
                helm_document(resource)
            )
        elif resource.type.startswith("aws:") and resource.custom:
            files[_aws_path(resource)] = _dump_json(resource.inputs)
    for release in releases:
        for path, body in release_files(release).items():
            files[path] = _dump_yaml(body)
    for artifact, content in run.artifacts.items():
        files[Path("files") / artifact] = content
    files[Path("outputs.json")] = _dump_json(run.outputs)
    files[Path("derived.json")] = _dump_json([d.to_json() for d in derived])
    files[Path("summary.md")] = summary_markdown(stack, run, releases, config, secrets_set)
    for relative_path, text in sorted(files.items()):
        target = out / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


@dataclass(frozen=True)
class StackProgram:
    """What the mock engine runs a stack file with: its validated config, the config the
    engine hands the program (required secrets as placeholders) and the secret keys."""

    platform: PlatformConfig
    engine_config: dict[str, str]
    secret_keys: list[str]
    secrets_set: tuple[str, ...]
    """The project's secret keys the stack file holds (encrypted)."""


def stack_program(stack: str, stack_file: Path) -> StackProgram:
    """Read and validate the stack file of stack `stack` for a run of the program; raises
    ConfigError."""
    values, secure = read_stack_file(stack_file)
    raw = project_values(values)
    plain = sorted(key for key in secret_keys_named_by(raw) if key in raw)
    try:
        platform = parse_platform_config({k: v for k, v in raw.items() if k not in plain})
    except ConfigError as error:
        raise ConfigError([*plain_secret_lines(plain), *error.lines]) from None
    platform = platform.for_stack(stack)
    lines = plain_secret_lines(plain) + provider_region_lines(values.get("aws:region"), platform)
    lines += stack_name_lines(platform)
    if lines:
        raise ConfigError(lines)
    engine_config = config_for_engine(values)
    secret_keys = list(secure)
    for key in platform.required_secrets():
        full = f"{PROJECT}:{key}"
        engine_config.setdefault(full, f"render-placeholder-{key}")
        secret_keys.append(full)
    for key in secure:
        engine_config[key] = f"render-placeholder-{key.split(':', 1)[1]}"
    secrets_set = tuple(k.split(":", 1)[1] for k in secure if k.startswith(f"{PROJECT}:"))
    return StackProgram(platform, engine_config, sorted(set(secret_keys)), secrets_set)


def run_stack_program(
    stack: str, program: StackProgram, prior: Mapping[str, Mapping[str, Any]] | None = None
) -> ProgramRun:
    """Run `__main__.py` with a stack's config (as a preview against `prior` when given)."""
    return run_program(
        stack=stack,
        config=program.engine_config,
        secret_keys=program.secret_keys,
        program=MAIN,
        prior=prior,
    )


def render(stack: str, stack_file: Path, out: Path, *, charts_tree: bool = True) -> ProgramRun:
    """Validate, run and write one stack; raises ConfigError or RenderError.

    `charts_tree=False` leaves out the templating of the Helm releases (`charts/`): the
    render as it was before charts were templated, which `make bench` measures against.
    """
    program = stack_program(stack, stack_file)
    platform = program.platform
    for row in fit_rows(platform):
        print(fit_line(row))
        if row.shortened:
            print(shortened_warning(row), file=sys.stderr)
    _progress(f"render {stack}: config valid; running the program under the mock engine")
    run = run_stack_program(stack, program)
    if charts_tree:
        _progress(f"render {stack}: {len(run.resources)} resources; templating the Helm releases")
    try:
        releases = render_releases(run) if charts_tree else []
    except (ReleaseError, charts.ChartUnavailableError) as error:
        raise RenderError(str(error)) from error
    if platform.helm_values and releases:
        problems = overlay_problems(platform.helm_values, releases)
        if problems:
            raise ConfigError(problems)
    _progress(f"render {stack}: writing {out}")
    write_render(
        stack,
        run,
        out,
        releases,
        program.platform,
        derived_values(program.platform),
        program.secrets_set,
    )
    return run


def _progress(line: str) -> None:
    """A step of a render, on stderr (stdout keeps the one result line)."""
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stack", help="stack name (default: from --config's `Pulumi.<name>.yaml`, else dev)"
    )
    parser.add_argument("--config", type=Path, help="stack file (default Pulumi.<stack>.yaml)")
    parser.add_argument("--out", type=Path, help="output directory (default build/<stack>)")
    parser.add_argument(
        "--no-charts",
        action="store_true",
        help="leave out templating the Helm releases (no charts/ tree; faster while iterating)",
    )
    args = parser.parse_args(argv)
    stack = args.stack
    if stack is None and args.config is not None:
        match = re.fullmatch(r"Pulumi\.(.+)\.yaml", args.config.name)
        if match is None:
            print(
                f"render error: cannot tell the stack's name from {args.config.name} (not "
                "Pulumi.<name>.yaml); pass --stack (make render STACK=<name>)",
                file=sys.stderr,
            )
            return 1
        stack = match[1]
    stack = stack or "dev"
    stack_file = args.config or ROOT / f"Pulumi.{stack}.yaml"
    out = args.out or ROOT / "build" / stack
    try:
        run = render(stack, stack_file, out, charts_tree=not args.no_charts)
    except ConfigError as error:
        print("\n".join(error.lines), file=sys.stderr)
        return 2
    except SystemExit as exit_:
        return int(exit_.code) if isinstance(exit_.code, int) else 1
    except RenderError as error:
        print(f"render error: {error}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    print(f"rendered stack {stack}: {len(run.resources)} resources -> {out}")
    tag_only = [image for image in versions.IMAGES if image.digest is None]
    if tag_only:
        print(
            f"note: {len(tag_only)} of {len(versions.IMAGES)} images are pinned by tag only "
            "(no digest; `make pin-digests` pins them): see summary.md"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
