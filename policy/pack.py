"""The rules of `policy.rules` as CrossGuard resource validation policies.

Enforcement defaults to advisory; a stack's policy config (`policy/config/<stack>.json`,
passed with `--policy-pack-config`) makes every rule mandatory on prod with
`{"all": "mandatory"}` and switches on the protection rule there.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policy.rules import RULES, Resource, Rule, RuleSettings

PACK_NAME = "llm-platform"


def resource_of(args: ResourceValidationArgs) -> Resource:
    """The rules' view of a resource under validation."""
    return Resource(
        type=args.resource_type,
        name=args.name,
        inputs=args.props,
        protect=bool(args.opts.protect),
        # Policy options do not carry retainOnDelete; protection is what prod requires.
        retain_on_delete=False,
    )


def settings_of(args: ResourceValidationArgs) -> RuleSettings:
    """Rule switches from the policy's config."""
    return RuleSettings(require_protection=bool(args.get_config().get("requireProtection")))


def validation_policy(rule: Rule) -> ResourceValidationPolicy:
    """One rule as a CrossGuard policy; each violation message names the rule."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for problem in rule.check(resource_of(args), settings_of(args)):
            report_violation(f"{rule.name}: {problem}", args.urn)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.ADVISORY,
        config_schema=PolicyConfigSchema(
            properties={"requireProtection": {"type": "boolean", "default": False}}
        ),
    )


def policies() -> list[Policy]:
    """Every rule of the platform as a policy."""
    return [validation_policy(rule) for rule in RULES]
