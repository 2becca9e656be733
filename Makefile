# goapp: two commands on a fresh machine — `make up` (deploy the local stack) and `make test` (everything).
# Every tool version is pinned in versions.env; heavy builds are cached under $(GOAPP_CACHE).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

include versions.env
export GOAPP_CACHE ?= $(HOME)/.cache/goapp
STACK ?= local
PYTHON := .venv/bin/python
# The fast tests: everything but the markers that need the engine, the cluster, the checkers or the benchmark tools.
# One file holds the selection; the benchmark reads and times the same one.
UNIT_TESTS := $(shell cat tests/unit-selection)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- the two commands ------------------------------------------------------------------------------

.PHONY: up
up: venv ## Deploy STACK (default local: starts this machine's cluster and registry first) and print its URL
	$(PYTHON) -m ops.up $(STACK)

.PHONY: test
test: cluster-prebuild lint unit goapp-test image-test engine-test gates bench-smoke e2e ## The whole suite, as CI runs it

# --- stacks through the real engine ----------------------------------------------------------------

.PHONY: preview
preview: venv ## pulumi preview of STACK
	$(PYTHON) -m ops.stack preview $(STACK)

.PHONY: down
down: venv ## pulumi destroy of STACK
	$(PYTHON) -m ops.stack down $(STACK)

.PHONY: render
render: venv ## Render STACK's objects as YAML under dist/STACK/ (needs GOAPP_IMAGE_DIGEST=sha256:…)
	$(PYTHON) -m ops.stack render $(STACK)

.PHONY: bootstrap
bootstrap: venv ## Build/install the Pulumi CLI, language host and plugins (cached by version)
	tools/pulumi/bootstrap.sh >/dev/null

.PHONY: venv
venv: ## Create .venv from requirements.txt
	tools/python/venv.sh

# --- local cluster ---------------------------------------------------------------------------------

.PHONY: cluster-prebuild cluster-up cluster-stop cluster-delete
cluster-prebuild: ## Build the cluster's binaries in the background (nice'd), so a cold `make test` overlaps it with its other steps
	tools/k8s/build.sh background
cluster-up: ## Start the local single-node Kubernetes and the registry on 127.0.0.1:5000
	tools/k8s/cluster.sh up
cluster-stop: ## Stop the local cluster, keeping its data
	tools/k8s/cluster.sh stop
cluster-delete: ## Stop the local cluster and delete all its state
	tools/k8s/cluster.sh delete

# --- tests -----------------------------------------------------------------------------------------

.PHONY: lint
lint: venv ## ruff and mypy on the Python, shellcheck on every bash file
	$(PYTHON) -m ruff check infra ops tests policy gates bench
	$(PYTHON) -m ruff format --check infra ops tests policy gates bench
	$(PYTHON) -m mypy infra ops tests
	git ls-files -z -- '*.sh' .ci/run policy/analyzer | xargs -0 .venv/bin/shellcheck --external-sources

.PHONY: unit
unit: venv ## Fast unit tests: Python with Pulumi mocks (and the policy pack), and Go
	$(PYTHON) -m pytest -m "$(UNIT_TESTS)" tests
	cd goapp && go test ./...
	cd bench/baseline && go test ./...

.PHONY: goapp-test
goapp-test: ## goapp: gofmt, go vet, go test -race, short fuzzing
	goapp/scripts/test.sh

.PHONY: image-test
image-test: ## goapp's image: build on the local stand-ins, run read-only as 65532, probe it
	goapp/scripts/image-test.sh

.PHONY: engine-test
engine-test: venv bootstrap ## The real Pulumi engine: render, preview, contract errors, secrets in state, policy pack
	$(PYTHON) -m pytest -m engine tests
	$(PYTHON) -m gates.run engine

.PHONY: gates-install
gates-install: venv ## Install the pinned checkers (cached by version)
	$(PYTHON) -m gates.run install

.PHONY: render-all
render-all: venv bootstrap ## Render every stack under dist/ with the review digest and stamps
	$(PYTHON) -m ops.stack render-all

.PHONY: gates-fixtures
gates-fixtures: render-all ## Regenerate the gates' good fixtures from fresh renders (review the diff)
	$(PYTHON) gates/fixture_sets.py regenerate

.PHONY: gates
gates: venv gates-install render-all ## Checkers on every rendered stack, hadolint, actionlint
	$(PYTHON) gates/fixture_sets.py check
	$(PYTHON) -m pytest -m gates tests
	$(PYTHON) -m gates.run all

.PHONY: e2e
e2e: venv bootstrap ## pulumi up on the local cluster and the end-to-end checks
	$(PYTHON) -m pytest -m cluster --durations=25 tests

.PHONY: bench
bench: venv bootstrap ## Benchmarks: bench/results.md and a chart
	$(PYTHON) -m bench.run

.PHONY: bench-smoke
bench-smoke: venv bootstrap ## One short round of every benchmark part but the cluster's, into a temporary directory
	$(PYTHON) -m pytest -m bench tests

.PHONY: clean
clean: ## Remove local state and rendered output (not the tool cache)
	rm -rf .pulumi-state dist
