"""The project's stacks: every `Pulumi.<name>.yaml` beside `Pulumi.yaml`, with its tier.

    python -m tools.stacks [--tier dev|prod] [--json]     stack names, one a line (or JSON)
    python -m tools.stacks --policy-config <stack>        the policy config file of a stack

A stack's name is its file's (`Pulumi.home.yaml` is stack `home`); its tier is its
`environment` (`dev` or `prod`), which selects the defaults of the program and the
enforcement of the policy pack (`policy/config/<tier>.json`), whatever the name. The
Makefile, the policy check and the workflows take the stacks from here, so a stack of
one's own is rendered, diffed, checked and deployed like the shipped ones.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from components.config import ConfigError
from tools.render import RenderError, project_values, read_stack_file

ROOT = Path(__file__).resolve().parent.parent
POLICY_CONFIG = ROOT / "policy" / "config"
TIERS = ("dev", "prod")
STACK_FILE = re.compile(r"Pulumi\.(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)\.yaml")


@dataclass(frozen=True)
class Stack:
    """One stack file: its name, path and tier."""

    name: str
    path: Path
    tier: str


def stack_name(path: Path) -> str | None:
    """The stack a file `Pulumi.<name>.yaml` configures, or None for any other name."""
    match = STACK_FILE.fullmatch(path.name)
    return match["name"] if match else None


def stack_tier(path: Path) -> str:
    """The `environment` a stack file sets; refused when it is missing or not a tier."""
    values, _ = read_stack_file(path)
    tier = project_values(values).get("environment")
    if tier not in TIERS:
        raise ConfigError(
            [f"config error: environment: must be one of {', '.join(TIERS)} (got {tier!r})"]
        )
    return str(tier)


def stacks(root: Path = ROOT) -> list[Stack]:
    """Every stack file in `root`, by name."""
    found = []
    for path in sorted(root.glob("Pulumi.*.yaml")):
        name = stack_name(path)
        if name is not None:
            found.append(Stack(name=name, path=path, tier=stack_tier(path)))
    return found


def policy_config_path(tier: str) -> Path:
    """The policy pack's config for a tier (`pulumi preview --policy-pack-config`)."""
    return POLICY_CONFIG / f"{tier}.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=TIERS, help="only the stacks of this tier")
    parser.add_argument("--json", action="store_true", help="a JSON list (for CI matrices)")
    parser.add_argument("--policy-config", metavar="STACK", help="print a stack's policy file")
    args = parser.parse_args(argv)
    try:
        found = stacks()
    except (ConfigError, RenderError) as error:
        lines = error.lines if isinstance(error, ConfigError) else (str(error),)
        print("\n".join(lines), file=sys.stderr)
        return 2
    if args.policy_config is not None:
        by_name = {s.name: s for s in found}
        if args.policy_config not in by_name:
            print(f"no stack file Pulumi.{args.policy_config}.yaml", file=sys.stderr)
            return 2
        print(policy_config_path(by_name[args.policy_config].tier).relative_to(ROOT))
        return 0
    names = [s.name for s in found if args.tier in (None, s.tier)]
    print(json.dumps(names) if args.json else "\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
