"""site.yml refuses an inventory it cannot build a lab from, before any host is contacted.

These run the real entry point (ansible-playbook site.yml) on throw-away inventories whose
hosts are never reached: every check here runs on the controller.
"""

from __future__ import annotations

from pathlib import Path

from entry_point import pbx_inventory, site


def test_an_inventory_without_the_pbx_group_is_refused_naming_it(tmp_path: Path) -> None:
    inventory = pbx_inventory(tmp_path)
    inventory["all"]["children"] = {"pbxs": inventory["all"]["children"]["pbx"]}
    run = site(tmp_path, inventory)
    assert run.returncode != 0
    assert "no host in group pbx (its groups: pbxs)" in run.stdout, run.stdout[-2000:]
    assert not (tmp_path / "credentials.yml").exists()


def test_a_pod_with_one_machine_and_a_misspelt_override_are_refused_naming_the_pod(tmp_path: Path) -> None:
    inventory = pbx_inventory(tmp_path, pod2_vm_a={"lab_pod": "pod2", "lab_part": "vm-a",
                                                   "lab_address": "192.0.2.155", "lab_ring_second": 5})
    run = site(tmp_path, inventory)
    assert run.returncode != 0
    assert "pod pod2: lab_part: no machine plays 'vm-b'" in run.stdout, run.stdout[-2000:]
    assert "pod pod2: lab_ring_second: not a lab setting; did you mean lab_ring_seconds?" in run.stdout
    assert "no host was changed" in run.stdout
    assert not (tmp_path / "credentials.yml").exists()
