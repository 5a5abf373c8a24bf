"""inventories/example, the production template: it loads, its vault opens with the documented dummy
password, and every host's menu plans cleanly on a GPU of its class."""

import json
import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.lpfleet.ai.plugins.filter.plan_ai_models import plan_ai_models

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_PASSWORD = "lpfleet-example"  # inventories/example/README.md
CLASS_GPUS = {
    "gpu_24gb": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "memory_total_mib": 24564},
                 {"index": 1, "name": "NVIDIA GeForce RTX 3060", "memory_total_mib": 12288}],
    "gpu_8gb": [{"index": 0, "name": "NVIDIA GeForce RTX 3060 Ti", "memory_total_mib": 8192}],
    "gpu_80gb": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_total_mib": 81559}],
}


@pytest.fixture(scope="module")
def hostvars(tmp_path_factory):
    password_file = tmp_path_factory.mktemp("vault") / "pass"
    password_file.write_text(DOCUMENTED_PASSWORD + "\n")
    listing = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-inventory"), "-i", "inventories/example", "--list",
         "--vault-password-file", str(password_file)],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(listing)


def host_class(inventory, host):
    return next(group for group in CLASS_GPUS if host in inventory.get(group, {}).get("hosts", []))


def test_every_class_has_hosts(hostvars):
    for group in CLASS_GPUS:
        assert hostvars[group]["hosts"], group


def test_the_vault_opens_with_the_documented_password(hostvars):
    secrets = {vars_.get("vault_lpfleet_runner_token") for vars_ in hostvars["_meta"]["hostvars"].values()}
    assert secrets == {"example-runner-token-change-me"}


def test_the_vault_file_is_encrypted():
    assert (ROOT / "inventories/example/group_vars/gpu_hosts/vault.yml").read_text().startswith("$ANSIBLE_VAULT;")


def test_each_host_s_menu_plans_on_its_class_without_errors(hostvars):
    for host, variables in hostvars["_meta"]["hostvars"].items():
        templar = Templar(loader=DataLoader(), variables=variables)
        # The class menus are Jinja expressions over group vars, as Ansible renders them in a play.
        menu = templar.template(trust_as_template(variables["lpfleet_model_menu"]))
        plan = plan_ai_models(CLASS_GPUS[host_class(hostvars, host)], menu, host=host,
                              headroom_mib=variables["lpfleet_vram_headroom_mib"],
                              runner_address=variables.get("lpfleet_runner_address", "container"))
        llm_urls = [entry["url"] for entry in plan["ai_models"] if entry["pipeline"] == "llm"]
        assert llm_urls, (host, plan["unplaced"])
        expected = "http://127.0.0.1:8000" if variables.get("lpfleet_runner_address") == "loopback" \
            else "http://llm_runner:8000"
        assert set(llm_urls) == {expected}, host
