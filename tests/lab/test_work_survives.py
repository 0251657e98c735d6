"""What students made survives `make down && make lab`, and PBXs restarted as a reboot of the
machine restarts them come back with `make lab`.

Voicemail, recordings, prompts recorded by phone and queue logins live in volumes of each
PBX, not in its container (roles/local_lab, `local_lab_student_work`). This test drives the
local lab the way its user does: it leaves a message and records a prompt, runs `make down`
and `make lab` (every container is replaced by a fresh one, Asterisk installed again), and
finds both. It runs against the local lab only (`make local-lab-test`, part of `make test`);
marked `local_lab`, it is left out of Molecule's run (molecule.yml), whose lab `make` does
not build.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import REPO, _host, _inventory, _phones, cli, lab_of, pods, wait_for
from test_voice_services import SOUNDS, VOICEMAIL, messages

pytestmark = pytest.mark.local_lab

WORK = ("/var/spool/asterisk", "/var/lib/asterisk")


def container_id(container: str) -> str:
    return json.loads(subprocess.run(["docker", "inspect", container], check=True, capture_output=True,
                                     text=True).stdout)[0]["Id"]


def make(target: str) -> None:
    done = subprocess.run(["make", target], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, f"make {target}:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"


def test_voicemail_and_a_recorded_prompt_survive_make_down_and_make_lab() -> None:
    assert _inventory() == str(REPO / "inventory" / "local"), "this test drives the local lab (make lab)"
    pod = pods()[0]
    lab = lab_of(pod)
    part = lab.settings["lab_services_host"]
    container = lab.containers[part]
    mounts = {m["Destination"] for m in json.loads(subprocess.run(
        ["docker", "inspect", container], check=True, capture_output=True, text=True).stdout)[0]["Mounts"]}
    assert set(WORK) <= mounts, f"{container} keeps {sorted(mounts)} in volumes, not {WORK}"
    host, phones = _host(container), _phones(lab.containers[lab.testers[0]])

    # A caller leaves a message for a busy user of this PBX, and a user records a prompt.
    callee = next(u["name"] for u in lab.users if u["host"] == part)
    caller = next(u["name"] for u in lab.users if u["name"] != callee)
    mailbox = lab.user(callee)["extension"]
    busy = phones.answer_in_background(callee, secret=lab.secret(callee), registrar=lab.registrar_of(callee),
                                       answer_code=486, ring_ms=200)
    left = phones.call(caller, lab.secret(caller), lab.registrar_of(caller), mailbox, seconds=16)
    assert busy.wait().refused_code == 486 and left.completed, left.log
    prompt = f"{SOUNDS}/custom/survivor.wav"
    recorded = phones.call(caller, lab.secret(caller), lab.registrar_of(caller),
                           f"{lab.settings['lab_record_prompt_prefix']}survivor", seconds=10.5,
                           pcap=phones.tone_then_silence_pcap(3, 12))
    assert recorded.completed, recorded.log
    made = sorted(messages(host, mailbox))
    assert made and host.file(prompt).is_file
    files = " ".join([prompt, *(f"{VOICEMAIL}/{mailbox}/INBOX/{m}" for m in made)])
    before, old_container = host.check_output(f"sha256sum {files}"), container_id(container)

    make("down")
    make("lab")

    assert container_id(container) != old_container, "make down && make lab kept the old container"
    host = _host(container)
    assert host.check_output(f"sha256sum {files}") == before
    # Asterisk counts the message again, and the user still registers to the new container.
    assert wait_for(lambda: f" {mailbox} " in f" {cli(host, 'voicemail show users')} ", 30)
    shown = next(line for line in cli(host, "voicemail show users").splitlines() if f" {mailbox} " in f" {line} ")
    assert int(shown.split()[-1]) >= len(made), shown
    phones = _phones(lab.containers[lab.testers[0]])
    assert phones.register(callee, lab.secret(callee), lab.registrar_of(callee)) == 200


def test_pbxs_restarted_as_a_reboot_restarts_them_come_back_with_make_lab() -> None:
    # A reboot of the machine (or of Docker) restarts the containers (restart policy): their
    # daemons were killed, not stopped. On a VM /run is a tmpfs that a boot empties; a
    # fail2ban socket left there makes fail2ban's init script refuse to start.
    assert _inventory() == str(REPO / "inventory" / "local"), "this test drives the local lab (make lab)"
    lab = lab_of(pods()[0])
    containers = [lab.containers[part] for part in lab.pbx_parts]
    for container in containers:
        assert _host(container).file("/run/fail2ban/fail2ban.sock").is_socket
    done = subprocess.run(["docker", "restart", *containers], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    make("lab")

    for container in containers:
        host = _host(container)
        assert "Asterisk" in cli(host, "core show version")
        assert host.run("fail2ban-client ping").stdout.strip() == "Server replied: pong"
    phones = _phones(lab.containers[lab.testers[0]])
    user = lab.users[0]["name"]
    assert phones.register(user, lab.secret(user), lab.registrar_of(user)) == 200
