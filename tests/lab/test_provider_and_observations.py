"""The provider trunk (siptrunk) and what the report had students observe (Part 1, Q2-Q4).

A SIPp "provider" on a host of its own in each pod (tests/sipp/provider.xml) plays the ITSP: it challenges
vm-a's REGISTER and INVITEs and checks the digest, answers or refuses calls, and calls in.
Each test asserts what a student would see in Wireshark: the final answer, the RTP.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from conftest import Lab, cli, wait_for
from sipp import AnswerHandle, SippRunner, echoed_fraction

PROVIDER_TRUNK = "siptrunk"
UNKNOWN_NUMBER = "555"  # no user, service or pattern of the lab matches it


def trunk(lab: Lab) -> dict:
    return next(t for t in lab.trunks if t["name"] == PROVIDER_TRUNK)


def registration_status(host) -> str:
    match = re.search(rf"^ *{PROVIDER_TRUNK}/\S+\s+\S+\s+(\S+)", cli(host, "pjsip show registrations"), re.M)
    return match.group(1) if match else ""


@contextmanager
def provider(lab: Lab, itsp: SippRunner, answer_code: int = 200, secret: str | None = None,
             capture: bool = False, ring_ms: int = 1000) -> Iterator[AnswerHandle]:
    """The SIPp provider on its port, on the pod's provider host, for the time of the block."""
    handle = itsp.provider_in_background(
        str(trunk(lab).get("username", PROVIDER_TRUNK)), secret or lab.secrets["trunks"][PROVIDER_TRUNK],
        int(trunk(lab)["registrar"]["port"]), lab.addresses["vm-a"], answer_code, ring_ms, capture)
    try:
        yield handle
    finally:
        handle.stop()


def registered_again(pbx) -> bool:
    """Ask vm-a to register now; allow one refused attempt and Asterisk's retry 10 s later
    (a REGISTER that crossed the provider's start-up can be refused)."""
    cli(pbx["vm-a"], f"pjsip send register {PROVIDER_TRUNK}")
    return wait_for(lambda: registration_status(pbx["vm-a"]) == "Registered", 25)


def test_vm_a_registers_to_the_provider_and_notices_it_going_and_coming_back(
    pbx, lab: Lab, provider_phones: SippRunner
) -> None:
    with provider(lab, provider_phones) as itsp:
        assert registered_again(pbx), cli(pbx["vm-a"], "pjsip show registrations")
        username = trunk(lab)["username"]

        def log() -> str:
            return provider_phones._host.run(f"cat {itsp.run.dir}/scenario.log").stdout

        # SIPp writes its log as it goes: wait until the accepted REGISTER shows.
        wait_for(lambda: f"REGISTER auth=ok user={username}" in log(), 10)
        # The provider challenged (401) vm-a's first REGISTER (with no digest, or one vm-a kept
        # from an earlier provider), then accepted its digest as the pod's account (1040).
        assert re.search(r"REGISTER auth=(none|bad)", log()), log()
        assert f"REGISTER auth=ok user={username}" in log(), log()
    # Gone: the next refresh times out and Asterisk shows it.
    assert wait_for(lambda: registration_status(pbx["vm-a"]) != "Registered", 90, step=2), \
        cli(pbx["vm-a"], "pjsip show registrations")
    with provider(lab, provider_phones):
        # Back: a retry (every 5 s, or a retransmission) registers again without help.
        assert wait_for(lambda: registration_status(pbx["vm-a"]) == "Registered", 60, step=2), \
            cli(pbx["vm-a"], "pjsip show registrations")


def test_dialling_9_calls_the_number_through_the_provider(
    pbx, lab: Lab, phones: SippRunner, provider_phones: SippRunner
) -> None:
    number = "0145678901"
    with provider(lab, provider_phones, capture=True) as itsp:
        call = phones.call("amine", lab.secret("amine"), lab.addresses["vm-a"], "9" + number, seconds=5)
        time.sleep(1)
        itsp.stop()
        seen = itsp.wait(timeout=5)
    assert call.completed, call.log
    # The provider got the number without the 9, challenged the INVITE and accepted the digest.
    assert f"INVITE to={number} auth=none" in seen.log, seen.log
    assert f"INVITE to={number} auth=ok user={trunk(lab)['username']}" in seen.log, seen.log
    # Audio both ways: the provider heard amine's tone, and amine received the provider's.
    assert echoed_fraction(call.sent, seen.received, after=1.0) > 0.8
    assert echoed_fraction(seen.sent, call.received, after=1.0) > 0.8


def test_a_call_from_the_provider_hears_the_ivr_and_3_reaches_kaiba(
    pbx, lab: Lab, phones: SippRunner, provider_phones: SippRunner
) -> None:
    kaiba = phones.answer_in_background(
        "kaiba", secret=lab.secret("kaiba"), registrar=lab.addresses["vm-a"], capture=False, timeout=60
    )
    registration_port = int(trunk(lab)["registrar"]["port"])
    # The provider calls vm-a's account (1040) from its own address, but not from the port
    # it registers on: ITSPs send calls from other ports and machines, and vm-a must still
    # know the call as the provider's (no challenge) and send it to the IVR.
    call = provider_phones.call(
        "provider", "unused", lab.addresses["vm-a"], str(trunk(lab)["username"]), seconds=20,
        pcap=provider_phones.dtmf_pcap("3", lead_ms=6000, tail_ms=10000), local_port=registration_port + 7,
    )
    answered = kaiba.wait(timeout=30)
    assert call.answered, call.log
    loud = [p for p in call.received if p.payload_type == 0 and max(abs(b - 0xFF) for b in p.payload) > 8]
    assert len(loud) > 50, "the caller heard no prompt (menu2)"
    assert answered.answered, answered.log


@pytest.mark.question("1.1-register")
def test_a_phone_registers_with_digest_authentication(lab: Lab, phones: SippRunner) -> None:
    # The first REGISTER is challenged (401 with a Digest nonce); the answer with the secret gets 200.
    assert phones.register("amine", lab.secret("amine"), lab.addresses["vm-a"]) == 200


@pytest.mark.question("1.3-unknown")
def test_an_unknown_number_gets_404(lab: Lab, phones: SippRunner) -> None:
    call = phones.call("amine", lab.secret("amine"), lab.addresses["vm-a"], UNKNOWN_NUMBER, seconds=1, capture=False)
    assert call.status == 404, call.log


# Asterisk maps the far end's 603 Decline to cause 21 (call rejected), which it answers as 403.
@pytest.mark.parametrize("refusal, heard", [
    pytest.param(486, 486, marks=pytest.mark.question("1.3-busy")),
    pytest.param(603, 403, marks=pytest.mark.question("1.3-decline")),
])
def test_a_callee_who_refuses_gives_the_caller_this_answer(
    lab: Lab, phones: SippRunner, provider_phones: SippRunner, refusal: int, heard: int
) -> None:
    # The far end is the provider (no voicemail on that route, so the refusal reaches the caller).
    with provider(lab, provider_phones, answer_code=refusal):
        call = phones.call("amine", lab.secret("amine"), lab.addresses["vm-a"], "90123", seconds=1, capture=False)
    assert call.status == heard, call.log


@pytest.mark.question("1.3-cancel")
def test_a_caller_who_hangs_up_while_it_rings_gets_487(
    lab: Lab, phones: SippRunner, provider_phones: SippRunner
) -> None:
    with provider(lab, provider_phones, ring_ms=15000):
        call = phones.call("amine", lab.secret("amine"), lab.addresses["vm-a"], "90123", seconds=1,
                           capture=False, cancel_after=2)
    assert call.status == 487, call.log


@pytest.mark.question("1.3-unregistered")
def test_a_user_without_a_registered_phone_gives_the_caller_this_answer(pbx, lab: Lab, phones: SippRunner) -> None:
    # makuba's phone registers (replacing any earlier one), then leaves: no contact remains.
    port = 5998
    assert phones.register("makuba", lab.secret("makuba"), lab.addresses["vm-a"], contact_port=port) == 200
    assert phones.unregister("makuba", lab.secret("makuba"), lab.addresses["vm-a"], contact_port=port) == 200
    call = phones.call("amine", lab.secret("amine"), lab.addresses["vm-a"], lab.user("makuba")["extension"],
                       seconds=1, capture=False)
    # Dial finds no contact (CHANUNAVAIL); Asterisk answers the caller 404 Not Found.
    assert call.status == 404, call.log


@pytest.mark.question("1.3-password")
def test_wrong_credentials_get_401(lab: Lab, phones: SippRunner) -> None:
    assert phones.register("amine", "not-" + lab.secret("amine"), lab.addresses["vm-a"]) == 401
    call = phones.call("amine", "not-" + lab.secret("amine"), lab.addresses["vm-a"], lab.echo_extension,
                       seconds=1, capture=False)
    assert call.status == 401, call.log


@pytest.mark.question("1.2")
def test_a_call_between_two_users_carries_pcmu_each_way_with_rtcp(pbx, lab: Lab, phones: SippRunner) -> None:
    kaiba = phones.answer_in_background(
        "kaiba", secret=lab.secret("kaiba"), registrar=lab.addresses["vm-a"], capture=True
    )
    call = phones.call("amine", lab.secret("amine"), lab.addresses["vm-a"], lab.user("kaiba")["extension"], seconds=12)
    answered = kaiba.wait()
    assert call.completed, call.log
    # Leg amine <-> vm-a: PCMU both ways, one SSRC each way, and they differ.
    for leg in (call, answered):
        sent = {p.ssrc for p in leg.sent if p.payload_type == 0}
        received = {p.ssrc for p in leg.received if p.payload_type == 0}
        assert len(sent) == 1 and len(received) == 1 and sent != received, (sent, received)
    # RTCP: reports from vm-a arrived at both phones (sender/receiver reports, PT 200/201).
    for leg in (call, answered):
        pcap = phones._host.run(f"base64 -w0 {leg.rundir}/capture.pcap").stdout
        assert rtcp_reports(pcap, leg), "no RTCP report reached the phone"


def rtcp_reports(b64: str, leg) -> int:
    import base64
    import tempfile

    import make_pcap

    with tempfile.NamedTemporaryFile(suffix=".pcap") as tmp:
        tmp.write(base64.b64decode(b64))
        tmp.flush()
        packets = make_pcap.read_pcap(tmp.name)
    return sum(1 for p in packets if len(p.payload) >= 8 and p.payload[1] in (200, 201))


@pytest.mark.question("1.4-video")
def test_a_video_call_is_answered_with_h264_and_the_echo_sends_the_video_back(lab: Lab, phones: SippRunner) -> None:
    call = phones.call("amine", lab.secret("amine"), lab.addresses["vm-a"], lab.echo_extension, seconds=30,
                       video_pcap=phones.h264_pcap())
    assert call.completed, call.log
    assert any(re.match(r"m=video [1-9]\d* RTP/AVP", v) for v in call.log_values("VIDEO")), call.log
    assert any("H264/90000" in v for v in call.log_values("VIDEO_CODEC")), call.log
    assert echoed_fraction(call.sent, call.received, after=24.0, payload_type=99) > 0.5
