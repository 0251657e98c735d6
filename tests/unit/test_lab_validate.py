"""Unit tests of plugins/filter/lab_validate.py (the lab_errors filter), with plain pytest.

The reference lab (every setting's default, roles/asterisk/meta/argument_specs.yml) must validate; each bad description is a small
mutation of it and must be reported at the variable path that names the mistake.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PBX = ["vm-a", "vm-b"]


def _load_plugin() -> Any:
    spec = importlib.util.spec_from_file_location(
        "lab_validate", ROOT / "plugins" / "filter" / "lab_validate.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


lab_validate = _load_plugin()


def _load_view() -> Any:
    spec = importlib.util.spec_from_file_location("lab_view", ROOT / "plugins" / "filter" / "lab_view.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

lab_errors = lab_validate.lab_errors
REFERENCE = _load_view().lab_description({})  # every setting's declared default: the reference lab
STRONG = {  # chosen secrets, as an instructor would put them in Ansible Vault
    "users": {u["name"]: f"Vx9-{u['name']}-k2Lq8Wz" for u in REFERENCE["lab_users"]},
    "trunks": {t["name"]: "Tr7-Qm4zP9xK2wB" for t in REFERENCE["lab_trunks"]},
    "pins": {u["name"]: "482913" for u in REFERENCE["lab_users"]},
}
# Every code of the spec's dialplan is a lab variable now (lab_voicemail_extension...);
# lab_service_codes adds codes of the instructor's own.
SPEC_SERVICE_CODES = {"directory": "411"}


def reference(**changes: Any) -> dict[str, Any]:
    """The reference lab, as the playbook hands it to the filter, with `changes`."""
    lab = copy.deepcopy(REFERENCE)
    lab.update(copy.deepcopy(changes))
    return lab


def chosen(**changes: Any) -> dict[str, Any]:
    """The reference lab with every secret chosen in the inventory, none generated."""
    return reference(
        **{"lab_generate_secrets": False, "lab_secrets": STRONG, **changes}
    )


def paths(errors: list[str]) -> set[str]:
    return {error.split(": ", 1)[0] for error in errors}


Mutation = Callable[[dict[str, Any]], Any]


def top(**changes: Any) -> Mutation:
    return lambda lab: lab.update(copy.deepcopy(changes))


def user(i: int, **changes: Any) -> Mutation:
    return lambda lab: lab["lab_users"][i].update(changes)


def trunk(i: int, **changes: Any) -> Mutation:
    return lambda lab: lab["lab_trunks"][i].update(changes)


def secret(kind: str, name: str, value: Any) -> Mutation:
    return lambda lab: lab["lab_secrets"][kind].__setitem__(name, value)


def with_(**changes: Any) -> Callable[[], dict[str, Any]]:
    return lambda: reference(**changes)


def nothing(lab: dict[str, Any]) -> None:
    """The base lab alone is the mistake."""


def rename_key(i: int, old: str, new: str) -> Mutation:
    return lambda lab: lab["lab_users"][i].update({new: lab["lab_users"][i].pop(old)})


USER_SECRETS = tuple(f"users.{name}" for name in STRONG["users"])
ITSP = {"host": "sip.kaiba.corp", "port": 5600}

# (id, base lab, mutation, every path reported, a fragment of the messages or "")
BAD: list[tuple[str, Callable[[], dict], Mutation, tuple[str, ...], str]] = [
    ("users-empty", reference, top(lab_users=[]), ("lab_users",), "non-empty"),
    ("users-not-list", reference, top(lab_users="amine"), ("lab_users",), ""),
    ("user-not-mapping", reference, lambda d: d["lab_users"].__setitem__(1, "chhiny"), ("lab_users[1]",), ""),
    ("user-name-space", reference, user(0, name="ami ne"), ("lab_users[0].name",), '"ami ne"'),
    ("user-name-twice", reference, user(3, name="amine"), ("lab_users[3].name",), "lab_users[0] (amine)"),
    ("user-extension-twice", reference, user(4, extension="100"), ("lab_users[4].extension",),
     'lab_users[4].extension: "100" is already the extension of lab_users[0] (amine);'
     " give each user its own extension"),
    ("user-extension-int", reference, user(0, extension=100), ("lab_users[0].extension",), "quote"),
    ("user-extension-short", reference, user(0, extension="1"), ("lab_users[0].extension",), ""),
    ("user-extension-long", reference, user(0, extension="123456789"), ("lab_users[0].extension",), ""),
    ("user-extension-star", reference, user(0, extension="*100"), ("lab_users[0].extension",), ""),
    ("user-extension-is-echo", reference, user(2, extension="600"), ("lab_users[2].extension",),
     "lab_echo_extension"),
    ("user-extension-is-service-code", with_(lab_service_codes={"pbx": "6002"}), nothing,
     ("lab_users[1].extension",), "lab_service_codes.pbx"),
    ("user-no-host", reference, lambda d: d["lab_users"][0].pop("host"), ("lab_users[0].host",), "missing"),
    ("user-unknown-host", reference, user(0, host="vm-c"), ("lab_users[0].host",), "vm-a, vm-b"),
    ("user-key-typo", reference, rename_key(1, "extension", "extention"),
     ("lab_users[1].extension", "lab_users[1].extention"), "did you mean extension?"),
    ("trunks-not-list", reference, top(lab_trunks={}), ("lab_trunks",), ""),
    ("trunk-name-space", reference, trunk(0, name="trunk A"), ("lab_trunks[0].name",), ""),
    ("trunk-name-is-user", reference, trunk(0, name="amine"), ("lab_trunks[0].name",), "lab_users[0]"),
    ("trunk-name-twice", reference, lambda d: d["lab_trunks"].insert(1, dict(d["lab_trunks"][0])),
     ("lab_trunks[1].name",), ""),
    ("trunk-same-host", reference, trunk(0, registrar="vm-b"), ("lab_trunks[0].registrar",), "registrant"),
    ("trunk-unknown-registrant", reference, trunk(0, registrant="vm-z"), ("lab_trunks[0].registrant",), ""),
    ("trunk-no-registrar", reference, lambda d: d["lab_trunks"][0].pop("registrar"),
     ("lab_trunks[0].registrar",), "missing"),
    ("trunk-provider-no-host", reference, trunk(0, registrar={"port": 5600}),
     ("lab_trunks[0].registrar.host",), "missing"),
    ("trunk-provider-bad-port", reference, trunk(0, registrar={**ITSP, "port": 70000}),
     ("lab_trunks[0].registrar.port",), "70000"),
    ("trunk-username-int", reference, trunk(1, username=1040), ("lab_trunks[1].username",), '"1040"'),
    ("trunk-dial-prefix-not-digits", reference, trunk(1, dial_prefix="9#"), ("lab_trunks[1].dial_prefix",), ""),
    ("trunk-dial-prefix-is-a-service-pattern", with_(lab_service_codes={"outbound": "_9."}), nothing,
     ("lab_trunks[1].dial_prefix",), "lab_service_codes.outbound"),
    ("trunk-inbound-no-extension", reference, trunk(1, inbound={"context": "lab-ivr"}),
     ("lab_trunks[1].inbound.extension",), "missing"),
    ("trunk-inbound-not-mapping", reference, trunk(1, inbound="lab-ivr"), ("lab_trunks[1].inbound",), ""),
    ("video-codec-is-audio", reference, top(lab_video_codecs=["h264", "ulaw"]), ("lab_video_codecs[1]",),
     "not a video codec"),
    ("video-codec-unknown", reference, top(lab_video_codecs=["h246"]), ("lab_video_codecs[0]",), ""),
    ("trunk-provider-key-typo", reference, trunk(0, registrar={"hots": "sip.kaiba.corp"}),
     ("lab_trunks[0].registrar.host", "lab_trunks[0].registrar.hots"), "did you mean host?"),
    ("echo-not-digits", reference, top(lab_echo_extension="6OO"), ("lab_echo_extension",), '"6OO"'),
    ("echo-int", reference, top(lab_echo_extension=600), ("lab_echo_extension",), ""),
    ("ring-zero", reference, top(lab_ring_seconds=0), ("lab_ring_seconds",), "1 to 300"),
    ("ring-bool", reference, top(lab_ring_seconds=True), ("lab_ring_seconds",), ""),
    ("codecs-empty", reference, top(lab_codecs=[]), ("lab_codecs",), ""),
    ("codec-unknown", reference, top(lab_codecs=["ulaw", "g7299"]), ("lab_codecs[1]",), '"g7299"'),
    ("codec-upper-case", reference, top(lab_codecs=["ulaw", "H264"]), ("lab_codecs[1]",), "write h264"),
    ("codec-twice", reference, top(lab_codecs=["ulaw", "alaw", "ulaw"]), ("lab_codecs[2]",), "twice"),
    ("sip-port-string", reference, top(lab_sip_port="5060"), ("lab_sip_port",), ""),
    ("sip-port-in-rtp", reference, top(lab_sip_port=10010), ("lab_sip_port",), "10000-10999"),
    ("ban-after-zero", reference, top(lab_ban_after_failures=0), ("lab_ban_after_failures",), "from 1"),
    ("ban-seconds-text", reference, top(lab_ban_seconds="10m"), ("lab_ban_seconds",), ""),
    ("sip-network-typo", reference, top(lab_sip_allowed_networks=["172.30.0/24"]),
     ("lab_sip_allowed_networks[0]",), "10.0.0.0/24"),
    ("sip-networks-not-list", reference, top(lab_sip_allowed_networks="10.0.0.0/8"), ("lab_sip_allowed_networks",), ""),
    ("rtp-start-odd", reference, top(lab_rtp_port_start=10001), ("lab_rtp_port_start",), "use 10000"),
    ("rtp-start-low", reference, top(lab_rtp_port_start=1000), ("lab_rtp_port_start", "lab_sip_port"), ""),
    ("rtp-end-before-start", reference, top(lab_rtp_port_end=9000), ("lab_rtp_port_end",), ""),
    ("rtp-too-few-ports", reference, top(lab_rtp_port_end=10004), ("lab_rtp_port_end",), ""),
    ("required-missing", reference, lambda d: d.pop("lab_sip_port"), ("lab_sip_port",), "missing"),
    ("generate-not-bool", reference, top(lab_generate_secrets="yes"), ("lab_generate_secrets",), ""),
    ("secret-missing", chosen, lambda d: d["lab_secrets"]["users"].pop("makuba"),
     ("users.makuba",), "lab_generate_secrets"),
    ("secrets-none-chosen", with_(lab_generate_secrets=False), nothing,
     USER_SECRETS + ("trunks.trunk_A_vers_B", "trunks.siptrunk")
     + tuple(f"pins.{name}" for name in STRONG["pins"]), ""),
    ("secret-empty", chosen, secret("users", "amine", ""), ("users.amine",), "non-empty"),
    ("secret-not-string", chosen, secret("users", "amine", 123456789012345), ("users.amine",), ""),
    ("secret-short", chosen, secret("users", "kaiba", "k4iba-pw"), ("users.kaiba",),
     "shorter than 12"),
    ("secret-from-report", chosen, secret("trunks", "trunk_A_vers_B", "azerty"),
     ("trunks.trunk_A_vers_B",), "report"),
    ("secret-is-user-name", chosen, secret("users", "chhinyleboss", "ChhinyLeBoss"),
     ("users.chhinyleboss",), "name"),
    ("secret-line-break", chosen, secret("users", "amine", "first-line\nsecond-line"),
     ("users.amine",), ""),
    ("service-code-not-code", with_(lab_service_codes={"pickup": "star8"}), nothing,
     ("lab_service_codes.pickup",), ""),
    ("service-code-twice", with_(lab_service_codes={"echo_again": "600"}), nothing,
     ("lab_service_codes.echo_again",), "lab_echo_extension"),
    ("language-unavailable", with_(lab_language="de"), nothing, ("lab_language",), "en, fr"),
    ("language-not-in-given-list", with_(lab_language="fr", lab_available_languages=["en"]), nothing,
     ("lab_language",), ""),
    # Call features (conference, parking, pickup, queues).
    ("user-extension-is-parking-slot", reference, user(1, extension="705"), ("lab_users[1].extension",),
     "lab_parking_slots"),
    ("user-extension-is-queue", reference, user(1, extension="7001"), ("lab_users[1].extension",),
     "lab_queues[0].extension (queue support)"),
    ("pickup-code-not-code", with_(lab_pickup_code="star8"), nothing, ("lab_pickup_code",), '"*8"'),
    ("pickup-code-is-queue-code", with_(lab_pickup_code="*71"), nothing, ("lab_queue_login_code",),
     "lab_pickup_code"),
    ("pickup-group-too-big", reference, user(0, pickup_group=64), ("lab_users[0].pickup_group",), "0 to 63"),
    ("parking-slots-backwards", with_(lab_parking_slots="720-701"), nothing, ("lab_parking_slots",), ""),
    ("park-extension-in-slots", with_(lab_park_extension="710"), nothing, ("lab_parking_slots",),
     "lab_park_extension"),
    ("transfer-keys-letters", with_(lab_blind_transfer_keys="#x"), nothing, ("lab_blind_transfer_keys",), ""),
    ("transfer-keys-same", with_(lab_attended_transfer_keys="#1"), nothing, ("lab_attended_transfer_keys",),
     "lab_blind_transfer_keys"),
    ("conference-menu-same-keys", with_(lab_conference_menu={"mute": "1", "leave": "1"}), nothing,
     ("lab_conference_menu.leave",), ""),
    ("conference-room-twice", with_(lab_conference_rooms=[{"name": "main", "extension": "6"},
                                                          {"name": "main", "extension": "66"}]),
     nothing, ("lab_conference_rooms[1].name",), ""),
    ("queue-member-unknown", with_(lab_queues=[{"name": "support", "extension": "7001", "members": ["bob"]}]),
     nothing, ("lab_queues[0].members[0]",), "lab_users"),
    ("queue-member-on-other-pbx", with_(lab_queues=[{"name": "support", "extension": "7001",
                                                    "members": ["chhinyleboss"]}]),
     nothing, ("lab_queues[0].members[0]",), "lab_services_host (vm-a)"),
    ("queue-named-general", with_(lab_queues=[{"name": "general", "extension": "7001", "members": ["amine"]}]),
     nothing, ("lab_queues[0].name",), "reserved"),
    ("queue-no-members", with_(lab_queues=[{"name": "support", "extension": "7001", "members": []}]),
     nothing, ("lab_queues[0].members",), ""),
    ("pin-secret-letters", chosen, secret("pins", "amine", "12ab"), ("pins.amine",), "digits"),
    ("pin-secret-missing", chosen, lambda d: d["lab_secrets"]["pins"].pop("kaiba"),
     ("pins.kaiba",), "lab_generate_secrets"),
    ("user-extension-is-voicemail", reference, user(0, extension="8100"), ("lab_users[0].extension",),
     "lab_moh_extension"),
    ("followme-unknown-target", reference, user(2, followme=["6009"]), ("lab_users[2].followme[0]",), ""),
    ("followme-own-extension", reference, user(2, followme=["6003"]), ("lab_users[2].followme[0]",), ""),
    ("followme-not-list", reference, user(2, followme="6004"), ("lab_users[2].followme",), ""),
    ("services-host-unknown", with_(lab_services_host="vm-c"), nothing, ("lab_services_host",), "vm-a"),
    ("operator-unknown", with_(lab_operator="chiny"), nothing, ("lab_operator",), ""),
    ("ivr-option-unknown-user", with_(lab_ivr_options={"1": "amin"}), nothing, ("lab_ivr_options.1",), ""),
    ("ivr-option-not-a-key", with_(lab_ivr_options={"12": "amine"}), nothing, ("lab_ivr_options.12",), ""),
    ("ivr-prompt-not-a-prompt", with_(lab_ivr_prompt="menu3"), nothing, ("lab_ivr_prompt",), "menu1"),
    ("prompt-text-and-file", with_(lab_prompts={"menu1": {"text": "x", "file": "m.wav"},
                                                "menu2": {"file": "m.mp3"}}), nothing,
     ("lab_prompts.menu1", "lab_prompts.menu2.file"), ""),
    ("prompt-file-climbs-out", with_(lab_prompts={"menu1": {"file": "prompts/../../../etc/menu.wav"},
                                                 "menu2": {"file": "/etc/menu.wav"}}), nothing,
     ("lab_prompts.menu1.file", "lab_prompts.menu2.file"), "out of the inventory's folder"),
    ("record-prefix-not-digits", with_(lab_record_prompt_prefix="#4"), nothing, ("lab_record_prompt_prefix",), ""),
    ("moh-seconds-zero", with_(lab_moh_seconds=0), nothing, ("lab_moh_seconds",), ""),
]  # fmt: skip


@pytest.mark.parametrize(
    "base, mutate, expected, fragment",
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_description_is_reported_at_its_path(
    base: Callable[[], dict], mutate: Mutation, expected: tuple[str, ...], fragment: str
) -> None:
    lab = base()
    mutate(lab)
    errors = lab_errors(lab, PBX)
    assert paths(errors) == set(expected), errors
    assert fragment in "\n".join(errors)
    assert all("; " in error for error in errors), "every message gives a fix"


@pytest.mark.parametrize(
    "lab",
    [
        reference(),
        chosen(),
        reference(lab_allow_weak_secrets=True, lab_secrets={
            "users": {"amine": "azerty", "kaiba": "kaiba"}, "trunks": {"trunk_A_vers_B": "test"},
        }),
        reference(lab_service_codes=SPEC_SERVICE_CODES, lab_language="fr"),
        reference(lab_codecs=["ulaw", "alaw", "h264", "vp8"], lab_trunks=REFERENCE["lab_trunks"][:1] + [
            {"name": "siptrunk", "registrant": "vm-a", "registrar": ITSP},  # no option: all defaults
        ]),
    ],
    ids=["reference", "reference-chosen-secrets", "weak-allowed", "optional-keys", "itsp-trunk"],
)  # fmt: skip
def test_good_description_has_no_error(lab: dict[str, Any]) -> None:
    assert lab_errors(lab, PBX) == []


def test_a_pattern_code_leaves_exact_user_extensions_alone() -> None:
    """`_9.` (out through the provider) and `_4.` (record a prompt) do not shadow 900 or
    4003: Asterisk tries an exact extension before a pattern."""
    lab = reference(lab_service_codes=SPEC_SERVICE_CODES)
    lab["lab_users"][2]["extension"] = "4003"
    assert lab["lab_users"][4]["extension"] == "900"
    assert lab_errors(lab, PBX) == []
    lab["lab_users"][2]["extension"] = "9"  # but an exact code still clashes
    assert paths(lab_errors(lab, PBX)) == {"lab_users[2].extension"}


def test_a_trunk_dial_prefix_reserves_its_pattern() -> None:
    codes = lab_validate.service_codes(reference())
    assert ("lab_trunks[1].dial_prefix", "out through siptrunk", "_9.") in codes


def test_every_error_is_reported_at_once() -> None:
    lab = chosen(lab_ring_seconds=0, lab_codecs=["ulaw", "mp3"], lab_sip_port=10500)
    lab["lab_users"][1]["extension"] = "100"
    lab["lab_trunks"][0]["registrar"] = "vm-b"
    lab["lab_secrets"]["users"]["kaiba"] = "short"
    assert paths(lab_errors(lab, PBX)) == {
        "lab_ring_seconds",
        "lab_codecs[1]",
        "lab_sip_port",
        "lab_users[1].extension",
        "lab_trunks[0].registrar",
        "users.kaiba",
    }


def test_no_secret_or_pin_value_appears_in_messages() -> None:
    values = ["Zq7short", "vitrygtr", "azerty", "bad\nSecretValue123", "Leak-In-A-List"]
    lab = chosen()
    lab["lab_secrets"]["pins"].update(amine="31415926535897", kaiba="pi31", makuba="2718x")
    lab["lab_secrets"]["users"].update(
        amine=values[0], chhiny=values[1], makuba=values[3]
    )
    lab["lab_secrets"]["users"]["kaiba"] = [values[4]]
    lab["lab_secrets"]["trunks"]["trunk_A_vers_B"] = values[2]
    errors = lab_errors(lab, PBX)
    assert len(errors) == 8, errors
    text = "\n".join(errors)
    for value in values + ["31415926535897", "pi31", "2718x"]:
        assert value not in text


def test_plugin_is_an_ansible_filter() -> None:
    filters = lab_validate.FilterModule().filters()
    assert filters["lab_errors"] is lab_errors
    assert lab_errors(["not", "a", "mapping"], PBX)

