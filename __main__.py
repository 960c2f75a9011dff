"""llm-platform: load the stack config, build the platform, export its outputs."""

import sys

import pulumi

from components.config import ConfigError, load_stack
from components.platform import Platform, PlatformArgs

try:
    config, secrets = load_stack()
except ConfigError as error:
    print("\n".join(error.lines), file=sys.stderr)
    raise SystemExit(2) from None

platform = Platform("llm", PlatformArgs(config=config, secrets=secrets))

pulumi.export("environment", config.environment)
pulumi.export("namespaces", platform.base.namespaces)
pulumi.export("kubeconfig", platform.cluster.kubeconfig)
