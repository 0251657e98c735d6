"""Ask the PBX in one shell command whether its proxy file, its packages and its services are
as wanted, and run the module only when something must be installed or written.

Why not run the module every time: a module run costs a PBX about 0.4 s of CPU whatever it
does, nearly all of it importing Ansible's module_utils from the module's zip, with no
bytecode (`python3 -X importtime` on a PBX). On the bench's idempotent re-run of 8 pods
(bench/pods.py), module runs were most of the CPU the machine spent. sha256sum, dpkg-query and
the services' own status commands answer the same questions in milliseconds.

The services are only looked at here, never in the module: a service is up when the tests
ansible.builtin.service applies say so (systemd's is-active and is-enabled; an init script's
`status` and its /etc/rc?.d/S?? links). Any other service manager, or a service it cannot
tell, counts as down, and the service module then decides.

An init script's service is first looked for in its pid file, /run/<name>/<name>.pid (where
Debian's asterisk and fail2ban keep theirs): a live process there whose name begins with the
service's name is running. That is the test LSB's status_of_proc makes, which Asterisk's own
`status` runs; fail2ban's `status` instead asks the server with fail2ban-client, a Python
program: 0.15 s of the PBX's CPU, more than the rest of a re-run's questions to it together
(bench/pods.py). The name check keeps a pid file left by a stopped container from naming
some other process that got its number, the probe's own shell among them. Without such a
process, the init script's `status` decides.

The same shell command looks at the paths the role's later tasks write (look_at_files: the
config files; look_at_folders: the prompt folder) and returns what it found there, as it is
after this task (asked again after an install), in `found`. Those tasks compare with it and
ask the PBX nothing more: on the bench's 8-pod re-run, each of their own questions was a
`docker exec` of about 0.17 s of the machine's CPU (4 s of 12 s in all).
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

PROXY_FILE = "/etc/apt/apt.conf.d/01asterisk-lab-proxy"
# Where systemd leaves a sign that it booted the machine: the paths the service module's own
# test looks at (ansible.module_utils.service.is_systemd_managed).
SYSTEMD_CANARIES = ("/run/systemd/system/", "/dev/.run/systemd/", "/dev/.systemd/")

# Arguments come first, as shell assignments ($proxy_file, $packages, $services, $canaries,
# and $root, prefixed to /etc and /run: the tests' stand-in system). Each line it prints is
# "<what> <value>"; a service line is "up <name>" or "down <name>".
PROBE = r"""
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
if [ -e "$proxy_file" ]; then echo "proxy $(sha256sum < "$proxy_file" | cut -d' ' -f1)"; fi
if [ -n "$packages" ]; then
  dpkg-query --show --showformat='package ${db:Status-Status} ${Package}\n' $packages 2>/dev/null
fi
systemd_runs() {
  command -v systemctl >/dev/null 2>&1 || return 1
  for canary in $canaries; do [ -e "$canary" ] && return 0; done
  return 1
}
pid_file_names_it() {
  pid=$(cat "$root/run/$1/$1.pid" 2>/dev/null) || return 1
  case "$pid" in ''|*[!0-9]*) return 1;; esac
  name=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  case "$name" in "$1"*) return 0;; esac
  return 1
}
service_up() {
  if systemd_runs; then
    systemctl is-active --quiet "$1" && systemctl is-enabled --quiet "$1"
  else
    command -v update-rc.d >/dev/null 2>&1 && [ -x "$root/etc/init.d/$1" ] &&
      { pid_file_names_it "$1" || "$root/etc/init.d/$1" status >/dev/null 2>&1; } &&
      ls "$root"/etc/rc?.d/S??"$1" >/dev/null 2>&1
  fi
}
for service in $services; do
  if service_up "$service"; then echo "up $service"; else echo "down $service"; fi
done
# Regular files: one stat and one sha256sum for them all. Folders: their own stat, then one
# "entry <name>" line a file in them. Paths that do not exist print nothing.
look_at_files() {
  [ $# -gt 0 ] || return 0
  stat -c 'file %a %U %G %n' -- "$@" 2>/dev/null
  sha256sum -- "$@" 2>/dev/null | sed 's/^/sha256 /'
  true
}
look_at_folders() {
  for folder in "$@"; do
    if [ -d "$folder" ]; then
      stat -c 'folder %a %U %G %n' -- "$folder" && ls -1A -- "$folder" | sed 's/^/entry /'
    fi
  done
}
"""


def proxy_text(proxy: str) -> str:
    """What the proxy file says; nothing at all (no file) when there is no proxy."""
    if not proxy:
        return ""
    return (
        "// Managed by asterisk-lab; set asterisk_pbx.apt_proxy instead of editing this file.\n"
        f'Acquire::http::Proxy "{proxy}";\n'
    )


def probe_command(
    proxy_file: str,
    packages: list[str],
    services: list[str],
    canaries: tuple[str, ...] = SYSTEMD_CANARIES,
    root: str = "",
    files: list[str] | tuple[str, ...] = (),
    folders: list[str] | tuple[str, ...] = (),
) -> str:
    assignments = {
        "proxy_file": proxy_file,
        "packages": " ".join(packages),
        "services": " ".join(services),
        "canaries": " ".join(canaries),
        "root": root,
    }
    looks = [f"{function} {' '.join(shlex.quote(path) for path in paths)}"
             for function, paths in (("look_at_files", files), ("look_at_folders", folders)) if paths]  # fmt: skip
    return "\n".join(
        [*(f"{name}={shlex.quote(value)}" for name, value in assignments.items()), PROBE.strip(), *looks]
    )


def read_probe(stdout: str) -> dict[str, Any]:
    """The probe's lines as {'proxy': the file's sha256 or None, 'installed': names, 'up': names,
    'paths': {path: what is there}}: a file's {mode, owner, group, sha256}, a folder's {mode,
    owner, group, entries}; the mode as stat prints it (octal digits)."""
    found: dict[str, Any] = {"proxy": None, "installed": set(), "up": set(), "paths": {}}
    folder: dict[str, Any] | None = None
    for line in stdout.splitlines():
        what, _, value = line.partition(" ")
        if what == "proxy":
            found["proxy"] = value
        elif what == "package" and value.startswith("installed "):
            found["installed"].add(value.split(" ", 1)[1])
        elif what == "up":
            found["up"].add(value)
        elif what in ("file", "folder") and len(fields := value.split(" ", 3)) == 4:
            mode, owner, group, path = fields
            found["paths"][path] = {"mode": mode, "owner": owner, "group": group}
            folder = found["paths"][path] if what == "folder" else None
            if folder is not None:
                folder["entries"] = []
        elif what == "entry" and folder is not None:
            folder["entries"].append(value)
        elif what == "sha256":
            digest, _, path = value.partition("  ")
            if path in found["paths"]:
                found["paths"][path]["sha256"] = digest
    return found


def sha256(text: str) -> str | None:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None


class ActionModule(ActionBase):
    """asterisk_packages: packages, proxy and services checked by one shell command; the module
    (library/asterisk_packages.py) runs only for a proxy file to write or packages to install."""

    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(
            argument_spec={
                "packages": {"type": "list", "elements": "str", "required": True},
                "proxy": {"type": "str", "default": ""},
                "proxy_file": {"type": "path", "default": PROXY_FILE},
                "update_cache_seconds": {"type": "int", "default": 86400},
                "services": {"type": "list", "elements": "str", "default": []},
                "look_at_files": {"type": "list", "elements": "path", "default": []},
                "look_at_folders": {"type": "list", "elements": "path", "default": []},
            }
        )
        wanted = proxy_text(args["proxy"])
        found = self._probe(args)
        missing = [name for name in args["packages"] if name not in found["installed"]]
        result.update(changed=False, installed=[], proxy_changed=False)
        manager = None  # the module's answer, when it runs
        if missing or found["proxy"] != sha256(wanted):
            result.update(
                self._execute_module(
                    module_name="asterisk_packages",
                    task_vars=task_vars,
                    module_args={
                        "packages": args["packages"],
                        "proxy_config": wanted,
                        "proxy_file": args["proxy_file"],
                        "update_cache_seconds": args["update_cache_seconds"],
                    },
                )
            )
            if result.get("failed"):
                return result
            manager = result.pop("service_mgr", None)
            # Installing a service may start it (a VM's systemd does), and a package may write
            # where the next tasks write: ask again.
            looks = args["look_at_files"] or args["look_at_folders"]
            if (args["services"] or looks) and missing and not self._task.check_mode:
                found = self._probe(args)
        result["services_down"] = [name for name in args["services"] if name not in found["up"]]
        # Every path asked about, None where nothing is.
        result["found"] = {path: found["paths"].get(path) for path in args["look_at_files"] + args["look_at_folders"]}
        if result["services_down"] and "service_mgr" not in task_vars.get("ansible_facts", {}):
            result["ansible_facts"] = {"service_mgr": manager or self._service_manager(task_vars)}
        return result

    def _service_manager(self, task_vars: dict[str, Any]) -> str:
        """The fact ansible.builtin.service chooses systemd or an init script by, found as it
        finds it (the play gathers no facts): once here rather than once per service it starts."""
        gathered = self._execute_module(
            module_name="ansible.legacy.setup",
            task_vars=task_vars,
            module_args={"gather_subset": ["!all", "!min", "service_mgr"]},
        )
        return gathered.get("ansible_facts", {}).get("ansible_service_mgr", "service")

    def _probe(self, args: dict[str, Any]) -> dict[str, Any]:
        done = self._low_level_execute_command(
            probe_command(args["proxy_file"], args["packages"], args["services"],
                          files=args["look_at_files"], folders=args["look_at_folders"]),
            sudoable=True,
        )  # fmt: skip
        if done["rc"] != 0:
            raise AnsibleActionFail(
                f"asking the PBX about its packages failed (exit {done['rc']}): "
                f"{(done.get('stderr') or done.get('stdout') or '').strip()[-500:]}"
            )
        return read_probe(done["stdout"])
