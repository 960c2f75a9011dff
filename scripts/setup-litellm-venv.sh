#!/usr/bin/env bash
# Creates .venv-litellm (the real LiteLLM proxy for the live tests and benchmarks) from
# requirements-litellm.txt, every file checked against its pinned sha256
# (`pip install --require-hashes`). Idempotent: when the venv was built from the same
# requirements file (its sha256 is stamped inside the venv, after the proxy imported)
# and its interpreter still runs, nothing is done.
#
# Usage: scripts/setup-litellm-venv.sh  (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${repo_root}/requirements-litellm.txt"
venv="${repo_root}/.venv-litellm"
stamp="${venv}/.requirements.sha256"
python="${PYTHON:-python3}"

if [[ ! -f "${requirements}" ]]; then
  echo "setup-litellm-venv: ${requirements} is missing" >&2
  exit 1
fi

wanted="$(sha256sum "${requirements}" | cut -d' ' -f1)"
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]] \
  && "${venv}/bin/python" -c 'import importlib.metadata as m; m.version("litellm")' >/dev/null 2>&1; then
  echo "setup-litellm-venv: ${venv} is up to date"
  exit 0
fi

echo "setup-litellm-venv: building ${venv} from requirements-litellm.txt (hash-checked)"
# The stamp is written last, so an interrupted build is rebuilt from scratch next time.
rm -rf "${venv}"
"${python}" -m venv "${venv}"
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes --no-deps --only-binary=:all: -r "${requirements}"
"${venv}/bin/python" -m pip check
LITELLM_LOCAL_MODEL_COST_MAP=True "${venv}/bin/python" -c 'import litellm.proxy.proxy_server'
echo "${wanted}" >"${stamp}"
echo "setup-litellm-venv: done ($("${venv}/bin/python" -c 'import importlib.metadata as m; print("litellm", m.version("litellm"))'))"
