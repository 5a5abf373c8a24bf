# Molecule scenarios against the lab (included by the Makefile).
MOLECULE_ENV = MOLECULE_NO_LOG=false ANSIBLE_FORCE_COLOR=0

.PHONY: molecule-default molecule-fleet

molecule-default: venv docker ## molecule test -s default: one lab host, converge, idempotence, verify
	@scripts/step "molecule: default" "(one 8 GB lab host end to end)"
	@$(MOLECULE_ENV) molecule test -s default

molecule-fleet: venv docker ## molecule test -s fleet: three lab hosts, rollouts with a cut pull
	@scripts/step "molecule: fleet" "(three lab hosts, rollouts, report)"
	@$(MOLECULE_ENV) molecule test -s fleet
