"""The lab's settings and the per-host views of it (plugins/filter/lab_view.py), on the reference lab."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lab_view", ROOT / "plugins" / "filter" / "lab_view.py")
lab_view = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lab_view)

ADDRESSES = {"vm-a": "10.0.0.153", "vm-b": "10.0.0.154"}
PROVIDER = {"host": "sip.example.test", "port": 5600}


@pytest.fixture
def lab() -> dict[str, Any]:
    # The reference lab: every setting's declared default, with a provider of the tests' own.
    return lab_view.lab_description({"lab_provider_address": PROVIDER["host"]})


@pytest.fixture
def secrets(lab: dict[str, Any]) -> dict[str, dict[str, str]]:
    return lab_view.lab_missing_secrets({}, lab["lab_users"], lab["lab_trunks"])


def view(lab: dict[str, Any], secrets: dict[str, dict[str, str]], host: str) -> dict[str, Any]:
    return lab_view.lab_pbx_view(lab["lab_users"], lab["lab_trunks"], host, ADDRESSES, secrets)


def test_each_pbx_serves_only_its_own_users(lab, secrets) -> None:
    assert [u["name"] for u in view(lab, secrets, "vm-a")["users"]] == ["amine", "chhiny", "makuba", "kaiba"]
    assert [u["name"] for u in view(lab, secrets, "vm-b")["users"]] == ["chhinyleboss"]
    amine = view(lab, secrets, "vm-a")["users"][0]
    assert amine["secret"] == secrets["users"]["amine"] and amine["pickup_group"] == 1


def test_the_two_ends_of_the_a_b_trunk_play_opposite_sides(lab, secrets) -> None:
    a_side = {t["name"]: t for t in view(lab, secrets, "vm-a")["trunks"]}["trunk_A_vers_B"]
    b_side = {t["name"]: t for t in view(lab, secrets, "vm-b")["trunks"]}["trunk_A_vers_B"]
    assert (a_side["side"], a_side["peer_address"]) == ("registrar", ADDRESSES["vm-b"])
    assert (b_side["side"], b_side["peer_address"], b_side["peer_port"]) == ("registrant", ADDRESSES["vm-a"], 5060)
    assert a_side["secret"] == b_side["secret"] == secrets["trunks"]["trunk_A_vers_B"]


def test_the_provider_is_a_trunk_like_the_other(lab, secrets) -> None:
    provider = {t["name"]: t for t in view(lab, secrets, "vm-a")["trunks"]}["siptrunk"]
    assert provider["side"] == "registrant"
    assert (provider["peer_address"], provider["peer_port"], provider["username"]) == ("sip.example.test", 5600, "1040")
    assert provider["inbound"] == {"context": "lab-ivr", "extension": "s"}
    assert view(lab, secrets, "vm-a")["prefix_routes"] == [{"pattern": "_9.", "strip": 1, "trunk": "siptrunk"}]
    assert "siptrunk" not in {t["name"] for t in view(lab, secrets, "vm-b")["trunks"]}


def test_users_of_the_other_pbx_are_reached_over_the_trunk(lab, secrets) -> None:
    assert view(lab, secrets, "vm-a")["remote_routes"] == [
        {"extension": "900", "user": "chhinyleboss", "trunk": "trunk_A_vers_B"}]
    assert {r["extension"] for r in view(lab, secrets, "vm-b")["remote_routes"]} == {"100", "6002", "6003", "6004"}


def test_secrets_are_generated_only_where_missing(lab) -> None:
    known = {"users": {"amine": "chosen-by-the-instructor"}}
    fresh = lab_view.lab_missing_secrets(known, lab["lab_users"], lab["lab_trunks"])
    assert "amine" not in fresh["users"] and set(fresh["users"]) == {"chhiny", "makuba", "kaiba", "chhinyleboss"}
    assert set(fresh["trunks"]) == {"trunk_A_vers_B", "siptrunk"}
    assert all(pin.isdigit() for pin in fresh["pins"].values())
    assert len(set(fresh["users"].values())) == 4, "generated secrets must differ"
    everything = lab_view.lab_merge_secrets(known, fresh)
    assert lab_view.lab_missing_secrets(everything, lab["lab_users"], lab["lab_trunks"]) == {}


def test_a_later_secret_layer_wins(lab) -> None:
    merged = lab_view.lab_merge_secrets({"users": {"amine": "stored"}}, None, {"users": {"amine": "from-vault"}})
    assert merged["users"]["amine"] == "from-vault"


class _HostVars(dict):
    """hostvars as a filter sees them: host -> that host's variables."""


CLASS = _HostVars({
    "vm-a": {"lab_address": "10.0.1.153"},
    "vm-b": {"lab_address": "10.0.1.154"},
    "tester": {"lab_address": "10.0.1.110"},
    "p2a": {"lab_pod": "pod2", "lab_part": "vm-a", "lab_address": "10.0.2.153"},
    "p2b": {"lab_pod": "pod2", "lab_part": "vm-b", "lab_address": "10.0.2.154"},
})
PBXS = ["vm-a", "vm-b", "p2a", "p2b"]


def test_a_host_plays_its_part_of_its_pod_and_a_one_pod_lab_needs_neither() -> None:
    found = lab_view.lab_pods(list(CLASS), CLASS, PBXS)
    assert found["pod_of"] == {"vm-a": "pod1", "vm-b": "pod1", "tester": "pod1", "p2a": "pod2", "p2b": "pod2"}
    assert found["part_of"]["p2a"] == "vm-a" and found["part_of"]["vm-b"] == "vm-b"
    assert found["pods"]["pod2"] == {
        "hosts": {"vm-a": "p2a", "vm-b": "p2b"},
        "addresses": {"vm-a": "10.0.2.153", "vm-b": "10.0.2.154"},
        "pbx_parts": ["vm-a", "vm-b"],
        "first": "p2a",
    }
    assert found["pods"]["pod1"]["addresses"]["tester"] == "10.0.1.110"
    assert found["pods"]["pod1"]["pbx_parts"] == ["vm-a", "vm-b"]


def test_a_good_class_has_no_error() -> None:
    assert lab_view.lab_class_errors(list(CLASS), CLASS, PBXS) == []


def test_a_host_outside_the_lab_is_in_no_pod_and_a_pbx_needs_an_address() -> None:
    hostvars = _HostVars({**CLASS, "apt-cache": {}})
    assert "apt-cache" not in lab_view.lab_pods(list(hostvars), hostvars, PBXS)["pod_of"]
    assert lab_view.lab_class_errors(list(hostvars), hostvars, PBXS) == []
    hostvars = _HostVars({**CLASS, "p2b": {"lab_pod": "pod2", "lab_part": "vm-b"}})
    errors = lab_view.lab_class_errors(list(hostvars), hostvars, PBXS)
    assert errors == ["pod pod2: p2b: lab_address: missing; give the PBX the address its phones"
                      " and its pod's other PBX reach it at"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # A pod with one machine.
        ({"p2b": None}, "pod pod2: lab_part: no machine plays 'vm-b'"),
        # A machine in two pods (its address and its SSH address are both the other's).
        ({"p2a": {"lab_pod": "pod2", "lab_part": "vm-a", "lab_address": "10.0.1.153"}},
         "pod pod2: p2a: lab_address: '10.0.1.153' is also the lab_address of vm-a (pod pod1)"),
        ({"p2a": {"lab_pod": "pod2", "lab_part": "vm-a", "lab_address": "10.0.2.153", "ansible_host": "lab-a"},
          "vm-a": {"lab_address": "10.0.1.153", "ansible_host": "lab-a"}},
         "pod pod2: p2a: ansible_host: 'lab-a' is also the ansible_host of vm-a (pod pod1)"),
        # Two machines of one pod playing one part.
        ({"p2b": {"lab_pod": "pod2", "lab_part": "vm-a", "lab_address": "10.0.2.154"}},
         "pod pod2: lab_part: p2a, p2b all play 'vm-a'"),
        ({"p2a": {"lab_pod": "pod 2!", "lab_part": "vm-a", "lab_address": "10.0.2.153"}},
         "p2a: lab_pod: 'pod 2!' is not a pod name"),
    ],
)
def test_a_bad_class_is_refused_naming_the_pod_and_the_variable(change, expected) -> None:
    hostvars = _HostVars({**CLASS, **{k: v for k, v in change.items() if v is not None}})
    for gone in [k for k, v in change.items() if v is None]:
        del hostvars[gone]
    pbxs = [h for h in PBXS if h in hostvars]
    errors = lab_view.lab_class_errors(list(hostvars), hostvars, pbxs)
    assert any(error.startswith(expected) for error in errors), errors


def test_secrets_are_stored_per_pod_and_a_one_lab_file_stays_pod1s() -> None:
    legacy = {"users": {"amine": "old-secret"}, "pins": {"amine": "1234"}}
    assert lab_view.lab_pod_secrets(legacy, "pod1")["users"] == {"amine": "old-secret"}
    assert lab_view.lab_pod_secrets(legacy, "pod2")["users"] == {}
    stored = lab_view.lab_store_pod_secrets(legacy, {"pod2": {"users": {"amine": "new-secret"}}})
    assert stored == {"pods": {"pod1": {"users": {"amine": "old-secret"}, "pins": {"amine": "1234"}},
                               "pod2": {"users": {"amine": "new-secret"}}}}
    again = lab_view.lab_store_pod_secrets(stored, {"pod2": {"pins": {"amine": "9999"}}})
    assert again["pods"]["pod2"] == {"users": {"amine": "new-secret"}, "pins": {"amine": "9999"}}
    assert lab_view.lab_pod_secrets(again, "pod1")["users"] == {"amine": "old-secret"}


def test_the_provider_is_known_by_its_address_and_a_pbx_by_address_and_port(lab, secrets) -> None:
    a = {t["name"]: t for t in view(lab, secrets, "vm-a")["trunks"]}
    b = {t["name"]: t for t in view(lab, secrets, "vm-b")["trunks"]}
    assert a["siptrunk"]["match"] == PROVIDER["host"]
    assert a["trunk_A_vers_B"]["match"] == "10.0.0.154:5060"
    assert b["trunk_A_vers_B"]["match"] == "10.0.0.153:5060"


def test_an_inventory_overrides_any_default_and_each_pod_gets_its_provider_account() -> None:
    given = lab_view.lab_description({"lab_ring_seconds": 7, "lab_provider_username": "1041",
                                      "lab_provider_address": "10.0.2.200"})
    assert given["lab_ring_seconds"] == 7
    assert given["lab_echo_extension"] == "600"  # the reference lab's, declared once
    siptrunk = next(t for t in given["lab_trunks"] if t["name"] == "siptrunk")
    assert siptrunk["username"] == "1041" and siptrunk["registrar"] == {"host": "10.0.2.200", "port": 5600}
    assert "username" not in given["lab_trunks"][0] and given["lab_trunks"][0]["registrar"] == "vm-a"
    assert lab_view.lab_description({})["lab_trunks"][1]["username"] == "1040"


def test_every_setting_is_declared_with_a_type_and_a_meaning() -> None:
    for name, spec in lab_view.lab_settings().items():
        assert name.startswith("lab_") and spec.get("type") and spec.get("description"), name
        if "default" in spec and spec["default"] is not None:
            kinds = {"int": int, "str": str, "bool": bool, "list": list, "dict": dict, "path": str}
            assert isinstance(spec["default"], kinds[spec["type"]]), name


@pytest.mark.parametrize(
    ("name", "fix"),
    [("lab_user", "did you mean lab_users?"), ("lab_secret", "did you mean lab_secrets_file?"),
     ("lab_ring_second", "did you mean lab_ring_seconds?"), ("lab_colour", "remove it")],
)
def test_a_misspelt_or_unknown_setting_is_named(name: str, fix: str) -> None:
    errors = lab_view.lab_unknown_settings(["lab_users", "lab_ring_seconds", name])
    assert len(errors) == 1 and errors[0].startswith(f"{name}: not a lab setting; {fix}"), errors


def test_the_role_gets_every_setting_and_what_is_worked_out_for_its_pbx(lab, secrets) -> None:
    a = lab_view.lab_host_view(lab, "vm-a", ADDRESSES, secrets, "/inventory")
    b = lab_view.lab_host_view(lab, "vm-b", ADDRESSES, secrets, "/inventory")
    assert a["ring_seconds"] == 20 and a["echo_extension"] == "600"
    assert [u["name"] for u in b["users"]] == ["chhinyleboss"]
    assert a["services_here"] and not b["services_here"]
    assert a["parking"] == {"first_slot": "701", "last_slot": "720"} and b["parking"] == {}
    assert set(a["prompts"]) == {"menu1", "menu2"} and b["prompts"] == {}
    assert a["prompt_files_dir"] == "/inventory"
    assert "secrets" not in a and all("secret" in u for u in a["users"])


def test_the_class_is_planned_in_one_pass_each_pod_with_its_own_secrets() -> None:
    hostvars = _HostVars({**CLASS, "p2a": {**CLASS["p2a"], "lab_provider_username": "1041", "lab_ring_secnds": 3}})
    pods = lab_view.lab_pods(list(hostvars), hostvars, PBXS)
    stored = {"pods": {"pod1": {"users": {"amine": "stored-amine-secret"}}}}
    plan = lab_view.lab_class_plan(PBXS, hostvars, pods, stored)
    assert set(plan) == set(PBXS)
    assert plan["p2a"]["pod"] == "pod2" and plan["p2a"]["part"] == "vm-a"
    assert plan["p2a"]["addresses"] == {"vm-a": "10.0.2.153", "vm-b": "10.0.2.154"}
    assert plan["p2a"]["unknown"] == ["lab_ring_secnds: not a lab setting; did you mean lab_ring_seconds?"]
    assert plan["p2a"]["description"]["lab_trunks"][1]["username"] == "1041"
    assert plan["vm-a"]["known_secrets"]["users"] == {"amine": "stored-amine-secret"}
    new = lab_view.lab_new_pod_secrets(plan, pods)
    assert "amine" not in new["pod1"]["users"] and "amine" in new["pod2"]["users"]
    hosts = lab_view.lab_host_views(plan, stored, new)
    # A pod's two PBXs agree on its secrets; the pods do not share any.
    assert hosts["p2a"]["secrets"] == hosts["p2b"]["secrets"]
    assert hosts["vm-a"]["secrets"]["users"]["amine"] == "stored-amine-secret"
    assert hosts["p2a"]["secrets"]["users"]["amine"] != "stored-amine-secret"
    assert [u["name"] for u in hosts["p2b"]["view"]["users"]] == ["chhinyleboss"]
    assert hosts["p2a"]["view"]["trunks"][0]["match"] == "10.0.2.154:5060"


def test_a_pod_that_chose_its_secrets_gets_none_generated() -> None:
    hostvars = _HostVars({name: {**vars_, "lab_generate_secrets": False} for name, vars_ in CLASS.items()})
    pods = lab_view.lab_pods(list(hostvars), hostvars, PBXS)
    plan = lab_view.lab_class_plan(PBXS, hostvars, pods, {})
    assert lab_view.lab_new_pod_secrets(plan, pods) == {}
