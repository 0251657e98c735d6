"""asterisk_packages: the proxy file first, then apt-get for what dpkg does not report installed,
and no module at all on a re-run.

The module runs as Ansible runs it, with stand-ins for dpkg-query, apt-get and apt-config on
PATH: dpkg-query reads the installed packages from a file that the apt-get stand-in appends to,
and apt-get records each call. The action plugin's shell probe runs as the PBX runs it (sh),
and the whole task through ansible-playbook on this machine, where it installs nothing."""

from __future__ import annotations

import grp
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from entry_point import ROLE, module_runs, role_tasks

MODULE = ROLE / "library" / "asterisk_packages.py"
ACTION = ROLE / "action_plugins" / "asterisk_packages.py"
_spec = importlib.util.spec_from_file_location("asterisk_packages_action", ACTION)
packages_action = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(packages_action)

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
  for name in "$@"; do case "$name" in -*|install|Dpkg::*) ;; *) echo "$name" >> "$RECORD/installed";; esac; done
  # A package that writes a file (as asterisk's writes /etc/asterisk): $WRITES names it.
  if [ -n "$WRITES" ]; then echo "$*" > "$WRITES"; fi;;
esac
exit 0
"""
APT_CONFIG = """#!/bin/sh
grep -q 'Acquire::http::Proxy "http' "$2"
"""


def stand_ins(tmp_path: Path) -> Path:
    """The folder of dpkg-query, apt-get and apt-config stand-ins (asterisk installed)."""
    tools = tmp_path / "bin"
    if not tools.exists():
        tools.mkdir()
        for name, script in (("dpkg-query", DPKG_QUERY), ("apt-get", APT_GET), ("apt-config", APT_CONFIG)):
            (tools / name).write_text(script)
            (tools / name).chmod(0o755)
        (tmp_path / "installed").write_text("asterisk\n")
    return tools


def run(tmp_path: Path, check_mode: bool = False, **args: object) -> dict:
    tools = stand_ins(tmp_path)
    proxy = args.pop("proxy", "")
    module_args = {"proxy_file": str(tmp_path / "01proxy"), "update_cache_seconds": 0,
                   "proxy_config": packages_action.proxy_text(proxy), "_ansible_check_mode": check_mode,
                   **args}  # fmt: skip
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


def play(tmp_path: Path, task: dict, *options: str, **env: str) -> dict:
    """The task through ansible-playbook on this machine, with the role's plugins; its result."""
    done = role_tasks(tmp_path, [{**task, "register": "result"}, {"ansible.builtin.debug": {"var": "result"}}],
                      *options, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                      **env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)["plays"][0]["tasks"][1]["hosts"]["localhost"]["result"]


def test_a_re_run_asks_the_host_with_one_shell_command_and_runs_no_module(tmp_path: Path) -> None:
    # dpkg is installed on every Debian machine, this one included: nothing to install.
    task = {
        "asterisk_packages": {
            "packages": ["dpkg"],
            "proxy": "http://apt-cache:3142",
            "proxy_file": str(tmp_path / "01proxy"),
        }
    }
    first = play(tmp_path, task)
    assert first["changed"] and first["proxy_changed"] and first["installed"] == [], first
    assert module_runs(tmp_path, "asterisk_packages") == 1  # it wrote the proxy file
    again = play(tmp_path, task)
    assert not again["changed"] and again["installed"] == [] and again["services_down"] == []
    assert module_runs(tmp_path, "asterisk_packages") == 1  # the probe answered: no module ran
    # Someone edits the file: the probe sees it, and the module puts it back.
    (tmp_path / "01proxy").write_text('Acquire::http::Proxy "http://elsewhere:3142";\n')
    fixed = play(tmp_path, task)
    assert fixed["changed"] and module_runs(tmp_path, "asterisk_packages") == 2
    assert (tmp_path / "01proxy").read_text() == packages_action.proxy_text("http://apt-cache:3142")


def test_the_same_command_says_what_is_at_the_paths_the_next_tasks_write(tmp_path: Path) -> None:
    conf, folder = tmp_path / "rtp.conf", tmp_path / "prompts"
    conf.write_text("rtpstart=10000\n")
    conf.chmod(0o640)
    folder.mkdir()
    folder.chmod(0o750)
    for name in ("menu1.wav", "menu 2.gsm", ".hidden"):
        (folder / name).write_text("")
    task = {"asterisk_packages": {
        "packages": ["dpkg"], "proxy_file": str(tmp_path / "01proxy"),
        "look_at_files": [str(conf), str(tmp_path / "absent.conf")],
        "look_at_folders": [str(folder), str(tmp_path / "no-folder")]}}  # fmt: skip
    found = play(tmp_path, task)["found"]
    owner, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    assert found.pop(str(folder)) | {"entries": None} == {"mode": "750", "owner": owner, "group": group,
                                                          "entries": None}
    assert found == {
        str(conf): {"mode": "640", "owner": owner, "group": group,
                    "sha256": hashlib.sha256(b"rtpstart=10000\n").hexdigest()},
        str(tmp_path / "absent.conf"): None,
        str(tmp_path / "no-folder"): None,
    }  # fmt: skip
    entries = play(tmp_path, task)["found"][str(folder)]["entries"]
    assert sorted(entries) == [".hidden", "menu 2.gsm", "menu1.wav"]


def test_after_an_install_what_it_found_is_asked_again(tmp_path: Path) -> None:
    # A package writes where the config task writes (asterisk's own /etc/asterisk files): what
    # the next task compares with is what is there after the install.
    tools, written = stand_ins(tmp_path), tmp_path / "pjsip.conf"
    task = {"asterisk_packages": {"packages": ["asterisk", "sox"], "proxy_file": str(tmp_path / "01proxy"),
                                  "update_cache_seconds": 0, "look_at_files": [str(written)]}}  # fmt: skip
    result = play(tmp_path, task, PATH=f"{tools}:{os.environ['PATH']}", RECORD=str(tmp_path), WRITES=str(written))
    assert result["changed"] and result["installed"] == ["sox"], result
    assert result["found"][str(written)]["sha256"] == hashlib.sha256(written.read_bytes()).hexdigest()


def test_a_service_it_cannot_tell_is_down_and_the_service_manager_comes_with_it(tmp_path: Path) -> None:
    # The same answer as Ansible's own fact gathering on this machine: the service module the
    # config task starts services with chooses systemd or an init script from it. With no service down it has no work.
    # Without an install it comes from a setup run; after one, from the package module's run.
    task = {"asterisk_packages": {"packages": ["dpkg"], "proxy_file": str(tmp_path / "01proxy")}}
    assert "ansible_facts" not in play(tmp_path, task)
    task["asterisk_packages"]["services"] = ["asterisk-lab-no-such-service"]
    result = play(tmp_path, task)
    assert result["services_down"] == ["asterisk-lab-no-such-service"] and not result["changed"]
    gathered = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", "ansible.builtin.setup",
         "-a", "gather_subset=!all,!min,service_mgr", "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                                                 ANSIBLE_LOAD_CALLBACK_PLUGINS="1"))  # fmt: skip
    facts = json.loads(gathered.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["ansible_facts"]
    assert result["ansible_facts"] == {"service_mgr": facts["ansible_service_mgr"]}
    assert module_runs(tmp_path, "setup") == 1 and module_runs(tmp_path, "asterisk_packages") == 0
    # After an install, the package module's own run gathers it: the same answer, no setup run.
    installing = {"asterisk_packages": {**task["asterisk_packages"], "packages": ["asterisk", "sox"],
                                        "update_cache_seconds": 0}}  # fmt: skip
    tools = stand_ins(tmp_path)
    installed = play(tmp_path, installing, PATH=f"{tools}:{os.environ['PATH']}", RECORD=str(tmp_path))
    assert installed["installed"] == ["sox"] and installed["services_down"] == ["asterisk-lab-no-such-service"]
    assert installed["ansible_facts"] == {"service_mgr": facts["ansible_service_mgr"]}
    assert "service_mgr" not in installed
    assert module_runs(tmp_path, "setup") == 1 and module_runs(tmp_path, "asterisk_packages") == 1


SYSTEMCTL = """#!/bin/sh
# systemctl <is-active|is-enabled> --quiet <name>: fails for the checks listed in $FAILING
case " $FAILING " in *" $1 "*) exit 3;; esac
exit 0
"""


@pytest.mark.parametrize("failing", [(), ("is-active",), ("is-enabled",), ("is-active", "is-enabled")])
def test_under_systemd_a_service_is_up_when_it_is_active_and_enabled(tmp_path: Path, failing: tuple[str, ...]) -> None:
    tools, booted = tmp_path / "bin", tmp_path / "run-systemd-system"
    tools.mkdir()
    booted.mkdir()
    (tools / "systemctl").write_text(SYSTEMCTL)
    (tools / "systemctl").chmod(0o755)
    probe = packages_action.probe_command(str(tmp_path / "01proxy"), [], ["fail2ban"], canaries=(str(booted),))
    done = subprocess.run(
        ["sh", "-c", probe],
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=f"{tools}:{os.environ['PATH']}", FAILING=" ".join(failing)),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ([f"{'down' if failing else 'up'} fail2ban"])


def test_without_systemd_a_service_with_no_init_script_is_down(tmp_path: Path) -> None:
    # No canary: the init script's branch, and there is no /etc/init.d/asterisk-lab-no-such-service.
    probe = packages_action.probe_command(
        str(tmp_path / "01proxy"),
        ["dpkg", "asterisk-lab-no-such-package"],
        ["asterisk-lab-no-such-service"],
        canaries=(str(tmp_path / "none"),),
    )
    found = packages_action.read_probe(subprocess.run(["sh", "-c", probe], capture_output=True, text=True).stdout)
    assert found == {"proxy": None, "installed": {"dpkg"}, "up": set(), "paths": {}}


INIT_SCRIPT = """#!/bin/sh
# /etc/init.d/<name> status: records that it was asked, and answers $STATUS
echo "$1" >> "$RECORD"
exit "$STATUS"
"""


@pytest.mark.parametrize(
    ("pid_file_names", "status", "asked", "up"),
    [
        ("the service", 3, False, True),  # fail2ban's status (0.15 s) is not run
        ("another process", 3, True, False),  # a pid file left by a stopped container
        ("another process", 0, True, True),
        ("no process", 3, True, False),
        (None, 0, True, True),
    ],
)
def test_without_systemd_a_live_process_of_its_name_in_its_pid_file_is_running(
    tmp_path: Path, pid_file_names: str | None, status: int, asked: bool, up: bool
) -> None:
    root, tools, record = tmp_path / "root", tmp_path / "bin", tmp_path / "asked"
    for folder in (root / "etc/init.d", root / "etc/rc2.d", root / "run/fail2ban", tools):
        folder.mkdir(parents=True)
    (root / "etc/init.d/fail2ban").write_text(INIT_SCRIPT)
    (root / "etc/init.d/fail2ban").chmod(0o755)
    (root / "etc/rc2.d/S01fail2ban").symlink_to("../init.d/fail2ban")
    (tools / "update-rc.d").write_text("#!/bin/sh\nexit 0\n")
    (tools / "update-rc.d").chmod(0o755)
    # A process's name is its program's file name: fail2ban-server, as the real daemon's is.
    daemon = tools / ("fail2ban-server" if pid_file_names == "the service" else "sleep")
    shutil.copy("/bin/sleep", daemon)
    with subprocess.Popen([str(daemon), "60"]) as process:
        try:
            if pid_file_names == "no process":
                process.kill()
                process.wait()
            if pid_file_names is not None:
                (root / "run/fail2ban/fail2ban.pid").write_text(f"{process.pid}\n")
            probe = packages_action.probe_command(
                str(tmp_path / "01proxy"), [], ["fail2ban"], canaries=(str(tmp_path / "none"),), root=str(root)
            )
            done = subprocess.run(
                ["sh", "-c", probe],
                capture_output=True,
                text=True,
                env=dict(os.environ, PATH=f"{tools}:{os.environ['PATH']}", RECORD=str(record), STATUS=str(status)),
            )
        finally:
            process.kill()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{'up' if up else 'down'} fail2ban"]
    assert record.exists() == asked
