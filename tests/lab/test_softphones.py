"""Real softphones, set up from nothing but the phone settings the lab wrote (issue 12).

The lab writes each student a baresip accounts file and a card with a QR code of their
account (playbooks/phone-card.yml, plugins/filter/lab_phones.py). These tests use them as a
student would: baresip (Debian's, in the tester) imports the accounts file as it is,
registers, and calls; what each phone hears is recorded and measured with sox (frequency and
level), and each QR code is drawn from the card's own SVG and read back with zbarimg.

Each phone speaks a tone of its own frequency, so a recording names who was heard: the echo
test returns the caller's own tone, a SIPp phone hears baresip's, two baresips across the
trunk each hear the other's.

Marked `softphones`: they run against the local lab (`make local-lab-test`, or
`pytest -m softphones tests/lab` with `make lab` up), not in Molecule's verify stage.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
import testinfra

from baresip import BARESIP_DIR, Softphone, tone_of
from conftest import REPO, Lab, _host, _phones, cli, lab_of, pods, wait_for
from sipp import SippRunner
from test_two_pbx_lab import contact_of

pytestmark = pytest.mark.softphones

_spec = importlib.util.spec_from_file_location("lab_cards", REPO / "plugins" / "filter" / "lab_cards.py")
lab_cards = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lab_cards)  # type: ignore[union-attr]

# Each phone's voice: a tone of its own, far enough from the others (and from SIPp's 600 Hz
# answer tone) that a recording says whose voice it holds.
ECHO_TONE, TO_KAIBA_TONE, TRUNK_A_TONE, TRUNK_B_TONE, IVR_TONE = 770, 880, 500, 1200, 660
SIPP_ANSWER_TONE = 600  # what SIPp's answering phones send (sipp.ANSWER_TONE_PCAP)
TALK_SECONDS = 4  # how long each call talks once connected


@pytest.fixture(scope="module")
def lab() -> Lab:
    return lab_of(pods()[0])


@pytest.fixture(scope="module")
def tester(lab: Lab) -> testinfra.host.Host:
    return _host(lab.containers[lab.testers[0]])


@pytest.fixture(scope="module")
def phones(lab: Lab) -> SippRunner:
    return _phones(lab.containers[lab.testers[0]])


@pytest.fixture(scope="module")
def pbx(lab: Lab) -> dict[str, testinfra.host.Host]:
    return {part: _host(lab.containers[part]) for part in ("vm-a", "vm-b")}


def accounts_file(lab: Lab, user: str) -> Path:
    """Where the lab wrote `user`'s baresip accounts file (beside the card)."""
    return Path(f"{lab_cards.lab_pod_files_prefix(lab.credentials_file, lab.pod)}-{user}.baresip-accounts")


@pytest.fixture(scope="module")
def softphone(lab: Lab, tester: testinfra.host.Host) -> Iterator[dict[str, Softphone]]:
    """`softphone[user]`: a baresip of `user`, started once from the lab's file and reused."""
    started: dict[str, Softphone] = {}

    class Phones(dict):  # type: ignore[type-arg]
        """Starts a user's phone the first time a test asks for it."""

        def __missing__(self, user: str) -> Softphone:
            path = accounts_file(lab, user)
            assert path.is_file(), f"the lab wrote no baresip accounts file for {user} ({path})"
            phone = Softphone(tester, user, path.read_text(), slot=len(started) + 1)
            phone.start()
            started[user] = self[user] = phone
            return phone

    yield Phones()
    for phone in started.values():
        phone.stop()


def registered_here(host: testinfra.host.Host, user: str, lab: Lab, phone: Softphone) -> bool:
    """The PBX holds `user`'s contact at this softphone (tester address, its SIP port)."""
    contact = contact_of(host, user) or ""
    return f"@{lab.addresses[lab.testers[0]]}:{phone.sip_port}" in contact


def running(host: testinfra.host.Host, user: str, application: str) -> bool:
    """A channel of `user`'s phone is in dialplan application `application` on the PBX."""
    for line in cli(host, "core show channels concise").splitlines():
        fields = line.split("!")
        if fields[0].startswith(f"PJSIP/{user}-") and len(fields) > 5 and fields[5] == application:
            return True
    return False


def bridged(host: testinfra.host.Host, user: str) -> bool:
    """A channel to `user`'s phone is up (answered) on the PBX."""
    return any(line.startswith(f"PJSIP/{user}-") and line.split("!")[4:5] == ["Up"]
               for line in cli(host, "core show channels concise").splitlines())


def test_amines_baresip_registers_from_its_file_and_hears_itself_in_the_echo_test(
        lab: Lab, pbx: dict[str, testinfra.host.Host], softphone: dict[str, Softphone]) -> None:
    amine = softphone["amine"]
    assert amine.registered(), amine.log()[-2000:]
    host = pbx[lab.user("amine")["host"]]
    assert wait_for(lambda: registered_here(host, "amine", lab, amine), 10), contact_of(host, "amine")
    recording = amine.dial(lab.echo_extension, ECHO_TONE, "echo")
    # The echo test plays its prompt first (demo-echotest, ~20 s), then Echo(): talk once it echoes.
    assert wait_for(lambda: running(host, "amine", "Echo"), 40, step=0.5), "the echo test never reached Echo()"
    time.sleep(TALK_SECONDS)
    amine.hangup()
    length = amine.heard(recording).seconds
    echoed = amine.heard(recording, start=length - TALK_SECONDS + 0.5, seconds=TALK_SECONDS - 1.5)
    assert echoed.audible, f"amine heard silence from the echo test: {echoed}"
    assert echoed.is_near(ECHO_TONE), f"amine heard {echoed}, not its own {ECHO_TONE} Hz"


def test_kaiba_hears_amines_baresip(lab: Lab, phones: SippRunner, softphone: dict[str, Softphone]) -> None:
    amine, tester = softphone["amine"], softphone["amine"].host
    kaiba = phones.answer_in_background("kaiba", secret=lab.secret("kaiba"), registrar=lab.registrar_of("kaiba"),
                                        capture=True, timeout=60)
    recording = amine.dial(lab.user("kaiba")["extension"], TO_KAIBA_TONE, "kaiba")
    time.sleep(TALK_SECONDS)
    amine.hangup()
    answered = kaiba.wait()
    assert answered.answered and answered.bye_received, answered.log
    assert answered.caller is not None and answered.caller.from_user == lab.user("amine")["extension"]
    heard = tone_of(tester, answered.received, f"{BARESIP_DIR}/kaiba-heard.ul")
    assert heard.audible and heard.is_near(TO_KAIBA_TONE), f"kaiba heard {heard}, not amine's {TO_KAIBA_TONE} Hz"
    # And the other way: baresip played kaiba's voice.
    back = amine.heard(recording, start=1.0)
    assert back.audible and back.is_near(SIPP_ANSWER_TONE), f"amine heard {back}, not kaiba's {SIPP_ANSWER_TONE} Hz"


def test_two_baresips_talk_across_the_trunk_both_ways(
        lab: Lab, pbx: dict[str, testinfra.host.Host], softphone: dict[str, Softphone]) -> None:
    trunk = next(t for t in lab.trunks if isinstance(t["registrar"], str))
    caller = "amine"
    assert lab.user(caller)["host"] == trunk["registrar"]
    callee = next(u["name"] for u in lab.users if u["host"] == trunk["registrant"])
    far = softphone[callee]
    assert far.registered(), far.log()[-2000:]
    assert wait_for(lambda: registered_here(pbx[trunk["registrant"]], callee, lab, far), 10)
    near = softphone[caller]
    far_recording = far.prepare_call(TRUNK_B_TONE, "trunk")
    near_recording = near.prepare_call(TRUNK_A_TONE, "trunk")
    near.command(f"dial {lab.user(callee)['extension']}")
    far.answer()
    assert near.wait_for(r"Call established", 15), near.log()[-2000:]
    time.sleep(TALK_SECONDS)
    near.hangup()
    assert far.wait_for(r"terminated", 10), far.log()[-2000:]
    heard_far = far.heard(far_recording, start=1.0)
    heard_near = near.heard(near_recording, start=1.0)
    assert heard_far.audible and heard_far.is_near(TRUNK_A_TONE), f"{callee} heard {heard_far}, not {caller}"
    assert heard_near.audible and heard_near.is_near(TRUNK_B_TONE), f"{caller} heard {heard_near}, not {callee}"


def test_keys_pressed_on_baresip_drive_the_ivr_to_kaiba(
        lab: Lab, pbx: dict[str, testinfra.host.Host], phones: SippRunner, softphone: dict[str, Softphone]) -> None:
    options = {str(key): user for key, user in lab.settings["lab_ivr_options"].items()}
    key = next(k for k, user in options.items() if user == "kaiba")
    ivr_host = pbx[lab.settings["lab_services_host"]]
    amine = softphone["amine"]
    kaiba = phones.answer_in_background("kaiba", secret=lab.secret("kaiba"), registrar=lab.registrar_of("kaiba"),
                                        capture=True, timeout=60)
    amine.dial(str(lab.settings["lab_ivr_extension"]), IVR_TONE, "ivr")
    time.sleep(1.5)  # the menu starts speaking; a key may interrupt it
    amine.press(key)
    # Only the key rings kaiba: without one the menu waits, then rings the operator.
    assert wait_for(lambda: bridged(ivr_host, "kaiba"), 20, step=0.5), "kaiba's phone did not answer the IVR's call"
    time.sleep(TALK_SECONDS)
    amine.hangup()
    answered = kaiba.wait()
    assert answered.answered, answered.log
    heard = tone_of(amine.host, answered.received, f"{BARESIP_DIR}/kaiba-ivr.ul")
    assert heard.audible and heard.is_near(IVR_TONE), f"kaiba heard {heard}, not amine's {IVR_TONE} Hz"


def test_each_qr_code_on_the_card_reads_back_as_its_students_account(lab: Lab, tester: testinfra.host.Host) -> None:
    card = Path(lab_cards.lab_card_path(lab.credentials_file, lab.pod)).read_text()
    sections = dict(re.findall(r'<section class="student" id="user-([^"]+)">(.*?)</section>', card, re.S))
    assert set(sections) == {u["name"] for u in lab.users}
    folder = f"{BARESIP_DIR}/qr"
    tester.check_output(f"mkdir -p {folder}")
    for user, section in sections.items():
        svg = re.search(r"<svg.*?</svg>", section, re.S)
        assert svg, f"{user}'s section of the card has no QR code"
        data = base64.b64encode(svg.group(0).encode()).decode()
        tester.check_output(f"echo {data} | base64 -d > {folder}/{user}.svg")
        # Drawn as a screen shows it (white behind the code), then read as a camera would.
        tester.check_output(f"rsvg-convert --width 400 --height 400 --background-color white "
                            f"-o {folder}/{user}.png {folder}/{user}.svg")
        read = tester.run(f"zbarimg --quiet --raw {folder}/{user}.png")
        assert read.rc == 0, f"zbarimg read no code in {user}'s QR: {read.stderr}"
        uri = read.stdout.strip()
        found = re.fullmatch(r"sip:([^:@]+):([^@]*)@([^:;]+):(\d+);transport=udp", uri)
        assert found, f"{user}'s QR code holds no SIP URI with a password"
        name, password, host, port = found.groups()
        registrar = lab.registrar_of(user)
        assert (name, host, int(port)) == (user, registrar, lab.sip_port)
        assert unquote(password) == lab.secret(user), f"{user}'s QR code holds another password"
        # What the card says in words is what the code holds.
        assert f"{registrar}:{lab.sip_port}" in section
        assert html.escape(lab.secret(user)) in section


# A secret that means something to every format the lab writes: XML's & < >, ini's = and #,
# a quote and spaces (baresip's value then needs its quotes), Jinja's {{ }}. Not a ';', which
# baresip's accounts line cannot carry (lab_phones.py leaves that file out, by design).
AWKWARD_SECRET = "Q&<x>=y#'z {{ w }} %!"


def test_a_chosen_secret_with_special_characters_registers_from_its_baresip_file(
        lab: Lab, pbx: dict[str, testinfra.host.Host], tester: testinfra.host.Host, converge: Any,
        tmp_path: Path) -> None:
    # An instructor chooses the secret in lab_secrets_file, as the README says, for a user the
    # other tests leave alone; the lab re-provisions its PBX and rewrites its phone files.
    user = next(u["name"] for u in lab.users
                if u["host"] == lab.settings["lab_services_host"] and u["name"] not in ("amine", "kaiba"))
    chosen = tmp_path / "chosen-secrets.yml"
    chosen.write_text(yaml.safe_dump({"pods": {lab.pod: {"users": {user: AWKWARD_SECRET}}}}))
    chosen.chmod(0o600)
    try:
        result = converge({"lab_secrets_file": str(chosen)})
        assert result.returncode == 0, result.stdout[-3000:]
        accounts = accounts_file(lab, user).read_text()
        assert "auth_pass=" in accounts and lab.secret(user) not in accounts, "the file still holds the old secret"
        phone = Softphone(tester, f"{user}-chosen", accounts, slot=9)
        phone.start()
        try:
            assert phone.registered(), phone.log()[-2000:]
            host = pbx[lab.user(user)["host"]]
            assert wait_for(lambda: registered_here(host, user, lab, phone), 10), contact_of(host, user)
        finally:
            phone.stop()
    finally:
        # Back to the lab's generated secret (still in the credentials file), files included.
        restored = converge()
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert lab.secret(user) in accounts_file(lab, user).read_text()
