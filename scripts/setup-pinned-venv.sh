#!/usr/bin/env bash
# Creates .venv-<tool> from requirements-<tool>.txt, every file checked against its pinned
# sha256 (`pip install --require-hashes`), for the tools that run beside the project in a
# virtualenv of their own: the real LiteLLM proxy (live tests, benchmarks), checkov
# (the manifest checks) and gixy-ng (the edge nginx.conf analysis). Idempotent: when the
# venv was built from the same requirements file (its sha256 is stamped inside the venv,
# after the tool's own check ran) and its interpreter still runs, nothing is done.
#
# Usage: scripts/setup-pinned-venv.sh litellm|checkov|gixy  (PYTHON=python3.11 picks the interpreter)
set -euo pipefail

tool="${1:?usage: setup-pinned-venv.sh litellm|checkov|gixy}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${repo_root}/requirements-${tool}.txt"
venv="${repo_root}/.venv-${tool}"
stamp="${venv}/.requirements.sha256"
python="${PYTHON:-python3}"

case "${tool}" in
  litellm) check=(env LITELLM_LOCAL_MODEL_COST_MAP=True "${venv}/bin/python" -c 'import litellm.proxy.proxy_server') ;;
  checkov) check=("${venv}/bin/checkov" --version) ;;
  gixy) check=("${venv}/bin/gixy" --version) ;;
  *) echo "setup-pinned-venv: unknown tool ${tool} (litellm, checkov or gixy)" >&2; exit 2 ;;
esac

if [[ ! -f "${requirements}" ]]; then
  echo "setup-pinned-venv: ${requirements} is missing" >&2
  exit 1
fi

wanted="$(sha256sum "${requirements}" | cut -d' ' -f1)"
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]] \
  && "${venv}/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "setup-pinned-venv: ${venv} is up to date"
  exit 0
fi

echo "setup-pinned-venv: building ${venv} from requirements-${tool}.txt (hash-checked)"
# The stamp is written last, so an interrupted build is rebuilt from scratch next time.
rm -rf "${venv}"
"${python}" -m venv "${venv}"
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes --no-deps --only-binary=:all: -r "${requirements}"
"${venv}/bin/python" -m pip check
"${check[@]}" >/dev/null
echo "${wanted}" >"${stamp}"
echo "setup-pinned-venv: done (${tool} $("${venv}/bin/python" -c "import importlib.metadata as m; print(m.version({'gixy': 'gixy-ng'}.get('${tool}', '${tool}')))"))"
