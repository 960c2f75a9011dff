"""Run the policy pack's rules over an offline render and print every violation.

    python -m tools.policy_check --stack prod [--render build/prod]

The policy config of the stack's tier (`policy/config/<environment>.json`, the file
`pulumi preview --policy-pack-config` reads; the tier is the render's `environment`
output, so a stack of any name gets its tier's enforcement) decides the enforcement: a
mandatory violation exits 1,
advisory ones are printed and exit 0. Each line names the level, the rule and the
resource.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy.rules import RULES, Resource, RuleSettings
from tools.stacks import policy_config_path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource."""

    level: str
    rule: str
    resource_type: str
    resource_name: str
    message: str

    def line(self) -> str:
        """How the violation is printed."""
        return (
            f"{self.level.upper()} {self.rule}: {self.resource_type} "
            f"{self.resource_name!r}: {self.message}"
        )


def render_policy_config(render_dir: Path) -> dict[str, Any]:
    """The policy config of a rendered stack's tier (its `environment` output)."""
    outputs = json.loads((render_dir / "outputs.json").read_text())
    tier = outputs.get("environment")
    path = policy_config_path(str(tier))
    if not path.exists():
        raise SystemExit(f"no policy config for tier {tier!r} ({path})")
    config: dict[str, Any] = json.loads(path.read_text())
    return config


def rule_level(config: Mapping[str, Any], rule: str) -> str:
    """Enforcement of one rule: its own setting, else `all`, else advisory."""
    own = config.get(rule)
    if isinstance(own, Mapping) and "enforcementLevel" in own:
        return str(own["enforcementLevel"])
    if isinstance(own, str):
        return own
    return str(config.get("all", "advisory"))


def resources_of_plan(plan: Mapping[str, Any]) -> list[Resource]:
    """The custom resources of a render's plan.json, as the rules see them."""
    return [
        Resource(
            type=r["type"],
            name=r["name"],
            inputs=r.get("inputs") or {},
            protect=bool(r.get("protect")),
            retain_on_delete=bool(r.get("retainOnDelete")),
        )
        for r in plan["resources"]
        if r.get("custom") and not r["type"].startswith("pulumi:providers:")
    ]


def check(resources: Iterable[Resource], config: Mapping[str, Any]) -> list[Violation]:
    """Every violation of every rule, in resource order."""
    protection = config.get("stateful-protected")
    settings = RuleSettings(
        require_protection=bool(
            isinstance(protection, Mapping) and protection.get("requireProtection")
        )
    )
    violations = []
    for resource in resources:
        for rule in RULES:
            level = rule_level(config, rule.name)
            if level == "disabled":
                continue
            violations += [
                Violation(level, rule.name, resource.type, resource.name, message)
                for message in rule.check(resource, settings)
            ]
    return violations


def main(argv: list[str] | None = None) -> int:
    """Print the violations of a render; exit 1 when any is mandatory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--render", type=Path, help="render directory (default build/<stack>)")
    args = parser.parse_args(argv)
    render_dir = args.render or ROOT / "build" / args.stack
    plan_path = render_dir / "plan.json"
    if not plan_path.exists():
        print(f"no render at {render_dir}; run `make render STACK={args.stack}`", file=sys.stderr)
        return 2
    violations = check(
        resources_of_plan(json.loads(plan_path.read_text())), render_policy_config(render_dir)
    )
    for violation in violations:
        print(violation.line())
    mandatory = sum(v.level == "mandatory" for v in violations)
    print(
        f"{len(violations)} violation(s), {mandatory} mandatory, "
        f"stack {args.stack}, {len(RULES)} rules",
        file=sys.stderr,
    )
    return 1 if mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
