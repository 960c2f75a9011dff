"""llm-platform: load the stack config, build the platform, export its outputs."""

import sys

from components.config import ConfigError, load_stack
from components.outputs import export_outputs
from components.platform import Platform, PlatformArgs

try:
    config, secrets = load_stack()
except ConfigError as error:
    print("\n".join(error.lines), file=sys.stderr)
    raise SystemExit(2) from None

platform = Platform("llm", PlatformArgs(config=config, secrets=secrets))

export_outputs(platform.stack_outputs())
