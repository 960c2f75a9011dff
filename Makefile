# The README's two commands are `make render` and `make test`; the rest are their parts.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A stack is named by its file: CONFIG=path/Pulumi.home.yaml renders stack `home` into build/home/.
STACK ?= $(if $(CONFIG),$(patsubst Pulumi.%.yaml,%,$(filter Pulumi.%.yaml,$(notdir $(CONFIG)))),dev)
# Every stack file beside Pulumi.yaml (tools/stacks.py lists them with their tiers).
STACKS := $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml))

.PHONY: help venv charts render render-all diff drift preview policy smoke bench test lint typecheck \
        unit system-tools litellm-venv checkov-venv gixy-venv config-docs constraints pin-digests \
        clean

help:
	@echo "make render [STACK=dev] [CONFIG=file]   offline render into build/<stack>/"
	@echo "make charts                              pinned chart archives into .cache/charts/ (CHART_MIRROR=dir offline)"
	@echo "make test                               the whole suite (installs what it needs)"
	@echo "make diff OLD=build/a NEW=build/b       Markdown diff of two renders, replacements first"
	@echo "make preview [STACK=dev] [AGAINST=dir]  what a real pulumi preview would plan (offline)"
	@echo "make drift [STACK=dev] PREVIEW=file     drift summary of a pulumi preview --refresh --json"
	@echo "make drift [STACK=dev] OLD=a NEW=b      the same summary from two renders"
	@echo "make policy [STACK=dev]                 the policy pack over a fresh render"
	@echo "make smoke ENDPOINT=<url> KEY=<key>     smoke test of a deployed stack"
	@echo "make bench                              benchmarks -> bench/results.json, docs/benchmarks.md"
	@echo "make pin-digests                        pin each image of components/versions.py to its digest"

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@echo "venv: creating $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)
	@echo "venv: installing $$(grep -c '==' constraints.txt) pinned packages (about a minute the first time)"
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@echo "venv: ready"
	touch $@

venv: $(BIN)/.installed

# The pinned Helm chart archives: pulled from their repositories, or copied from the
# mirror folder CHART_MIRROR (default ../shared/charts when it exists); see tools/charts.py.
charts: venv
	@$(BIN)/python -m tools.charts

render: venv charts
	$(BIN)/python -m tools.render $(if $(STACK),--stack $(STACK)) $(if $(CONFIG),--config $(CONFIG)) $(if $(OUT),--out $(OUT))

render-all: venv charts
	@for stack in $(STACKS); do $(BIN)/python -m tools.render --stack $$stack; done

diff: venv
	@test -n "$(OLD)" -a -n "$(NEW)" || { echo "usage: make diff OLD=<render dir> NEW=<render dir>"; exit 1; }
	$(BIN)/python -m tools.diff $(OLD) $(NEW) $(if $(CONFIG),--config $(CONFIG))

# A preview of the stack as a real `pulumi preview` would plan it, against the state of an
# earlier render (AGAINST=build/dev, e.g. of the base branch) or as a new stack.
preview: venv
	$(BIN)/python -m tools.preview --stack $(STACK) $(if $(CONFIG),--config $(CONFIG)) $(if $(AGAINST),--against $(AGAINST))

# Exit 0 no drift, 1 drift, 2 the check failed (tools/drift.py; docs/delivery.md, "Drift detection").
drift: venv
	@test -n "$(PREVIEW)" -o \( -n "$(OLD)" -a -n "$(NEW)" \) || { echo "usage: make drift [STACK=dev] PREVIEW=<pulumi preview --json output> | OLD=<render dir> NEW=<render dir>"; exit 2; }
	@$(BIN)/python -m tools.drift --stack $(STACK) $(if $(PREVIEW),--preview $(PREVIEW),$(OLD) $(NEW))

policy: render
	$(BIN)/python -m tools.policy_check --stack $(STACK) $(if $(OUT),--render $(OUT))

smoke: venv
	@test -n "$(ENDPOINT)" -a -n "$(KEY)" || { echo "usage: make smoke ENDPOINT=<url> KEY=<key> [MODELS=a,b] [CA=ca.pem]"; exit 2; }
	$(BIN)/python -m tools.smoke --endpoint "$(ENDPOINT)" --key "$(KEY)" $(if $(MODELS),--models $(MODELS)) $(if $(CA),--ca-file $(CA))

bench: venv system-tools litellm-venv
	$(BIN)/python -m bench.run

system-tools:
	bash scripts/install-system-tools.sh

litellm-venv:
	bash scripts/setup-pinned-venv.sh litellm

checkov-venv:
	bash scripts/setup-pinned-venv.sh checkov

gixy-venv:
	bash scripts/setup-pinned-venv.sh gixy

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

config-docs: venv
	mkdir -p docs
	$(BIN)/python -m tools.config_docs > docs/config-reference.md
	$(BIN)/python -m tools.config_docs --schema > docs/config.schema.json
	$(BIN)/python -m tools.config_docs --outputs-schema > docs/outputs.schema.json

test: venv charts system-tools litellm-venv checkov-venv gixy-venv lint typecheck render-all
	$(BIN)/pytest

# Each image tag of components/versions.py resolved to its digest over the registry's API;
# an unreachable registry leaves its images pinned by tag (tools/pin_digests.py).
pin-digests: venv
	$(BIN)/python -m tools.pin_digests

# Resolves requirements*.txt afresh (without the old pins), then records every version.
constraints:
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	{ echo "# Exact versions of every Python package in the project virtualenv (direct and transitive)."; \
	  echo "# Regenerate after changing requirements*.txt: make constraints"; \
	  $(BIN)/pip freeze --exclude-editable; } > constraints.txt

clean:
	rm -rf build .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
