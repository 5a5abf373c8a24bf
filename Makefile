# lpfleet: the README's two commands are `make demo` and `make test`.
# Every target bootstraps what it needs and is safe to run twice.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0
# Ansible prints progress lines (model pulls) as they come, also through pipes and CI logs.
export PYTHONUNBUFFERED := 1

.PHONY: help venv lint unit lab-unit check sanity docker test demo collection ee clean bench

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

venv: ## the pinned control-node virtualenv (.venv)
	@scripts/ensure-venv
	@$(VENV)/bin/python scripts/check-collections

lint: venv ## ansible-lint (production), yamllint, ruff
	@scripts/step "lint: yamllint" "(whole tree)"
	@yamllint -s .
	@scripts/step "lint: ruff" "(plugins, lab, tests, scripts)"
	@ruff check . lab/labctl scripts/bench scripts/bench-planner
	@scripts/step "lint: ansible-lint --profile production" "(roles, playbooks, molecule)"
	@ansible-lint --profile production -q

unit: venv ## unit tests of the plugins (no Docker)
	@scripts/step "tests: unit" "(plugins, planner, rules)"
	@scripts/pytest-run -q tests/unit

lab-unit: venv ## the lab's stand-ins against their contracts, as local processes (no Docker)
	@scripts/step "tests: stand-ins" "(contracts, on 127.0.0.1)"
	@scripts/pytest-run -q tests/lab -m "not slow"

check: lint unit ## the fast inner loop: lint + unit tests

# BENCH_HOSTS (6), BENCH_SITE_HOSTS (3), BENCH_PROFILE (single-8gb), BENCH_PHASES, BENCH_KEEP, BENCH_DIR: scripts/bench.
bench: venv docker ## the fleet benchmark on the lab, then the planner's: one "name: value" a line (figures, never a pass or fail on slowness; ~20 min)
	@$(VENV)/bin/python scripts/bench

sanity: venv ## ansible-test sanity for the plugins (Python 3.11, no Docker images)
	@scripts/step "tests: ansible-test sanity" "(temporary ansible_collections tree)"
	@scripts/sanity

collection: venv ## build the lpfleet.ai collection artifact into build/, install it elsewhere and use it from there
	@mkdir -p build
	@ansible-galaxy collection build --force --output-path build . >/dev/null
	@scripts/step "collection: built" "$$(ls build/lpfleet-ai-*.tar.gz)"
	@scripts/check-artifact build/lpfleet-ai-*.tar.gz
	@$(VENV)/bin/python scripts/check-installed-collection build/lpfleet-ai-*.tar.gz

ee: collection ## execution-environment.yml: ansible-builder create into build/ee, and check the context (no image build)
	@scripts/step "ee: ansible-builder create" "(build/ee; building the image needs registries)"
	@$(VENV)/bin/python scripts/check-ee

docker: ## a running Docker engine on this machine (Debian's docker.io)
	@scripts/ensure-docker

-include lab/lab.mk
-include molecule/molecule.mk

test: venv ## everything: lint, unit, sanity, collection build, lab and molecule tests
	@$(MAKE) --no-print-directory lint unit lab-unit sanity collection ee
	@$(MAKE) --no-print-directory docker
	@$(MAKE) --no-print-directory lab-tests molecule-default molecule-fleet

demo: venv docker ## bring up the lab, provision it end to end with site.yml, show the result
	@scripts/demo

clean: ## remove build outputs and caches (not the lab: see make lab-clean)
	rm -rf build .cache/facts .pytest_cache .ruff_cache
