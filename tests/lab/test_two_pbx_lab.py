"""The two-PBX lab of the spec, in every pod, proven with real SIP and RTP from SIPp phones.

Each test says what a student would see: a registration, a refused password, an echo test
that sends their voice back, a call that crosses the trunk with the caller's number.
"""

from __future__ import annotations

import re

import pytest

from conftest import Lab, _phones, cli, lab_of, pods
from sipp import SippRunner, echoed_fraction

PBXS = ("vm-a", "vm-b")


@pytest.fixture(params=pods())
def pod(request: pytest.FixtureRequest) -> str:
    """Every test of this module runs in every pod: each pod is the whole two-PBX lab."""
    return request.param


def contact_of(host, aor: str) -> str | None:
    """The contact URI registered for an AOR (`pjsip show aor`), or None."""
    match = re.search(r"^ *contact *: *(\S+) *$", cli(host, f"pjsip show aor {aor}"), re.MULTILINE)
    return match.group(1) if match else None


def first_user_on(lab: Lab, pbx_name: str) -> str:
    return next(u["name"] for u in lab.users if u["host"] == pbx_name)


@pytest.mark.parametrize("pbx_name", PBXS)
def test_asterisk_runs_and_listens_for_sip(pbx, lab: Lab, pbx_name: str) -> None:
    host = pbx[pbx_name]
    assert "Asterisk 2" in cli(host, "core show version")
    listening = host.check_output("ss -Hlun")
    assert re.search(rf"0\.0\.0\.0:{lab.sip_port}\b", listening), listening


@pytest.mark.parametrize("pbx_name", PBXS)
def test_asterisk_boots_without_an_error_in_the_log_students_read(pbx, pbx_name: str) -> None:
    # Its last boot: what the loader's thread logged from "N modules will be loaded" on. An
    # ERROR there (a module that declines to load) reads as a fault of the student's lab.
    log = pbx[pbx_name].check_output("cat /var/log/asterisk/messages.log")
    loading = r"^\[[^]]*\] NOTICE\[(\d+)\] loader\.c: \d+ modules will be loaded"
    boots = list(re.finditer(loading, log, re.MULTILINE))
    assert boots, "messages.log has no boot of Asterisk"
    last = boots[-1]
    errors = re.findall(rf"^.*ERROR\[{last[1]}\].*$", log[last.start():], re.MULTILINE)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("pbx_name", PBXS)
def test_configs_holding_secrets_are_private(pbx, pbx_name: str) -> None:
    config = pbx[pbx_name].file("/etc/asterisk/pjsip.conf")
    assert (config.user, config.group) == ("root", "asterisk")
    assert config.mode & 0o007 == 0, oct(config.mode)


def test_vm_b_is_registered_to_vm_a_over_the_trunk(pbx, lab: Lab) -> None:
    between_pbxs = [trunk for trunk in lab.trunks if isinstance(trunk["registrar"], str)]
    assert between_pbxs
    for trunk in between_pbxs:
        registrations = cli(pbx[trunk["registrant"]], "pjsip show registrations")
        assert re.search(rf"{trunk['name']}/\S+\s+{trunk['name']}\s+Registered", registrations), registrations
        contact = contact_of(pbx[trunk["registrar"]], trunk["name"])
        assert contact and lab.addresses[trunk["registrant"]] in contact, contact


def test_each_user_registers_with_its_secret(pbx, lab: Lab, phones: SippRunner, lab_user: str) -> None:
    user = lab_user
    registrar = lab.registrar_of(user)
    assert phones.register(user, lab.secret(user), registrar) == 200
    contact = contact_of(pbx[lab.user(user)["host"]], user)
    assert contact and lab.addresses[lab.testers[0]] in contact, contact


def test_a_wrong_password_is_refused_and_leaves_no_contact(pbx, lab: Lab, phones: SippRunner) -> None:
    registrar, phone_port = lab.registrar_of("makuba"), 5999
    assert phones.register("makuba", lab.secret("makuba"), registrar, contact_port=phone_port) == 200
    assert phones.unregister("makuba", lab.secret("makuba"), registrar, contact_port=phone_port) == 200
    assert contact_of(pbx["vm-a"], "makuba") is None
    assert phones.register("makuba", lab.secret("makuba") + "-wrong", registrar) in (401, 403)
    assert contact_of(pbx["vm-a"], "makuba") is None


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(pbx, lab: Lab, phones: SippRunner) -> None:
    registrar = lab.registrar_of("kaiba")
    wrong_password = phones.register("kaiba", "not-" + lab.secret("kaiba"), registrar)
    unknown_user = phones.register("mallory", lab.secret("kaiba"), registrar)
    assert unknown_user in (401, 403)
    assert unknown_user == wrong_password
    assert contact_of(pbx["vm-a"], "mallory") is None


def test_the_echo_test_sends_the_callers_audio_back_on_every_pbx_of_every_pod() -> None:
    # demo-echotest plays for ~22 s before Echo() starts; keep talking well past it. Every
    # PBX of every pod is called at once, each from its own pod's tester, so the class waits
    # through that preamble once.
    calls = {}
    for pod_name in pods():
        lab = lab_of(pod_name)
        phones = _phones(lab.containers[lab.testers[0]])
        for pbx_name in PBXS:
            user = first_user_on(lab, pbx_name)
            calls[pod_name, pbx_name] = phones.call_in_background(
                user, lab.secret(user), lab.addresses[pbx_name], lab.echo_extension, seconds=30)
    for where, calling in calls.items():
        result = calling.wait()
        assert result.answered, (where, result.log)
        assert result.completed, (where, result.log)
        assert result.echoed_fraction(after=23.0) > 0.8, where


@pytest.mark.parametrize("direction", [
    pytest.param("registrar_side_calls", marks=pytest.mark.question("1.1-trunk-a-to-b")),
    pytest.param("registrant_side_calls", marks=pytest.mark.question("1.1-trunk-b-to-a")),
])
def test_users_reach_each_other_across_the_trunk(lab: Lab, phones: SippRunner, direction: str) -> None:
    trunk = lab.trunks[0]
    sides = (trunk["registrar"], trunk["registrant"])
    caller_pbx, callee_pbx = sides if direction == "registrar_side_calls" else sides[::-1]
    caller, callee = first_user_on(lab, caller_pbx), first_user_on(lab, callee_pbx)
    answering = phones.answer_in_background(
        callee, secret=lab.secret(callee), registrar=lab.addresses[callee_pbx], capture=True
    )
    call = phones.call(caller, lab.secret(caller), lab.addresses[caller_pbx], lab.user(callee)["extension"], seconds=6)
    # A call that did not go through leaves the callee's phone waiting: stopped now, not at its time-out.
    answered = answering.wait(timeout=None if call.completed else 3)
    across = f"{caller} on {caller_pbx} called {callee} ({lab.user(callee)['extension']}) on {callee_pbx} across the trunk"
    assert call.completed, f"{across}: {caller_pbx} answered {call.status or 'nothing'}, the call did not go through"
    assert answered.answered and answered.bye_received, f"{across}: {callee}'s phone never rang"
    assert answered.caller is not None and answered.caller.from_user == lab.user(caller)["extension"]
    # The caller's voice crossed the trunk: the callee's phone received the caller's packets.
    assert echoed_fraction(call.sent, answered.received, after=1.0) > 0.8
