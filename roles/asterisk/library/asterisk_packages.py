#!/usr/bin/python
"""Point apt at the class's package cache and install the PBX's missing packages, in one run.
The role's action plugin (action_plugins/asterisk_packages.py) runs it only when one of them
must change.

Why not ansible.builtin.copy + ansible.builtin.apt: measured on the bench (bench/pods.py),
those are three module runs a host on every re-run (copy's stat and file, and the dpkg
check), and the apt module's python-apt pass made a cold install of 8 pods about 30 s
slower than plain apt-get through the same cache. Here dpkg-query answers "is it all
installed?" and apt-get runs only for what is missing, as an administrator would type it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: asterisk_packages
short_description: Set apt's download proxy and install missing Debian packages with apt-get
description:
  - The role's action plugin (action_plugins/asterisk_packages.py) first asks the host, in one
    shell command, about the proxy file, the packages and the services, and runs this module
    only when the proxy file or a package must change; a re-run where all is in place runs no
    module at all.
  - Writes the apt configuration file that sends downloads through O(proxy) (an apt-cacher-ng
    the class shares), or removes it when O(proxy) is empty, before anything is installed. A
    new file is checked with apt-config first.
  - Asks dpkg which of O(packages) are not installed and installs only those, with
    C(apt-get update) then C(apt-get install --no-install-recommends), non-interactively,
    keeping configuration files that exist.
  - In check mode nothing is written or installed; the result says what would be.
  - Its shell command also looks at O(look_at_files) and O(look_at_folders), what the role's
    later tasks write, and returns what is there (RV(found)), so that on a re-run those tasks
    ask the host nothing.
  - Says which of O(services) are not running or not enabled at boot, by the tests
    M(ansible.builtin.service) applies (systemd's C(is-active) and C(is-enabled); an init
    script's C(status) and its C(/etc/rc?.d/S??) links), so that the play runs the service
    module only for those. Any other service manager, or a service it cannot tell, counts as
    not running; then it also returns the fact C(service_mgr), found as Ansible's fact
    gathering finds it, which M(ansible.builtin.service) chooses by (the play gathers no facts).
options:
  packages:
    description: Debian packages that must be installed.
    type: list
    elements: str
    required: true
  proxy:
    description: URL of the apt proxy, e.g. http://apt-cache:3142; empty for none.
    type: str
    default: ""
  proxy_config:
    description:
      - What the proxy file must say, empty for no file. The action plugin sets it from
        O(proxy); give O(proxy) instead.
    type: str
    default: ""
  proxy_file:
    description: apt configuration file that holds the proxy setting.
    type: path
    default: /etc/apt/apt.conf.d/01asterisk-lab-proxy
  update_cache_seconds:
    description: apt's package lists older than this are updated before an install.
    type: int
    default: 86400
  services:
    description: Services that must run and start at boot, checked after the install (by the action plugin).
    type: list
    elements: str
    default: []
  look_at_files:
    description:
      - Files the role's later tasks write (the config files), looked at by the action
        plugin's shell command; what is there comes back in RV(found), for those tasks to
        compare with instead of asking the host again.
    type: list
    elements: path
    default: []
  look_at_folders:
    description: Folders the role's later tasks write in (the prompt folder), looked at the same way.
    type: list
    elements: path
    default: []
author: asterisk-lab
"""

EXAMPLES = r"""
- name: Install Asterisk through the class's cache
  asterisk_packages:
    packages: [asterisk, asterisk-core-sounds-fr]
    proxy: http://apt-cache:3142
    services: [asterisk]
"""

RETURN = r"""
installed:
  description: Packages that were (or, in check mode, would be) installed by this run.
  type: list
  elements: str
  returned: always
proxy_changed:
  description: Whether the proxy file was (or would be) written or removed.
  type: bool
  returned: always
services_down:
  description: Those of O(services) that are not running, or not enabled at boot, in their order.
  type: list
  elements: str
  returned: always
found:
  description:
    - What is at each path of O(look_at_files) and O(look_at_folders) after this task (asked
      again after an install), by path. A file - C(mode) (octal digits, as stat prints it),
      C(owner), C(group), C(sha256). A folder - C(mode), C(owner), C(group) and C(entries),
      the names in it. Null where nothing is.
  type: dict
  returned: always
ansible_facts:
  description:
    - C(service_mgr), e.g. C(systemd) on a VM, the container's init elsewhere. Gathered in the
      module's own run when it ran (an install, a proxy file to write), by a C(setup) run
      otherwise.
  type: dict
  returned: when one of O(services) is down and the host's facts have no C(service_mgr) yet
"""

import glob
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.facts.ansible_collector import get_ansible_collector
from ansible.module_utils.facts.system.distribution import DistributionFactCollector
from ansible.module_utils.facts.system.platform import PlatformFactCollector
from ansible.module_utils.facts.system.service_mgr import ServiceMgrFactCollector

LISTS = "/var/lib/apt/lists"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def set_proxy(module: AnsibleModule, path: str, text: str) -> tuple[bool, dict]:
    """Make the proxy file say `text` (or vanish when it is empty); returns (changed, diff)."""
    before = read(path)
    after = text or None
    diff = {"before_header": path, "after_header": path, "before": before or "", "after": after or ""}
    if before == after:
        return False, diff
    if module.check_mode:
        return True, diff
    if after is None:
        os.remove(path)
        return True, diff
    handle, draft = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".asterisk-lab-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(after)
    rc, _out, err = module.run_command(["apt-config", "--config-file", draft, "dump", "Acquire::http::Proxy"])
    if rc != 0:
        os.remove(draft)
        module.fail_json(msg=f"apt-config refuses the proxy setting {text.strip().splitlines()[-1]!r}: {err.strip()}")
    os.chmod(draft, 0o644)
    module.atomic_move(draft, path)
    return True, diff


def missing(module: AnsibleModule, packages: list[str]) -> list[str]:
    """The packages dpkg does not report installed, in the order asked."""
    # dpkg-query exits 1 when one of them is unknown to it: that one is missing, not an error.
    _rc, out, _err = module.run_command(
        ["dpkg-query", "--show", "--showformat=${db:Status-Status} ${Package}\n", *packages])
    installed = {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("installed ")}
    return [name for name in packages if name not in installed]


def lists_age(now: float) -> float:
    """Seconds since apt's package lists were last updated (infinite when there are none)."""
    stamps = [os.path.getmtime(path) for path in glob.glob(f"{LISTS}/*_Packages*")]
    return now - max(stamps) if stamps else float("inf")


def apt_get(module: AnsibleModule, what: str, *args: str) -> None:
    rc, out, err = module.run_command(["apt-get", "-q", *args], environ_update=APT_ENV)
    if rc != 0:
        tail = "\n".join((out + err).strip().splitlines()[-15:])
        module.fail_json(msg=f"{what} failed (apt-get exit {rc}):\n{tail}")


def service_manager(module: AnsibleModule) -> str:
    """The fact ansible.builtin.service chooses systemd or an init script by, gathered by
    Ansible's own collectors as `setup` (gather_subset service_mgr) gathers it, the facts it
    needs first (platform, distribution) included: here, the action plugin runs no `setup`
    after an install (a module run, about 0.4 s of the PBX's CPU)."""
    collector = get_ansible_collector(
        all_collector_classes=[PlatformFactCollector, DistributionFactCollector, ServiceMgrFactCollector],
        gather_subset=["!all", "!min", "service_mgr"], minimal_gather_subset=frozenset())  # fmt: skip
    return collector.collect(module=module).get("service_mgr", "service")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "required": True},
            "proxy_config": {"type": "str", "default": ""},
            # Given by the action plugin, whose defaults are those documented above.
            "proxy_file": {"type": "path", "required": True},
            "update_cache_seconds": {"type": "int", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    proxy_changed, diff = set_proxy(module, params["proxy_file"], params["proxy_config"])
    wanted = missing(module, params["packages"])
    if wanted and not module.check_mode:
        if lists_age(time.time()) > params["update_cache_seconds"]:
            apt_get(module, "updating apt's package lists", "update")
        apt_get(module, f"installing {' '.join(wanted)}", "-y", "--no-install-recommends",
                "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                "install", *wanted)  # fmt: skip
        still = missing(module, wanted)
        if still:
            module.fail_json(msg=f"apt-get install ended, but dpkg does not report installed: {', '.join(still)}")
    installs = {"before_header": "packages installed", "after_header": "packages installed",
                "before": "", "after": "".join(f"{name}\n" for name in wanted)}
    module.exit_json(changed=proxy_changed or bool(wanted), installed=wanted, proxy_changed=proxy_changed,
                     service_mgr=service_manager(module), diff=[diff, installs])


if __name__ == "__main__":
    main()
