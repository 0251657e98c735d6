"""Call features of the services PBX (lab-spec Part 2, Q1 and Q4-Q6), proven with real calls.

Conference, parking, pickup, transfers and queues, each as a user would try it from SIPp
phones in the tester: who rings, who answers, and whose voice (tone) reaches whom. Every
code and number comes from the lab description (lab.features).
"""

from __future__ import annotations

import math
import os
import re
import time

import pytest

from conftest import Lab
from sipp import AnswerHandle, CallResult, RtpInfo, SippRunner

import make_pcap

TONE_HZ = {"tone_pcmu.pcap": 1000.0, "tone2_pcmu.pcap": 600.0, "tone3_pcmu.pcap": 1400.0}


# ------------------------------------------------------------------------- helpers


def cli(host, command: str) -> str:
    return host.check_output(f"asterisk -rx {command!r}")


def services(pbx, lab: Lab):
    return pbx[lab.features["services_host"]]


def ext(lab: Lab, name: str) -> str:
    return lab.user(name)["extension"]


def heard(sent: list[RtpInfo], received: list[RtpInfo]) -> int:
    """How many audio packets of `sent` arrived, byte for byte, in `received`."""
    back = {p.payload for p in received if p.payload_type == 0}
    return sum(p.payload in back for p in sent if p.payload_type == 0)


def tone_power(packets: list[RtpInfo], hz: float, skip: float = 0.0) -> float:
    """Mean power at `hz` (Goertzel) of the µ-law audio received, from `skip` s on."""
    audio = [p for p in packets if p.payload_type == 0]
    if not audio:
        return 0.0
    start = audio[0].time + skip
    samples = [make_pcap.ulaw_to_linear(b) for p in audio if p.time >= start for b in p.payload]
    if len(samples) < 800:
        return 0.0
    coeff, total, blocks = 2 * math.cos(2 * math.pi * hz / 8000), 0.0, 0
    for i in range(0, len(samples) - 160, 160):
        s1 = s2 = 0.0
        for x in samples[i : i + 160]:
            s1, s2 = x + coeff * s1 - s2, s1
        total += s1 * s1 + s2 * s2 - coeff * s1 * s2
        blocks += 1
    return total / blocks


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def phone(phones: SippRunner, lab: Lab, user: str, **kwargs) -> AnswerHandle:
    """A registered phone for `user` that takes one call."""
    return phones.answer_in_background(
        user, secret=lab.secret(user), registrar=lab.registrar_of(user), **kwargs
    )


def conference_members(host) -> str:
    """Who is in each conference room (`confbridge list <room>` of every room `confbridge list`
    shows): rooms are found, not named, as a lab built by hand may name its rooms otherwise."""
    rooms = re.findall(r"^(\S+)\s+\d+\s", cli(host, "confbridge list"), re.MULTILINE)
    return "".join(cli(host, f"confbridge list {room}") for room in rooms)


def parked_slot(host, caller_ext: str) -> str | None:
    """The slot the caller with this number waits in (`parking show`), or None."""
    found = re.search(r"Space\s*:\s*(\d+)[^\n]*\n(?:[^\n]*\n){0,6}?[^\n]*<" + caller_ext + ">",
                      cli(host, "parking show default"))
    if found:
        return found.group(1)
    spaces = re.findall(r"Space\s*:\s*(\d+)", cli(host, "parking show default"))
    return spaces[0] if spaces else None


# ------------------------------------------------------------------------- conference


@pytest.mark.question("2.4-conference")
def test_three_phones_talk_in_the_conference_room(pbx, lab: Lab, phones: SippRunner) -> None:
    room = lab.features["conference_rooms"][0]
    host = services(pbx, lab)
    tones = os.path.dirname(phones.tone_pcap())
    people = list(zip(["amine", "chhiny", "makuba"], TONE_HZ))
    calls = []
    for user, tone in people:
        calls.append(phones.call_in_background(
            user, lab.secret(user), lab.registrar_of(user), room["extension"], seconds=12,
            pcap=f"{tones}/{tone}"))
        time.sleep(0.5)
    listing = wait_for(
        lambda: (out := conference_members(host)).count("PJSIP/") == 3 and out,
        10, "three participants in the room")
    for user, _ in people:
        assert f"PJSIP/{user}-" in listing, listing
    results = [call.wait() for call in calls]
    for (user, tone), result in zip(people, results):
        assert result.completed, (user, result.log)
        # Everyone hears the two others' tones, not their own (once all three are in).
        powers = {hz: tone_power(result.received, hz, skip=5.0) for hz in TONE_HZ.values()}
        own = powers.pop(TONE_HZ[tone])
        assert all(power > 3 * max(own, 1.0) for power in powers.values()), (user, own, powers)
    wait_for(lambda: "PJSIP/" not in conference_members(host), 10,
             "the room to empty")


# ------------------------------------------------------------------------- parking


def park_by_transfer(phones: SippRunner, lab: Lab, parker: str, caller: str, seconds: float, pcap: str | None = None):
    """`caller` calls `parker`, who transfers the call into the parking extension (#1 700);
    the caller plays `pcap` (the 40 s tone unless given)."""
    keys = lab.features["blind_transfer_keys"] + lab.features["park_extension"]
    parking = phone(phones, lab, parker, pcap=phones.dtmf_pcap(keys), ring_ms=300, timeout=30)
    call = phones.call_in_background(caller, lab.secret(caller), lab.registrar_of(caller),
                                     ext(lab, parker), seconds=seconds, pcap=pcap)
    parked = parking.wait()
    assert parked.answered and parked.bye_received, parked.log  # the parker is out of the call
    return call


@pytest.mark.question("2.5-park")
def test_a_parked_call_is_taken_from_its_slot(pbx, lab: Lab, phones: SippRunner) -> None:
    host = services(pbx, lab)
    call = park_by_transfer(phones, lab, "kaiba", "amine", seconds=16)
    slot = wait_for(lambda: parked_slot(host, ext(lab, "amine")), 8, "the call in a slot")
    assert slot == lab.features["parking_slots"].split("-")[0]
    taker = phones.call("chhiny", lab.secret("chhiny"), lab.registrar_of("chhiny"), slot,
                        seconds=0, hangup="pbx", ring_timeout=30)
    parked = call.wait()
    assert parked.completed and taker.completed, (parked.log, taker.log)
    # Both hear each other: the parked caller's tone reaches the taker and back.
    assert heard(parked.sent, taker.received) > 100
    assert heard(taker.sent, parked.received) > 100
    assert parked_slot(host, ext(lab, "amine")) is None


@pytest.mark.question("2.5-park-timeout")
def test_a_parked_call_nobody_takes_rings_whoever_parked_it(pbx, lab: Lab, phones: SippRunner) -> None:
    wait = int(lab.features["parking_seconds"])
    # The caller talks for the whole call, however long the lab parks it (the default 45 s
    # outlasts the usual 40 s tone), so whoever gets it back hears them.
    talking = phones.tone_then_silence_pcap(wait + 14, 0)
    call = park_by_transfer(phones, lab, "kaiba", "amine", seconds=wait + 14, pcap=talking)
    parked_at = time.monotonic()
    # kaiba's phone, ready again: the call must come back to it after the parking time.
    again = phone(phones, lab, "kaiba", capture=True, timeout=wait + 25)
    back = again.wait()
    parked = call.wait()
    assert back.answered and back.bye_received, back.log
    assert time.monotonic() - parked_at >= wait
    assert parked.completed, parked.log
    assert heard(parked.sent, back.received) > 100


# ------------------------------------------------------------------------- pickup


@pytest.mark.question("2.5-pickup")
def test_a_group_member_picks_up_a_ringing_call(lab: Lab, phones: SippRunner) -> None:
    ringing = phone(phones, lab, "makuba", answer_code=0, timeout=30)
    call = phones.call_in_background("amine", lab.secret("amine"), lab.registrar_of("amine"),
                                     ext(lab, "makuba"), seconds=6)
    time.sleep(2)  # makuba's phone rings
    picker = phones.call("chhiny", lab.secret("chhiny"), lab.registrar_of("chhiny"),
                         lab.features["pickup_code"], seconds=0, hangup="pbx", ring_timeout=20)
    caller = call.wait()
    rang = ringing.wait()
    assert rang.cancelled and not rang.answered, rang.log
    assert caller.completed and picker.completed, (caller.log, picker.log)
    assert heard(caller.sent, picker.received) > 100
    assert heard(picker.sent, caller.received) > 100


# ------------------------------------------------------------------------- transfers


@pytest.mark.question("2.1-blind")
def test_blind_transfer_keys_move_the_caller_to_the_number_dialled(lab: Lab, phones: SippRunner) -> None:
    keys = lab.features["blind_transfer_keys"] + ext(lab, "chhiny")
    target = phone(phones, lab, "chhiny", capture=True, timeout=40)
    transferring = phone(phones, lab, "kaiba", pcap=phones.dtmf_pcap(keys), ring_ms=300, timeout=30)
    call = phones.call("amine", lab.secret("amine"), lab.registrar_of("amine"), ext(lab, "kaiba"),
                       seconds=14)
    transferred = transferring.wait()
    answered = target.wait()
    assert transferred.bye_received, transferred.log  # kaiba left the call
    assert call.completed, call.log
    assert answered.answered and answered.bye_received, answered.log
    assert heard(call.sent, answered.received) > 100  # amine now talks to chhiny


@pytest.mark.question("2.1-refer")
def test_a_phones_own_refer_transfers_the_caller(lab: Lab, phones: SippRunner) -> None:
    target = phone(phones, lab, "chhiny", capture=True, timeout=40)
    transferring = phone(phones, lab, "kaiba", refer_to=ext(lab, "chhiny"), ring_ms=2000, timeout=30)
    call = phones.call("amine", lab.secret("amine"), lab.registrar_of("amine"), ext(lab, "kaiba"),
                       seconds=12)
    transferred = transferring.wait()
    answered = target.wait()
    # Accepted (202), reported done (a NOTIFY with 200), and the transferring phone hung up.
    assert "REFER_STATUS 202" in transferred.log and 200 in transferred.notify_statuses, \
        (transferred.notify_statuses, transferred.log)
    assert transferred.completed, transferred.log
    assert call.completed, call.log
    assert answered.answered, answered.log
    assert heard(call.sent, answered.received) > 100


@pytest.mark.question("2.1-attended")
def test_attended_transfer_keys_hand_the_call_over(pbx, lab: Lab, phones: SippRunner) -> None:
    host = services(pbx, lab)
    keys = lab.features["attended_transfer_keys"] + ext(lab, "chhiny")
    target = phone(phones, lab, "chhiny", pcap=phones.tone_pcap(), capture=True, timeout=40)
    callee = phone(phones, lab, "kaiba", capture=True, timeout=40)
    # amine (the caller) presses *2 6002, talks to chhiny, then hangs up: kaiba meets chhiny.
    call = phones.call("amine", lab.secret("amine"), lab.registrar_of("amine"), ext(lab, "kaiba"),
                       seconds=9, pcap=phones.dtmf_pcap(keys))
    assert call.completed, call.log
    time.sleep(4)
    channels = cli(host, "core show channels concise")
    assert "PJSIP/kaiba-" in channels and "PJSIP/chhiny-" in channels, channels
    for name in re.findall(r"^(PJSIP/kaiba-[0-9a-f]+)!", channels, re.MULTILINE):
        cli(host, f"channel request hangup {name}")
    kaiba, chhiny = callee.wait(), target.wait()
    assert kaiba.bye_received and chhiny.bye_received, (kaiba.log, chhiny.log)
    assert heard(chhiny.sent, kaiba.received) > 100  # after the transfer, kaiba hears chhiny


# ------------------------------------------------------------------------- queues


def agent_code(phones: SippRunner, lab: Lab, user: str, action: str) -> None:
    """`user` dials the agents' code for `action` (login, logout, pause, unpause)."""
    result = phones.call(user, lab.secret(user), lab.registrar_of(user),
                         lab.features[f"queue_{action}_code"], seconds=0, hangup="pbx",
                         ring_timeout=15, capture=False)
    assert result.completed, result.log  # answered, confirmed, hung up by the PBX


def queue_state(host, queue: str) -> tuple[int, str]:
    """(completed calls, member lines) of `queue show`."""
    out = cli(host, f"queue show {queue}")
    return int(re.search(r"\bC:(\d+)", out).group(1)), out


def call_the_queue(phones: SippRunner, lab: Lab, queue: dict) -> CallResult:
    """amine calls the queue and talks 2 s to whoever answers."""
    return phones.call("amine", lab.secret("amine"), lab.registrar_of("amine"), queue["extension"],
                       seconds=2, capture=False)


def who_answered(handles: dict[str, AnswerHandle], timeout: float = 20) -> str:
    name = wait_for(lambda: next((n for n, h in handles.items() if h.done()), None), timeout,
                    "an agent to take the call")
    assert handles[name].wait().answered, handles[name].wait().log
    return name


@pytest.fixture
def support(pbx, lab: Lab, phones: SippRunner):
    """The first queue, its agents logged in (left logged in afterwards, as the lab starts)."""
    queue = lab.features["queues"][0]
    for agent in queue["members"]:
        agent_code(phones, lab, agent, "login")
    _, members = queue_state(services(pbx, lab), queue["name"])
    for agent in queue["members"]:
        assert f"{agent} (PJSIP/{agent}" in members, members
    return queue


@pytest.mark.question("2.6-queue")
def test_queue_calls_go_round_the_agents(pbx, lab: Lab, phones: SippRunner, support) -> None:
    host = services(pbx, lab)
    done_before, _ = queue_state(host, support["name"])
    handles = {agent: phone(phones, lab, agent, timeout=40) for agent in support["members"]}
    answered = []
    try:
        for _ in support["members"]:
            call = call_the_queue(phones, lab, support)
            assert call.completed, call.log
            name = who_answered({n: h for n, h in handles.items() if n not in answered})
            answered.append(name)
            # That agent's phone is ready again: rrmemory must still pick the next agent.
            handles[name] = phones.answer_in_background(name, port=handles[name].port, timeout=40)
    finally:
        for handle in handles.values():
            handle.stop()
    assert sorted(answered) == sorted(support["members"])
    done_after, members = queue_state(host, support["name"])
    assert done_after - done_before == len(support["members"]), members


@pytest.mark.question("2.6-agents")
def test_agents_log_out_and_back_in(pbx, lab: Lab, phones: SippRunner, support) -> None:
    host = services(pbx, lab)
    first, second = support["members"][:2]
    handles = {agent: phone(phones, lab, agent, timeout=60) for agent in (first, second)}
    try:
        agent_code(phones, lab, second, "logout")
        assert f"PJSIP/{second}" not in queue_state(host, support["name"])[1]
        call = call_the_queue(phones, lab, support)
        assert call.completed, call.log
        assert who_answered(handles) == first  # the logged-out agent's phone stays silent
        agent_code(phones, lab, first, "logout")
        started = time.monotonic()
        call = call_the_queue(phones, lab, support)
        assert call.status == 486 and time.monotonic() - started < 8, call.log  # nobody to wait for
        agent_code(phones, lab, second, "login")
        call = call_the_queue(phones, lab, support)
        assert call.completed, call.log
        assert handles[second].wait(timeout=5).answered
    finally:
        for handle in handles.values():
            handle.stop()
        agent_code(phones, lab, first, "login")


@pytest.mark.question("2.6-pause")
def test_a_paused_agent_takes_no_calls_until_resumed(pbx, lab: Lab, phones: SippRunner, support) -> None:
    host = services(pbx, lab)
    first, second = support["members"][:2]
    handles = {agent: phone(phones, lab, agent, timeout=60) for agent in (first, second)}
    try:
        agent_code(phones, lab, first, "pause")
        assert re.search(rf"PJSIP/{first}\b.*\(paused", queue_state(host, support["name"])[1])
        for _ in range(2):  # rrmemory would hand one of two calls to the paused agent
            call = call_the_queue(phones, lab, support)
            assert call.completed, call.log
            assert who_answered({second: handles[second]}) == second
            handles[second] = phones.answer_in_background(second, port=handles[second].port, timeout=40)
        assert not handles[first].done()  # the paused agent's phone never rang
        agent_code(phones, lab, first, "unpause")
        assert not re.search(rf"PJSIP/{first}\b.*\(paused", queue_state(host, support["name"])[1])
        handles[second].stop()  # now only the resumed agent can take the call
        call = call_the_queue(phones, lab, support)
        assert call.completed, call.log
        assert handles[first].wait(timeout=10).answered
    finally:
        for handle in handles.values():
            handle.stop()
        agent_code(phones, lab, first, "unpause")
