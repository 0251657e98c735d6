"""Validation never crashes: a value of an odd shape gets a message naming it.

A Python exception in a filter reaches the user as "lab_errors failed: ..." with a
traceback, not as what to fix. Every lab setting, every key of a user or trunk, and the
inventory's pod variables are fed values of the wrong shape (a string for a list, a list for
a string, a number for a name...); each run must return messages (a list of str), and the
curated cases below must name the variable.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from entry_point import filter_plugin, pbx_inventory, site

ROOT = Path(__file__).resolve().parents[2]
PBX = ["vm-a", "vm-b"]


lab_validate, lab_view = filter_plugin("lab_validate"), filter_plugin("lab_view")
REFERENCE = lab_view.lab_description({})
# Values of every shape YAML can give, empty and not.
ODD = [None, 0, 7, -1, 2.5, True, "", "x", " ", "a\nb", [], ["x"], [1], [None], [[]], [{}], {}, {"a": 1}, {"x": []}]


def lab_errors(**given: Any) -> list[str]:
    """lab_errors of the reference lab with `given` set in the inventory, as the playbook runs it."""
    errors = lab_validate.lab_errors(lab_view.lab_description(given), PBX)
    assert isinstance(errors, list) and all(isinstance(e, str) for e in errors), errors
    return errors


def with_item(var: str, i: int, **changes: Any) -> dict[str, Any]:
    """{var: the reference list, item i changed}"""
    items = copy.deepcopy(REFERENCE[var])
    items[i].update(changes)
    return {var: items}


def class_errors(**vm_a: Any) -> list[str]:
    """Every message of the class whose vm-a has `vm_a`, through the playbook's filters in order."""
    hosts = {"vm-a": {"lab_address": "192.0.2.153", **vm_a}, "vm-b": {"lab_address": "192.0.2.154"}}
    pods = lab_view.lab_pods(list(hosts), hosts, PBX)
    errors = lab_view.lab_class_errors(list(hosts), hosts, PBX)
    plan = lab_view.lab_class_plan(PBX, hosts, pods, {})
    errors += lab_validate.lab_class_plan_errors(plan, pods)
    assert isinstance(errors, list) and all(isinstance(e, str) for e in errors), errors
    return errors


# -------------------------------------------------------------- every setting, every shape


@pytest.mark.parametrize("setting", sorted(lab_view.lab_settings()))
def test_no_setting_of_any_shape_crashes_validation(setting: str) -> None:
    for value in ODD:
        lab_errors(**{setting: value})


@pytest.mark.parametrize(("var", "key"), [
    *(("lab_users", key) for key in lab_validate.LISTS["lab_users"].fields),
    *(("lab_trunks", key) for key in lab_validate.LISTS["lab_trunks"].fields),
    *(("lab_queues", key) for key in lab_validate.LISTS["lab_queues"].fields),
    *(("lab_conference_rooms", key) for key in lab_validate.LISTS["lab_conference_rooms"].fields),
])
def test_no_key_of_a_user_trunk_queue_or_room_of_any_shape_crashes_validation(var: str, key: str) -> None:
    for i in range(len(REFERENCE[var])):
        for value in ODD:
            lab_errors(**with_item(var, i, **{key: value}))


@pytest.mark.parametrize("nested", ["registrar", "inbound"])
def test_no_key_of_a_trunks_registrar_or_inbound_of_any_shape_crashes_validation(nested: str) -> None:
    for key in ("host", "port", "context", "extension", "other"):
        for value in ODD:
            errors = lab_errors(**with_item("lab_trunks", 1, **{nested: {**REFERENCE["lab_trunks"][1][nested],
                                                                         key: value}}))
            valid = (key in ("host", "extension") and value == "x") or (key == "port" and value == 7)
            assert valid or any(e.startswith(f"lab_trunks[1].{nested}") for e in errors), (key, value, errors)


@pytest.mark.parametrize("variable", ["lab_address", "lab_pod", "lab_part", "lab_users", "lab_trunks"])
def test_no_inventory_variable_of_any_shape_crashes_the_class_checks(variable: str) -> None:
    for value in ODD:
        class_errors(**{variable: value})


# ------------------------------------------------------- each odd shape names what to fix

# (id, what the inventory sets, the variable path every message about it starts with)
SHAPES: list[tuple[str, dict[str, Any], str]] = [
    ("users-a-mapping", {"lab_users": {"amine": {"extension": "100", "host": "vm-a"}}}, "lab_users"),
    ("users-a-string", {"lab_users": "amine"}, "lab_users"),
    ("a-user-a-string", {"lab_users": ["amine", *REFERENCE["lab_users"][1:]]}, "lab_users[0]"),
    ("extensions-numbers", {"lab_users": [{**u, "extension": int(u["extension"])}
                                          for u in REFERENCE["lab_users"]]}, "lab_users["),
    ("a-trunk-without-keys", {"lab_trunks": [{"name": "t"}]}, "lab_trunks[0]"),
    ("a-trunk-a-string", {"lab_trunks": ["trunk_A_vers_B"]}, "lab_trunks[0]"),
    ("registrar-a-list", with_item("lab_trunks", 0, registrar=["vm-a"]), "lab_trunks[0].registrar"),
    ("registrar-host-a-list", with_item("lab_trunks", 1, registrar={"host": ["a"], "port": 5600}),
     "lab_trunks[1].registrar.host"),
    ("inbound-context-a-number", with_item("lab_trunks", 1, inbound={"context": 5, "extension": "s"}),
     "lab_trunks[1].inbound.context"),
    ("queue-members-mappings", {"lab_queues": [{"name": "q", "extension": "610", "members": [{"a": 1}]}]},
     "lab_queues[0].members"),
    ("queue-members-lists", {"lab_queues": [{"name": "q", "extension": "610", "members": [["amine"]]}]},
     "lab_queues[0].members"),
    ("provider-address-a-list", {"lab_provider_address": ["sip.kaiba.corp"]}, "lab_provider_address"),
    ("provider-address-a-number", {"lab_provider_address": 5600}, "lab_provider_address"),
    ("provider-username-a-list", {"lab_provider_username": ["1040"]}, "lab_provider_username"),
]


@pytest.mark.parametrize(("given", "path"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_an_odd_shape_is_a_message_naming_the_variable(given: dict[str, Any], path: str) -> None:
    errors = lab_errors(**given)
    assert errors and all(e.startswith(path) for e in errors), errors


# (id, what vm-a sets in the inventory, a fragment of the message that names it)
CLASS_SHAPES: list[tuple[str, dict[str, Any], str]] = [
    ("address-a-list", {"lab_address": ["192.0.2.153"]}, "pod pod1: vm-a: lab_address: ['192.0.2.153'] is not an IPv4 address"),
    ("address-a-number", {"lab_address": 3221226137}, "pod pod1: vm-a: lab_address: 3221226137 is not an IPv4 address"),
    ("pod-a-number", {"lab_pod": 2}, 'vm-a: lab_pod: 2 is not a pod name; use letters, digits, _ and -, quoted'),
    ("pod-a-list", {"lab_pod": ["pod2"]}, "vm-a: lab_pod: ['pod2'] is not a pod name"),
    ("part-a-list", {"lab_part": ["vm-a"]}, "pod pod1: vm-a: lab_part: ['vm-a'] is not a part name"),
    ("users-a-string", {"lab_users": "amine"}, 'lab_users: "amine" is not a non-empty list'),
]


@pytest.mark.parametrize(("vm_a", "fragment"), [s[1:] for s in CLASS_SHAPES], ids=[s[0] for s in CLASS_SHAPES])
def test_an_odd_inventory_variable_is_a_message_naming_host_and_variable(vm_a: dict[str, Any], fragment: str) -> None:
    errors = class_errors(**vm_a)
    assert any(fragment in e for e in errors), errors


# ------------------------------------------------------------- through the real entry point


def test_site_says_what_is_wrong_with_users_as_a_string_and_a_trunk_without_keys(tmp_path: Path) -> None:
    inventory = pbx_inventory(tmp_path)
    inventory["all"]["vars"].update(lab_users="amine", lab_trunks=[{"name": "t", "registrar": ["vm-a"]}])
    run = site(tmp_path, inventory)
    assert run.returncode != 0
    assert 'lab_users: "amine" is not a non-empty list' in run.stdout, run.stdout[-2000:]
    assert "lab_trunks[0].registrant: missing; set it" in run.stdout
    assert 'lab_trunks[0].registrar: ["vm-a"] is not a pbx host' in run.stdout
    assert "Action failed: ['The lab description has" in run.stdout  # the check failed, no filter raised
    assert "no host was changed" in run.stdout
    assert not (tmp_path / "credentials.yml").exists()


def test_site_says_what_is_wrong_with_a_numbered_pod_and_an_address_list(tmp_path: Path) -> None:
    run = site(tmp_path, pbx_inventory(tmp_path, pod2_vm_a={"lab_pod": 2, "lab_part": "vm-a", "lab_address": "192.0.2.155"},
                                   pod2_vm_b={"lab_pod": "pod2", "lab_part": "vm-b", "lab_address": ["192.0.2.156"]}))
    assert run.returncode != 0
    assert "pod2-vm-a: lab_pod: 2 is not a pod name" in run.stdout, run.stdout[-2000:]
    assert "pod pod2: pod2-vm-b: lab_address: ['192.0.2.156'] is not an IPv4 address" in run.stdout
    assert "Action failed: ['The lab description has" in run.stdout
    assert not (tmp_path / "credentials.yml").exists()
