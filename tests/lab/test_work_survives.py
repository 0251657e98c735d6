"""What students made survives their PBX's container being replaced.

Voicemail, recordings, prompts recorded by phone and queue logins live in volumes, not in
the container (the local lab's `local_lab_student_work`; Molecule's pod 2 declares the same
for its services PBX). This test replaces that container as `make down && make lab` or a new
image does, converges it again with site.yml, and finds what was made. It replaces a PBX,
so it runs last (pytest runs files in name order).
"""

from __future__ import annotations

import json
import subprocess

from conftest import _host, _phones, _pod_description, cli, lab_of, pods, wait_for
from test_voice_services import SOUNDS, VOICEMAIL, messages

WORK = ("/var/spool/asterisk", "/var/lib/asterisk")


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def recreate(container: str) -> None:
    """Remove `container` and run a new one like it: same image, command, name, address,
    capabilities and volumes; nothing of the old container's own filesystem."""
    old = json.loads(docker("inspect", container))[0]
    config, host_config = old["Config"], old["HostConfig"]
    (network, endpoint), = old["NetworkSettings"]["Networks"].items()
    args = ["run", "--detach", "--name", container, "--hostname", config["Hostname"],
            "--network", network, "--ip", (endpoint.get("IPAMConfig") or {})["IPv4Address"]]
    for alias in endpoint.get("Aliases") or []:
        if alias not in (container, config["Hostname"], old["Id"][:12]):
            args += ["--network-alias", alias]
    for capability in host_config.get("CapAdd") or []:
        args += ["--cap-add", capability]
    for mount in old["Mounts"]:
        if mount["Type"] == "volume":
            args += ["--volume", f"{mount['Name']}:{mount['Destination']}"]
    for variable in config.get("Env") or []:
        args += ["--env", variable]
    if config.get("Tty"):
        args += ["--tty"]
    if config.get("Entrypoint"):
        args += ["--entrypoint", config["Entrypoint"][0]]
    args += [config["Image"], *(config.get("Entrypoint") or [])[1:], *(config.get("Cmd") or [])]
    docker("rm", "--force", container)
    docker(*args)


def test_voicemail_and_a_recorded_prompt_survive_a_recreated_container(converge) -> None:
    pod = pods()[-1]
    lab = lab_of(pod)
    part = lab.settings["lab_services_host"]
    container = lab.containers[part]
    mounts = {m["Destination"] for m in json.loads(docker("inspect", container))[0]["Mounts"]}
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
    before = host.check_output(f"sha256sum {files}")

    recreate(container)
    assert not _host(container).file("/usr/sbin/asterisk").exists, "the new container is not fresh"
    inventory_name = _pod_description(pod)["class"]["pods"][pod]["hosts"][part]
    result = converge(limit=inventory_name)
    assert result.returncode == 0, result.stdout[-3000:]

    host = _host(container)
    assert host.check_output(f"sha256sum {files}") == before
    # Asterisk counts the message again, and the user still registers to the new container.
    assert wait_for(lambda: f" {mailbox} " in f" {cli(host, 'voicemail show users')} ", 30)
    shown = next(line for line in cli(host, "voicemail show users").splitlines() if f" {mailbox} " in f" {line} ")
    assert int(shown.split()[-1]) >= len(made), shown
    assert phones.register(callee, lab.secret(callee), lab.registrar_of(callee)) == 200
