#!/usr/bin/env python3
"""Provisioning speed of the lab against its floors, in one run; prints the figures.

- cold: site.yml on two fresh containers (vm-a, vm-b), from nothing to a running lab;
- cold floor: the same Debian packages installed by plain apt-get in two fresh containers;
- idempotent: site.yml again on the provisioned containers (it must change nothing);
- idempotent floor: a playbook that only gathers facts on both hosts.
Targets: cold <= 2.5 x its floor; idempotent <= 4 x its floor with 0 changed.

Run from the repository (after `make images`): python3 bench/provision.py
It uses containers and a network of its own (asterisk-lab-bench) and removes them at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
NETWORK = "asterisk-lab-bench"
SUBNET_PREFIX = "172.30.155"
PBX_HOSTS = {"vm-a": 153, "vm-b": 154}
IMAGE = "asterisk-lab/base:latest"
TARGETS = {"cold": 2.5, "idempotent": 4.0}
REPEATS = 3


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, cwd=REPO, **kwargs)


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.monotonic()
    result = run(cmd, capture_output=True)
    return time.monotonic() - start, result.stdout


def write_inventory(folder: Path) -> Path:
    """A throw-away inventory: the lab description comes from group_vars/ beside site.yml."""
    hosts = {
        name: {
            "ansible_host": f"{NETWORK}-{name}",
            "lab_address": f"{SUBNET_PREFIX}.{octet}",
        }
        for name, octet in PBX_HOSTS.items()
    }
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3",
                "lab_credentials_file": str(folder / "credentials.yml"),
                "local_lab_network": NETWORK,
                "local_lab_subnet": f"{SUBNET_PREFIX}.0/24",
            },
            "children": {"pbx": {"hosts": hosts}},
        }
    }
    path = folder / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def packages(host: str) -> list[str]:
    """What the asterisk role installs on `host`: prompt tools only on the services PBX."""
    defaults = yaml.safe_load((REPO / "roles/asterisk/defaults/main.yml").read_text())
    lab = yaml.safe_load((REPO / "playbooks/group_vars/all/lab.yml").read_text())
    extra = defaults["asterisk_prompt_packages"] if host == lab["lab_services_host"] else []
    return defaults["asterisk_packages"] + extra


def apt_floor() -> float:
    """Seconds for plain apt-get to install the role's packages in two fresh containers."""
    names = {host: f"{NETWORK}-floor-{host}" for host in PBX_HOSTS}
    try:
        for name in names.values():
            run(["docker", "run", "-d", "--name", name, IMAGE], capture_output=True)
        start = time.monotonic()
        jobs = [
            subprocess.Popen(["docker", "exec", name, "sh", "-c",
                              "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install"
                              f" -y -qq --no-install-recommends {' '.join(packages(host))} >/dev/null"])
            for host, name in names.items()
        ]
        if any(job.wait() != 0 for job in jobs):
            sys.exit("apt-get failed in a floor container")
        return time.monotonic() - start
    finally:
        run(["docker", "rm", "-f", *names.values()], capture_output=True)


def changed_count(recap: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", recap.split("PLAY RECAP")[-1]))


def main() -> None:
    env_path = str(REPO / ".venv/bin")
    os.environ["PATH"] = f"{env_path}:{os.environ['PATH']}"
    os.environ["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    with tempfile.TemporaryDirectory(prefix="asterisk-lab-bench-") as tmp:
        inventory = str(write_inventory(Path(tmp)))
        playbook = ["ansible-playbook", "-i", inventory]
        try:
            run([*playbook, "playbooks/local-lab-down.yml"], capture_output=True)
            run([*playbook, "playbooks/local-lab-up.yml"], capture_output=True)
            cold, _ = timed([*playbook, "site.yml"])
            # Warm runs vary with the machine's load: take the best of a few of each.
            reruns = [timed([*playbook, "site.yml"]) for _ in range(REPEATS)]
            facts = min(timed([*playbook, "bench/gather-facts.yml"])[0] for _ in range(REPEATS))
        finally:
            run([*playbook, "playbooks/local-lab-down.yml"], capture_output=True)
    cold_floor = apt_floor()
    idempotent = min(seconds for seconds, _ in reruns)
    changed = max(changed_count(recap) for _, recap in reruns)
    ratios = {"cold": cold / cold_floor, "idempotent": idempotent / facts}
    print(f"cold provision (site.yml, fresh containers)   {cold:7.1f} s")
    print(f"cold floor (plain apt-get, fresh containers)  {cold_floor:7.1f} s")
    print(f"idempotent re-run (site.yml, best of {REPEATS})       {idempotent:7.1f} s  changed={changed}")
    print(f"idempotent floor (gather facts only, best of {REPEATS}) {facts:7.1f} s")
    for name, ratio in ratios.items():
        verdict = "meets" if ratio <= TARGETS[name] else "MISSES"
        print(f"{name} ratio {ratio:5.2f} (target <= {TARGETS[name]}): {verdict} the target")
    if changed:
        print("the idempotent re-run changed something: MISSES the target")


if __name__ == "__main__":
    main()
