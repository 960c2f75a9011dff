#!/usr/bin/env bash
# Creates .venv-litellm (the real LiteLLM proxy for the live tests and benchmarks) from
# requirements-litellm.txt, hash-checked; see scripts/setup-pinned-venv.sh.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/setup-pinned-venv.sh" litellm
