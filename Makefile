# The two commands of the README, and the pieces they are made of.
#   make demo   set up everything, then run the main job against the demo stack
#   make test   set up everything, then run every check (ends with pytest's summary line)
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
PYTEST := $(VENV)/bin/python -m pytest -p no:cacheprovider

.PHONY: setup demo demo-down test lint sanity unit integration faults bench build ee docs lock clean

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

demo-down:
	@scripts/demo.sh down

test: setup
	@$(PYTEST) tests/checks tests/unit tests/integration

lint: setup
	@$(PYTEST) tests/checks -k lint

sanity: setup
	@$(PYTEST) tests/checks -k sanity

unit: setup
	@$(PYTEST) tests/unit

integration: setup
	@$(PYTEST) tests/integration

# The fault-injection suite alone (make test and make integration run it too).
faults: setup
	@$(PYTEST) tests/integration/faults

bench: setup
	@$(VENV)/bin/python benchmarks/run.py

build: setup
	@$(VENV)/bin/ansible-galaxy collection build --force --output-path .cache/dist .

# HTML docs of the modules and roles (antsibull-docs + Sphinx, offline) into .cache/docs/html.
docs: setup
	@scripts/build_docs.sh

# The AWX execution environment's build context (offline): .cache/ee/context (docs/awx.md).
ee: setup
	@rm -rf .cache/ee && mkdir -p .cache/ee/dist
	@$(VENV)/bin/ansible-galaxy collection build --output-path .cache/ee/dist .
	@cp .cache/ee/dist/ops-rollback-*.tar.gz .cache/ee/ops-rollback.tar.gz
	@$(VENV)/bin/ansible-builder create --file execution-environment.yml --context .cache/ee/context --output-filename Containerfile

# Re-resolve the pinned dependency sets from requirements/*.in (needs the package index).
lock:
	@scripts/lock_requirements.sh

clean: demo-down
	rm -rf .venv .venv-compat .cache
