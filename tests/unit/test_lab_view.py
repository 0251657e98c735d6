"""The per-host views of the lab description (plugins/filter/lab_view.py), on the reference lab."""

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
    description = yaml.safe_load((ROOT / "playbooks" / "group_vars" / "all" / "lab.yml").read_text())
    for trunk in description["lab_trunks"]:  # the provider's address is an inventory template
        if isinstance(trunk["registrar"], dict):
            trunk["registrar"] = dict(PROVIDER)
    return description


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


def test_the_phone_card_tells_each_user_where_to_register(lab) -> None:
    card = "\n".join(lab_view.lab_phone_card(lab["lab_users"], ADDRESSES, "/x/credentials.yml"))
    assert "amine          100        10.0.0.153:5060 (vm-a)" in card
    assert "chhinyleboss   900        10.0.0.154:5060 (vm-b)" in card
    assert "/x/credentials.yml" in card
