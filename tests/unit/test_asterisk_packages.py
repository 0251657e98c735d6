"""asterisk_packages: the proxy file first, then apt-get for what dpkg does not report installed,
and nothing at all on a re-run. The module runs as Ansible runs it, with stand-ins for dpkg-query,
apt-get and apt-config on PATH: dpkg-query reads the installed packages from a file that the
apt-get stand-in appends to, and apt-get records each call."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "roles" / "asterisk" / "library" / "asterisk_packages.py"

DPKG_QUERY = """#!/bin/sh
shift 2  # --show --showformat=...
status=0
for name in "$@"; do
  if grep -qx "$name" "$RECORD/installed"; then echo "installed $name"
  else echo "dpkg-query: no packages found matching $name" >&2; status=1; fi
done
exit $status
"""
APT_GET = """#!/bin/sh
echo "$DEBIAN_FRONTEND $*" >> "$RECORD/apt-get.calls"
[ -e "$RECORD/apt-get.fails" ] && { echo "E: Unable to locate package nosuch"; exit 100; }
case " $* " in *" install "*)
  for name in "$@"; do case "$name" in -*|install|Dpkg::*) ;; *) echo "$name" >> "$RECORD/installed";; esac; done;;
esac
exit 0
"""
APT_CONFIG = """#!/bin/sh
grep -q 'Acquire::http::Proxy "http' "$2"
"""


def run(tmp_path: Path, check_mode: bool = False, **args: object) -> dict:
    tools = tmp_path / "bin"
    if not tools.exists():
        tools.mkdir()
        for name, script in (("dpkg-query", DPKG_QUERY), ("apt-get", APT_GET), ("apt-config", APT_CONFIG)):
            (tools / name).write_text(script)
            (tools / name).chmod(0o755)
        (tmp_path / "installed").write_text("asterisk\n")
    module_args = {"proxy_file": str(tmp_path / "01proxy"), "update_cache_seconds": 0,
                   "_ansible_check_mode": check_mode, **args}  # fmt: skip
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}))
    env = dict(os.environ, PATH=f"{tools}:{os.environ['PATH']}", RECORD=str(tmp_path))
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True, env=env)
    return json.loads(done.stdout)


def apt_calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "apt-get.calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_the_proxy_is_set_first_then_only_the_missing_packages_are_installed(tmp_path: Path) -> None:
    wanted = ["asterisk", "asterisk-core-sounds-fr", "fail2ban"]
    result = run(tmp_path, packages=wanted, proxy="http://apt-cache:3142")
    assert result["changed"] and result["installed"] == ["asterisk-core-sounds-fr", "fail2ban"], result
    assert (tmp_path / "01proxy").read_text().endswith('Acquire::http::Proxy "http://apt-cache:3142";\n')
    update, install = apt_calls(tmp_path)
    assert update == "noninteractive -q update"
    assert install.startswith("noninteractive -q -y --no-install-recommends") and install.endswith(
        "install asterisk-core-sounds-fr fail2ban")
    # A re-run asks dpkg and stops there.
    again = run(tmp_path, packages=wanted, proxy="http://apt-cache:3142")
    assert not again["changed"] and again["installed"] == [] and len(apt_calls(tmp_path)) == 2


def test_check_mode_says_what_would_change_and_changes_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, check_mode=True, packages=["asterisk", "sox"], proxy="http://apt-cache:3142")
    assert result["changed"] and result["proxy_changed"] and result["installed"] == ["sox"]
    proxy_diff, packages_diff = result["diff"]
    assert "apt-cache:3142" in proxy_diff["after"] and packages_diff["after"] == "sox\n"
    assert not (tmp_path / "01proxy").exists() and apt_calls(tmp_path) == []


def test_an_empty_proxy_removes_the_file_and_apt_downloads_straight(tmp_path: Path) -> None:
    run(tmp_path, packages=["asterisk"], proxy="http://apt-cache:3142")
    result = run(tmp_path, packages=["asterisk"], proxy="")
    assert result["changed"] and result["proxy_changed"] and not (tmp_path / "01proxy").exists()
    assert not run(tmp_path, packages=["asterisk"], proxy="")["changed"]


def test_a_failed_install_says_which_packages_and_what_apt_get_said(tmp_path: Path) -> None:
    (tmp_path / "apt-get.fails").touch()
    result = run(tmp_path, packages=["asterisk", "nosuch"])
    assert result["failed"]
    assert "updating apt's package lists failed" in result["msg"] and "Unable to locate package nosuch" in result["msg"]


def test_a_service_it_cannot_tell_is_down_and_the_service_manager_comes_with_it(tmp_path: Path) -> None:
    # The same answer as Ansible's own fact gathering on this machine: the service task
    # chooses systemd or an init script from it. With no service down it has no work.
    assert run(tmp_path, packages=["asterisk"], services=[]).get("ansible_facts") == {}
    result = run(tmp_path, packages=["asterisk"], services=["asterisk-lab-no-such-service"])
    assert result["services_down"] == ["asterisk-lab-no-such-service"]
    gathered = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", "ansible.builtin.setup",
         "-a", "gather_subset=!all,!min,service_mgr", "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                                                 ANSIBLE_LOAD_CALLBACK_PLUGINS="1"))  # fmt: skip
    facts = json.loads(gathered.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["ansible_facts"]
    assert result["ansible_facts"] == {"service_mgr": facts["ansible_service_mgr"]}
    assert result["changed"] is False


class Machine:
    """What service_is_up asks of AnsibleModule: the exit code of each command, the tools found."""

    def __init__(self, failing: set[tuple[str, ...]] = frozenset(), tools: tuple[str, ...] = ()) -> None:
        self.failing, self.tools, self.commands = failing, tools, []

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        self.commands.append(tuple(argv))
        return (3 if tuple(argv) in self.failing else 0), "", ""

    def get_bin_path(self, name: str) -> str | None:
        return f"/usr/sbin/{name}" if name in self.tools else None


def load_module():
    spec = importlib.util.spec_from_file_location("asterisk_packages", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loaded_under(monkeypatch: pytest.MonkeyPatch, systemd: bool):
    """The module, on a machine that the service module's own test finds systemd-run, or not."""
    module = load_module()
    monkeypatch.setattr(module, "is_systemd_managed", lambda _module: systemd)
    return module


@pytest.mark.parametrize("failing", [(), ("is-active",), ("is-enabled",), ("is-active", "is-enabled")])
def test_under_systemd_a_service_is_up_when_it_is_active_and_enabled(
    monkeypatch: pytest.MonkeyPatch, failing: tuple[str, ...]
) -> None:
    machine = Machine({("systemctl", check, "--quiet", "fail2ban") for check in failing})
    assert loaded_under(monkeypatch, systemd=True).service_is_up(machine, "fail2ban") is (not failing)


def test_under_another_manager_without_update_rc_d_a_service_counts_as_down(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = Machine(tools=("rc-service",))
    assert loaded_under(monkeypatch, systemd=False).service_is_up(machine, "fail2ban") is False
    assert machine.commands == []
