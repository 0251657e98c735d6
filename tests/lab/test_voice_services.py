"""Voice services of the lab (lab-spec Part 2, Q2-Q3), each proven by a call from a SIPp phone.

Voicemail when busy or unanswered, follow-me, checking a mailbox with its PIN, the IVR and the
auto-attendant, music on hold, recording a prompt by phone, the menus a new lab starts with,
and a re-run of site.yml that keeps what users made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from conftest import Lab
from sipp import RtpInfo, SippRunner, echoed_fraction

import make_pcap

VOICEMAIL = "/var/spool/asterisk/voicemail/default"
SOUNDS = "/var/lib/asterisk/sounds"
LOUD_RMS = 300  # linear 16-bit: well above line noise, far below a prompt or a tune


def settings(lab: Lab, name: str):
    return lab.settings[f"lab_{name}"]


def services_pbx(pbx, lab: Lab):
    return pbx[settings(lab, "services_host")]


def ring_seconds(lab: Lab) -> int:
    return int(settings(lab, "ring_seconds"))


def messages(host, mailbox: str) -> set[str]:
    """The message files (msgNNNN.txt) in a mailbox's INBOX, whatever its voicemail context
    (this lab's is `default`; a lab built by hand may use another)."""
    out = host.run(f"ls {VOICEMAIL.rsplit('/', 1)[0]}/*/{mailbox}/INBOX 2>/dev/null").stdout
    return {name for name in out.split() if name.endswith(".txt")}


def rms(payload: bytes) -> float:
    samples = [make_pcap.ulaw_to_linear(b) for b in payload]
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def loud_seconds(packets: Sequence[RtpInfo], after: float = 0.0) -> float:
    """Seconds of audible audio (20 ms PCMU packets above LOUD_RMS) received after `after`."""
    return 0.02 * sum(1 for p in packets if p.payload_type == 0 and p.time > after and rms(p.payload) > LOUD_RMS)


def dtmf_end(packets: Sequence[RtpInfo]) -> float:
    """When the last key press was sent."""
    return max(p.time for p in packets if p.payload_type == 101)


def test_a_fresh_lab_has_spoken_menus_in_its_language(pbx, lab: Lab) -> None:
    host = services_pbx(pbx, lab)
    language = settings(lab, "language")
    for name, prompt in settings(lab, "prompts").items():
        path = f"{SOUNDS}/custom/{name}.wav"
        assert host.file(path).is_file, path
        # 8 kHz mono 16-bit: played to G.711 phones without resampling; long enough to be words.
        info = [host.check_output(f"soxi -{flag} {path}").strip() for flag in "rcbD"]
        assert info[:3] == ["8000", "1", "16"], info
        words = len(prompt.get("text", "x y z").split())
        assert 0.15 * words < float(info[3]) < 1.0 * words + 5, (name, info)
    # The users hear that language: their endpoints and its core sounds.
    for user in lab.users:
        shown = host.check_output(f"asterisk -rx 'pjsip show endpoint {user['name']}'") if user["host"] == settings(lab, "services_host") else ""
        assert not shown or f"language                           : {language}" in shown
    assert f"Language {language}:" in host.check_output("asterisk -rx 'core show sound vm-login'")


@pytest.mark.question("2.2-busy")
def test_a_busy_user_sends_the_caller_to_voicemail(pbx, lab: Lab, phones: SippRunner) -> None:
    callee, caller = "kaiba", "amine"
    host, mailbox = pbx[lab.user(callee)["host"]], lab.user(callee)["extension"]
    before = messages(host, mailbox)
    busy = phones.answer_in_background(callee, secret=lab.secret(callee), registrar=lab.registrar_of(callee),
                                       answer_code=486, ring_ms=200)
    # The busy greeting and the beep take a few seconds; then the caller speaks (a loud tone).
    call = phones.call(caller, lab.secret(caller), lab.registrar_of(caller), mailbox, seconds=16)
    assert busy.wait().refused_code == 486
    assert call.completed, (f"{callee} ({mailbox}) was busy and the call did not go on to voicemail:"
                            f" the caller got {call.status or 'no answer'} and was cut off")
    assert loud_seconds(call.received) > 2, f"the caller heard no voicemail greeting for {callee} ({mailbox}) busy"
    assert messages(host, mailbox) - before, f"no new message in {callee}'s voicemail ({mailbox}'s INBOX)"


@pytest.mark.question("2.2-no-answer")
def test_an_unanswered_call_goes_to_voicemail_after_the_ring_time(pbx, lab: Lab, phones: SippRunner) -> None:
    callee, caller = "amine", "chhiny"
    host, mailbox = pbx[lab.user(callee)["host"]], lab.user(callee)["extension"]
    before = messages(host, mailbox)
    ringing = phones.answer_in_background(callee, secret=lab.secret(callee), registrar=lab.registrar_of(callee),
                                          answer_code=0, timeout=ring_seconds(lab) + 30)
    call = phones.call(caller, lab.secret(caller), lab.registrar_of(caller), mailbox, seconds=16,
                       ring_timeout=ring_seconds(lab) + 15)
    rang = ringing.wait()
    assert rang.caller is not None and rang.log_values("CANCEL_RECEIVED"), rang.log
    assert call.completed, call.log
    assert messages(host, mailbox) - before, f"no new message in {mailbox}'s INBOX"


@pytest.mark.question("2.5-follow-me")
def test_follow_me_rings_the_next_phone_when_the_desk_does_not_answer(lab: Lab, phones: SippRunner) -> None:
    user = next(u for u in lab.users if u.get("followme"))
    target = next(u for u in lab.users if u["extension"] == user["followme"][0])
    caller = next(u["name"] for u in lab.users if u["host"] == user["host"] and u["name"] not in (user["name"], target["name"]))
    desk = phones.answer_in_background(user["name"], secret=lab.secret(user["name"]),
                                       registrar=lab.registrar_of(user["name"]), answer_code=0,
                                       timeout=ring_seconds(lab) + 30)
    away = phones.answer_in_background(target["name"], secret=lab.secret(target["name"]),
                                       registrar=lab.registrar_of(target["name"]), capture=True,
                                       timeout=2 * ring_seconds(lab) + 40)
    call = phones.call(caller, lab.secret(caller), lab.registrar_of(caller), user["extension"], seconds=5,
                       ring_timeout=2 * ring_seconds(lab) + 15)
    assert desk.wait().log_values("CANCEL_RECEIVED"), "the desk phone did not ring first"
    reached = away.wait()
    assert call.completed, call.log
    assert reached.answered, reached.log
    assert echoed_fraction(call.sent, reached.received, after=1.0) > 0.5, "the caller's voice did not reach"


@pytest.mark.question("2.2-voicemailmain")
def test_voicemail_accepts_the_right_pin_and_refuses_a_wrong_one(lab: Lab, phones: SippRunner) -> None:
    user = "makuba"
    mailbox, pin = lab.user(user)["extension"], lab.secrets["pins"][user]
    wrong = str((int(pin) + 1) % 10 ** len(pin)).zfill(len(pin))
    heard = {}
    for label, typed in (("right", pin), ("wrong", wrong)):
        keys = phones.dtmf_pcap(f"{mailbox}#{typed}#", lead_ms=2500, gap_ms=250)
        call = phones.call(user, lab.secret(user), lab.registrar_of(user), settings(lab, "voicemail_extension"),
                           seconds=20, pcap=keys)
        assert call.completed, call.log
        # What the caller hears in the 11 s after the PIN: the messages and the menu of what to
        # do with them (a long, continuous prompt), or a short refusal, then silence.
        heard[label] = loud_seconds(call.received, after=dtmf_end(call.sent) + 0.5) - loud_seconds(
            call.received, after=dtmf_end(call.sent) + 11.5)
    assert heard["right"] > 6, heard
    assert heard["wrong"] < 4.5, heard


def _menu_call(lab: Lab, phones: SippRunner, extension: str, keys: str | None, answerer: str, seconds: float):
    phone = phones.answer_in_background(answerer, secret=lab.secret(answerer), registrar=lab.registrar_of(answerer),
                                        timeout=seconds + 30)
    caller = "amine" if answerer != "amine" else "makuba"
    pcap = phones.dtmf_pcap(keys, lead_ms=1500) if keys else None
    call = phones.call(caller, lab.secret(caller), lab.registrar_of(caller), extension, seconds=seconds, pcap=pcap)
    audio = [p for p in call.received if p.payload_type == 0]
    # The menu's prompt is what the caller hears first (before any phone answers).
    assert audio and loud_seconds([p for p in audio if p.time < audio[0].time + 2.5]) > 0.6, "no menu prompt"
    return call, phone.wait()


@pytest.mark.question("2.3-ivr")
def test_the_ivr_rings_the_user_of_the_key_pressed(lab: Lab, phones: SippRunner) -> None:
    key, user = next(iter(settings(lab, "ivr_options").items()))
    key, user = ("2", settings(lab, "ivr_options")["2"]) if "2" in settings(lab, "ivr_options") else (key, user)
    call, answered = _menu_call(lab, phones, settings(lab, "ivr_extension"), key, user, seconds=12)
    assert call.completed, call.log
    assert answered.answered, answered.log


@pytest.mark.question("2.3-attendant")
def test_the_auto_attendant_rings_the_extension_dialled(lab: Lab, phones: SippRunner) -> None:
    call, answered = _menu_call(lab, phones, settings(lab, "auto_attendant_extension"),
                                lab.user("makuba")["extension"], "makuba", seconds=12)
    assert call.completed, call.log
    assert answered.answered, answered.log


@pytest.mark.question("2.3-ivr-timeout")
def test_the_ivr_rings_the_operator_when_no_key_is_pressed(lab: Lab, phones: SippRunner) -> None:
    wait = int(settings(lab, "menu_wait_seconds"))
    call, answered = _menu_call(lab, phones, settings(lab, "ivr_extension"), None, settings(lab, "operator"),
                                seconds=wait + 14)
    assert call.completed, call.log
    assert answered.answered, answered.log


@pytest.mark.question("2.6-moh")
def test_music_on_hold_plays_to_the_caller(lab: Lab, phones: SippRunner) -> None:
    caller = "kaiba"
    call = phones.call(caller, lab.secret(caller), lab.registrar_of(caller), settings(lab, "moh_extension"), seconds=8)
    assert call.completed, call.log
    audio = [p for p in call.received if p.payload_type == 0]
    assert audio and audio[-1].time - audio[0].time >= 5, "under 5 s of music"
    assert loud_seconds(audio) > 3, "the music is silent"


@pytest.mark.question("2.2-record")
def test_a_prompt_recorded_by_phone_is_saved_and_played_back(pbx, lab: Lab, phones: SippRunner) -> None:
    host, name, caller = services_pbx(pbx, lab), "menu9", "chhiny"
    # Whatever the lab's folder and format for recorded prompts (this lab's: custom/, wav),
    # the recording is the file of that name written during the call; nothing is deleted.
    started = host.check_output("date +%s").strip()
    # Speak 3 s, then fall silent: 3 s of silence end the recording, then it is played back.
    speech = phones.tone_then_silence_pcap(3, 12)
    call = phones.call(caller, lab.secret(caller), lab.registrar_of(caller),
                       f"{settings(lab, 'record_prompt_prefix')}{name}", seconds=10.5, pcap=speech)
    assert call.completed, call.log
    found = host.check_output(f"find {SOUNDS} -name '{name}.*' -newermt @{started} -type f").split()
    assert found, f"no recording named {name} was saved under {SOUNDS} during the call"
    recorded = host.file(found[0])
    assert recorded.user == "asterisk"
    assert 1.5 < float(host.check_output(f"soxi -D {recorded.path}")) < 5
    # The caller hears their own words back: the tone's payloads return.
    spoken = {p.payload for p in call.sent if p.payload_type == 0 and rms(p.payload) > LOUD_RMS}
    assert sum(p.payload in spoken for p in call.received) > 50, "the recording was not played back"


@pytest.mark.local_lab  # any lab; run beside Molecule's, where make test has the time
def test_a_second_converge_keeps_messages_and_recorded_prompts(pbx, lab: Lab, converge) -> None:
    host = services_pbx(pbx, lab)
    prompt = f"{SOUNDS}/custom/{next(iter(settings(lab, 'prompts')))}.wav"
    # A user re-recorded a generated menu (4menu1): a converge must not speak it again.
    host.check_output(f"sox -n -r 8000 -c 1 -b 16 -t wav {prompt}.new synth 2 sine 440 && mv {prompt}.new {prompt}"
                      f" && chown asterisk:asterisk {prompt}")
    mailbox = next(u["extension"] for u in lab.users if u["host"] == settings(lab, "services_host"))
    box = f"{VOICEMAIL}/{mailbox}/INBOX"
    host.check_output(f"mkdir -p {box} && cp {prompt} {box}/msg9999.wav && printf '[message]\\n' > {box}/msg9999.txt"
                      f" && chown -R asterisk:asterisk {VOICEMAIL}/{mailbox}")
    files = f"{prompt} {box}/msg9999.wav {box}/msg9999.txt"
    before = host.check_output(f"sha256sum {files}")
    try:
        result = converge()
        assert result.returncode == 0, result.stdout[-3000:]
        assert host.check_output(f"sha256sum {files}") == before
    finally:
        host.run(f"rm -f {box}/msg9999.* {prompt}")
    # The prompt removed, a converge speaks it again (generation is a one-off, not a loss).
    assert converge().returncode == 0
    assert host.file(prompt).is_file
