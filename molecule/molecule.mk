# Molecule scenarios against the lab (included by the Makefile).
MOLECULE_ENV = MOLECULE_NO_LOG=false ANSIBLE_FORCE_COLOR=0

.PHONY: molecule-default molecule-fleet

molecule-default: venv docker ## molecule test -s default: two lab hosts (Debian 13, Debian 12 + Docker CE), converge, idempotence, verify
	@scripts/step "molecule: default" "(two 8 GB lab hosts end to end: Debian 13 with Debian's Docker, Debian 12 with Docker CE)"
	@$(MOLECULE_ENV) molecule test -s default

molecule-fleet: venv docker ## molecule test -s fleet: three lab hosts, rollouts with a cut pull
	@scripts/step "molecule: fleet" "(three lab hosts, rollouts, report)"
	@$(MOLECULE_ENV) molecule test -s fleet
