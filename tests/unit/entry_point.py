"""Run the project's real playbooks on throw-away inventories whose hosts are never reached,
run the asterisk role's own tasks on this machine, and load its filter plugins as plain modules.

Shared by the unit tests that check what site.yml (or one of the playbooks it imports)
refuses or writes on the controller, before any host would be contacted, and by those that
run one of the role's tasks the way a play does.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "asterisk"


def site(tmp_path: Path, inventory: dict, *args: str, playbook: str = "site.yml") -> subprocess.CompletedProcess[str]:
    """ansible-playbook `playbook` (from the repository's root) on `inventory`, with `args`."""
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
               str(ROOT / playbook), *args]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def role_tasks(tmp_path: Path, tasks: list[dict], *args: str, play_vars: dict | None = None,
               **env: str) -> subprocess.CompletedProcess[str]:
    """`tasks` in a play on this machine (local connection, this Python) with `play_vars`, the
    asterisk role's library and action plugins, and `env` added to the environment. The play
    is tmp_path/play.yml (a templates/ folder beside it is found as a role's). Modules run
    unpipelined and keep their files: each run leaves its AnsiballZ file for module_runs."""
    playbook = tmp_path / "play.yml"
    play = {"hosts": "localhost", "gather_facts": False, "tasks": tasks, "vars": play_vars or {}}
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}", *args, str(playbook)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LIBRARY=str(ROLE / "library"), ANSIBLE_ACTION_PLUGINS=str(ROLE / "action_plugins"),
               ANSIBLE_PIPELINING="0", ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TMP=str(tmp_path / "remote"),
               **env)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def module_runs(tmp_path: Path, module: str) -> int:
    """How many times role_tasks ran `module` in `tmp_path` so far."""
    return len(list((tmp_path / "remote").glob(f"*/AnsiballZ_{module}.py")))


def pbx_inventory(tmp_path: Path, all_vars: dict | None = None, **extra: dict) -> dict:
    """One pod (vm-a, vm-b) in group pbx, plus `extra` hosts (vm_b=... names vm-b), with the
    credentials file in `tmp_path`. 192.0.2.0/24 (TEST-NET-1) is never routed."""
    hosts = {"vm-a": {"lab_address": "192.0.2.153"}, "vm-b": {"lab_address": "192.0.2.154"}}
    for name, variables in extra.items():
        hosts[name.replace("_", "-")] = variables
    return {"all": {"vars": {"lab_credentials_file": str(tmp_path / "credentials.yml"),
                             "ansible_connection": "local", **(all_vars or {})},
                    "children": {"pbx": {"hosts": hosts}}}}


def filter_plugin(name: str) -> ModuleType:
    """plugins/filter/<name>.py, imported as module `name` (as Ansible would find it)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "filter" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module
