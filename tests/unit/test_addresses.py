"""Where the lab sends calls: machines' addresses, the provider's host, where a trunk's
calls land. Each bad one is refused on the controller, naming the variable, its host or pod,
the value and the fix (plugins/filter/lab_view.py lab_class_errors for the inventory's
addresses, plugins/filter/lab_validate.py lab_errors for the lab description).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from entry_point import filter_plugin, pbx_inventory, site

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "roles" / "asterisk" / "templates" / "etc" / "asterisk"
PBX = ["vm-a", "vm-b"]


lab_validate, lab_view = filter_plugin("lab_validate"), filter_plugin("lab_view")


def errors_of(**given: Any) -> list[str]:
    """lab_errors of the reference lab with `given` set in the inventory."""
    return lab_validate.lab_errors(lab_view.lab_description(given), PBX)


def trunks(i: int, **changes: Any) -> list[dict[str, Any]]:
    """The reference lab's trunks, trunk `i` changed."""
    found = copy.deepcopy(lab_view.lab_description({})["lab_trunks"])
    found[i].update(changes)
    return found


def class_errors(**vm_a: Any) -> list[str]:
    hosts = {"vm-a": {"lab_address": "192.0.2.153", **vm_a}, "vm-b": {"lab_address": "192.0.2.154"}}
    return lab_view.lab_class_errors(list(hosts), hosts, PBX)


# ------------------------------------------------------------------ the provider's host

# (value of lab_provider_address, a fragment of the one message that names it)
BAD_PROVIDER_HOSTS = [
    ("sip.kaiba.corp:5600", 'gives a port too; write the host alone, "sip.kaiba.corp",'),
    ("192.0.2.300", "is not an IP address (4 numbers from 0 to 255)"),
    ("sip.kaiba.corp\n[evil]\ntype=endpoint", "holds a space or line break"),
    ("sip kaiba.corp", "holds a space or line break"),
    ("sip:sip.kaiba.corp", "is not an IP address or a DNS host name"),
    ("-sip.kaiba.corp", "is not an IP address or a DNS host name"),
    ("sip..kaiba.corp", "is not an IP address or a DNS host name"),
    ("a" * 64 + ".corp", "is not an IP address or a DNS host name"),
]


@pytest.mark.parametrize(("value", "fragment"), BAD_PROVIDER_HOSTS, ids=[v for v, _ in BAD_PROVIDER_HOSTS])
def test_a_bad_provider_address_is_refused_once_by_its_own_name(value: str, fragment: str) -> None:
    errors = errors_of(lab_provider_address=value)
    assert len(errors) == 1, errors  # not again as each trunk's registrar.host, its copy
    assert errors[0].startswith(f"lab_provider_address: {lab_validate.show(value)} "), errors
    assert fragment in errors[0]
    assert "\n" not in errors[0]  # a line break is shown escaped, never printed


@pytest.mark.parametrize(("value", "fragment"), BAD_PROVIDER_HOSTS, ids=[v for v, _ in BAD_PROVIDER_HOSTS])
def test_a_bad_registrar_host_is_refused_by_its_path(value: str, fragment: str) -> None:
    errors = errors_of(lab_trunks=trunks(1, registrar={"host": value, "port": 5600}))
    assert [e.split(": ", 1)[0] for e in errors] == ["lab_trunks[1].registrar.host"], errors
    assert fragment in errors[0]


def test_a_host_with_its_port_is_told_where_the_port_goes() -> None:
    [error] = errors_of(lab_trunks=trunks(1, registrar={"host": "sip.kaiba.corp:5600"}))
    assert error == (
        'lab_trunks[1].registrar.host: "sip.kaiba.corp:5600" gives a port too; write the host alone,'
        ' "sip.kaiba.corp", and the port in lab_trunks[1].registrar.port: 5600'
    )


@pytest.mark.parametrize("value", ["sip.kaiba.corp", "10.0.2.200", "provider-1", "SIP.Example.COM"])
def test_an_ip_address_or_a_dns_name_is_a_provider_host(value: str) -> None:
    assert errors_of(lab_provider_address=value) == []
    assert errors_of(lab_trunks=trunks(1, registrar={"host": value, "port": 5600})) == []


@pytest.mark.parametrize("value", ["", None])
def test_an_empty_provider_address_leaves_each_trunk_its_own(value: Any) -> None:
    assert errors_of(lab_provider_address=value) == []


def test_a_provider_username_is_refused_by_its_own_name() -> None:
    assert errors_of(lab_provider_username="10 40") == [
        'lab_provider_username: "10 40" is not a SIP user name; quote it: "1040"'
    ]


# ------------------------------------------------------------------- machines' addresses


@pytest.mark.parametrize(
    "value", ["192.0.2.354", "192.0.2", "vm-a.lab", "10.0.0.1/24", ["192.0.2.153"], 3221226137, "2001:db8::153"]
)
def test_a_lab_address_that_is_no_ip_address_is_refused_naming_pod_and_host(value: Any) -> None:
    assert class_errors(lab_address=value) == [
        f"pod pod1: vm-a: lab_address: {value!r} is not an IPv4 address; write the machine's"
        " address, e.g. 192.0.2.153"
    ]


@pytest.mark.parametrize("value", ["192.0.2.153", "10.0.7.165"])
def test_an_ipv4_lab_address_is_accepted(value: str) -> None:
    assert class_errors(lab_address=value) == []


def test_the_address_of_a_machine_that_is_no_pbx_is_checked_too() -> None:
    hosts = {"vm-a": {"lab_address": "192.0.2.153"}, "vm-b": {"lab_address": "192.0.2.154"},
             "tester": {"lab_address": "192.0.2.310"}}
    assert lab_view.lab_class_errors(list(hosts), hosts, PBX) == [
        "pod pod1: tester: lab_address: '192.0.2.310' is not an IPv4 address; write the machine's"
        " address, e.g. 192.0.2.153"
    ]


# ------------------------------------------------------------- where a trunk's calls land


def inbound_errors(i: int, context: str, **lab: Any) -> list[str]:
    return errors_of(lab_trunks=trunks(i, inbound={"context": context, "extension": "s"}), **lab)


def test_a_misspelt_inbound_context_is_refused_with_the_one_meant() -> None:
    assert inbound_errors(1, "lab_ivr") == [
        'lab_trunks[1].inbound.context: "lab_ivr" is no context of the lab\'s dialplan; did you mean lab-ivr?'
    ]


def test_an_inbound_context_the_dialplan_lacks_is_refused_listing_those_it_has() -> None:
    [error] = inbound_errors(1, "nowhere")
    assert error.startswith('lab_trunks[1].inbound.context: "nowhere" is no context of the lab\'s dialplan;'
                            " use one of from-trunk, ")
    assert all(context in error for context in lab_validate.INBOUND_CONTEXTS)


def test_a_menu_of_the_services_host_is_refused_on_a_trunk_that_lands_elsewhere() -> None:
    assert inbound_errors(0, "lab-ivr") == [
        'lab_trunks[0].inbound.context: "lab-ivr" exists on lab_services_host (vm-a) only, and the'
        " trunk's calls arrive on vm-b; choose a context every PBX has, e.g. from-trunk"
    ]
    [error] = inbound_errors(1, "lab-ivr", lab_services_host="vm-b", lab_queues=[])
    assert error.endswith("arrive on vm-a; make vm-b its registrant, or choose a context every PBX has,"
                          " e.g. from-trunk")


def test_a_providers_calls_may_not_land_where_they_could_call_out_again() -> None:
    for context in ("from-internal", "lab-outside"):
        [error] = inbound_errors(1, context)
        assert error.startswith(f'lab_trunks[1].inbound.context: "{context}" dials out through the lab\'s trunks')
    assert inbound_errors(0, "from-internal") == []  # between two PBXs of the lab it may


@pytest.mark.parametrize("context", sorted(lab_validate.INBOUND_CONTEXTS))
def test_each_inbound_context_is_defined_by_the_template_named_for_it(context: str) -> None:
    template = (TEMPLATES / lab_validate.INBOUND_CONTEXTS[context]).read_text(encoding="utf-8")
    assert re.search(rf"^\[{re.escape(context)}\]$", template, re.MULTILINE)
    if context in lab_validate.SERVICES_HOST_CONTEXTS:
        assert inbound_errors(1, context) == []  # the provider's trunk ends on vm-a, the services host
    else:
        assert inbound_errors(0, context) == []  # the trunk between vm-a and vm-b


# ------------------------------------------------------------- through the real entry point


def test_site_refuses_a_pbx_address_out_of_range_before_any_host_changes(tmp_path: Path) -> None:
    run = site(tmp_path, pbx_inventory(tmp_path, vm_b={"lab_address": "192.0.2.354"}))
    assert run.returncode != 0
    assert ("pod pod1: vm-b: lab_address: '192.0.2.354' is not an IPv4 address; write the machine's"
            " address" in run.stdout), run.stdout[-2000:]
    assert "no host was changed" in run.stdout
    assert not (tmp_path / "credentials.yml").exists()


def test_site_refuses_a_provider_address_with_its_port_and_an_unknown_inbound_context(tmp_path: Path) -> None:
    inventory = pbx_inventory(tmp_path)
    inventory["all"]["vars"].update(lab_provider_address="sip.kaiba.corp:5600",
                                    lab_trunks=trunks(1, inbound={"context": "ivr", "extension": "s"}))
    run = site(tmp_path, inventory)
    assert run.returncode != 0
    assert 'lab_provider_address: "sip.kaiba.corp:5600" gives a port too' in run.stdout, run.stdout[-2000:]
    assert "lab_trunks[1].inbound.context" in run.stdout and "did you mean lab-ivr?" in run.stdout
    assert "lab_trunks[1].registrar.host" not in run.stdout
    assert not (tmp_path / "credentials.yml").exists()


def test_an_ipv6_provider_host_is_refused_saying_the_lab_speaks_ipv4() -> None:
    assert errors_of(lab_provider_address="2001:db8::5") == [
        'lab_provider_address: "2001:db8::5" is an IPv6 address; the lab speaks IPv4 only,'
        " give an IPv4 address or a DNS host name"
    ]
