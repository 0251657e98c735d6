"""site.yml refuses an inventory it cannot build a lab from, before any host is contacted.

These run the real entry point (ansible-playbook site.yml) on throw-away inventories whose
hosts are never reached: every check here runs on the controller.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def site(tmp_path: Path, inventory: dict) -> subprocess.CompletedProcess[str]:
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    playbook = Path(sys.executable).parent / "ansible-playbook"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(playbook), "-i", str(tmp_path / "hosts.yml"), str(ROOT / "site.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def pod_hosts(tmp_path: Path, **extra: dict) -> dict:
    # 192.0.2.0/24 (TEST-NET-1) is never routed; nothing here connects anyway.
    hosts = {"vm-a": {"lab_address": "192.0.2.153"}, "vm-b": {"lab_address": "192.0.2.154"}}
    for name, variables in extra.items():
        hosts[name.replace("_", "-")] = variables
    return {"all": {"vars": {"lab_credentials_file": str(tmp_path / "credentials.yml"),
                             "ansible_connection": "local"}}, "hosts": hosts}


def test_an_inventory_without_the_pbx_group_is_refused_naming_it(tmp_path: Path) -> None:
    inventory = pod_hosts(tmp_path)
    run = site(tmp_path, {"all": {"vars": inventory["all"]["vars"],
                                  "children": {"pbxs": {"hosts": inventory["hosts"]}}}})
    assert run.returncode != 0
    assert "no host in group pbx (its groups: pbxs)" in run.stdout, run.stdout[-2000:]
    assert not (tmp_path / "credentials.yml").exists()


def test_a_pod_with_one_machine_and_a_misspelt_override_are_refused_naming_the_pod(tmp_path: Path) -> None:
    inventory = pod_hosts(tmp_path, pod2_vm_a={"lab_pod": "pod2", "lab_part": "vm-a",
                                               "lab_address": "192.0.2.155", "lab_ring_second": 5})
    run = site(tmp_path, {"all": {"vars": inventory["all"]["vars"],
                                  "children": {"pbx": {"hosts": inventory["hosts"]}}}})
    assert run.returncode != 0
    assert "pod pod2: lab_part: no machine plays 'vm-b'" in run.stdout, run.stdout[-2000:]
    assert "pod pod2: lab_ring_second: not a lab setting; did you mean lab_ring_seconds?" in run.stdout
    assert "no host was changed" in run.stdout
    assert not (tmp_path / "credentials.yml").exists()
