#!/usr/bin/env python3
"""The local lab's inventory: LAB_PODS pods of containers (default 1; `make lab PODS=4`).

Each pod is VM A, VM B, a SIPp tester (the students' phones) and a SIPp provider (the
ITSP) on a Docker network of its own, at the classroom's last octets: .153, .154, .110,
and .200 for the provider. Pod 1 keeps the names and addresses the one-pod lab always had
(vm-a on 172.30.153.153, container asterisk-lab-vm-a); pod k is pod<k>-vm-a on
172.31.<k>.153. The apt cache that every pod shares joins each pod's network.
Each pod registers to the provider with an account of its own: 1040 for pod 1, 1041...
"""

from __future__ import annotations

import json
import os
import sys

NAME = "asterisk-lab"  # prefix of the containers and networks; label of the local lab
PARTS = {"vm-a": ("pbx", 153), "vm-b": ("pbx", 154), "tester": ("testers", 110),
         "provider": ("providers", 200)}  # fmt: skip
PROVIDER_ACCOUNT = 1040  # pod 1's account at the provider; pod k's is 1039 + k
MAX_PODS = 200


def pod_count(text: str) -> int:
    if text.isdigit() and 1 <= int(text) <= MAX_PODS:
        return int(text)
    sys.exit(f"LAB_PODS: {text!r} is not a number of pods from 1 to {MAX_PODS}; e.g. make lab PODS=4")


def pod_hosts(k: int) -> dict[str, dict[str, object]]:
    """The hosts of pod k, with their variables."""
    first = k == 1
    subnet = "172.30.153" if first else f"172.31.{k}"
    network = NAME if first else f"{NAME}-pod{k}"
    hosts = {}
    for part, (_group, octet) in PARTS.items():
        name = part if first else f"pod{k}-{part}"
        hosts[name] = {
            "ansible_host": f"{NAME}-{name}",
            "lab_pod": f"pod{k}",
            "lab_part": part,
            "lab_address": f"{subnet}.{octet}",
            "lab_provider_address": f"{subnet}.{PARTS['provider'][1]}",
            "lab_provider_username": str(PROVIDER_ACCOUNT + k - 1),
            # The shared cache, by its container's name (roles/local_lab: <name>-apt-cache).
            "lab_apt_proxy": f"http://{NAME}-apt-cache:3142",
            "local_lab_network": network,
            "local_lab_subnet": f"{subnet}.0/24",
        }
    return hosts


def inventory(pods: int) -> dict[str, object]:
    groups: dict[str, list[str]] = {group: [] for group, _octet in PARTS.values()}
    hostvars: dict[str, object] = {}
    for k in range(1, pods + 1):
        for name, variables in pod_hosts(k).items():
            groups[PARTS[str(variables["lab_part"])][0]].append(name)
            hostvars[name] = variables
    return {
        **{group: {"hosts": names} for group, names in groups.items()},
        "_meta": {"hostvars": hostvars},
    }


if __name__ == "__main__":
    count = pod_count(os.environ.get("LAB_PODS", "1"))
    print(json.dumps(inventory(count) if "--list" in sys.argv else {}))
