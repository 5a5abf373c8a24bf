# The lpfleet lab: GPU-host stand-ins and vendor stand-ins in Docker (lab/README.md).
# Included by the Makefile; also works alone: make -f lab/lab.mk lab-up
#
#   make lab-up [LAB_HOSTS="gpu-docs:docs-4090-2060 gpu-8g:single-8gb old:single-6gb:12"]
#   make lab-status | lab-down | lab-clean | lab-tests

LAB_ROOT := $(patsubst %/lab/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
LABCTL := $(LAB_ROOT)/lab/labctl
LAB_HOSTS ?=
LAB_PYTEST := $(LAB_ROOT)/scripts/pytest-run

.PHONY: lab-docker lab-up lab-status lab-down lab-clean lab-tests

lab-docker:
	@$(LAB_ROOT)/scripts/ensure-docker

lab-up: lab-docker ## build (cached by content) and start the lab; LAB_HOSTS="NAME:PROFILE[:DEBIAN] ..."
	@$(LABCTL) up --hosts "$(LAB_HOSTS)"

lab-status: lab-docker ## the lab's hosts (profile, GPUs, state, Debian) and vendor stand-ins
	@$(LABCTL) status

lab-down: lab-docker ## remove the lab's containers, networks and volumes (label io.lpfleet.lab=1)
	@$(LABCTL) down

lab-clean: lab-docker ## lab-down, plus the lab's images and .cache/lab
	@$(LABCTL) clean

lab-tests: lab-up ## the Docker lab's own tests (tests/lab/test_lab_*.py, marker slow)
	@$(LAB_ROOT)/scripts/step "tests: lab" "(hosts, driver stand-in, seed compose file, lab-down)"
	@cd $(LAB_ROOT) && $(LAB_PYTEST) -q -m slow --durations=40 tests/lab
