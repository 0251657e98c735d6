"""Fixtures for the lab tests: the lab as its inventory describes it, and SIPp phones.

The tests read the same lab description the playbooks use (so they know whom to call),
evaluated through Ansible against the inventory under test: Molecule's when Molecule runs
them, else $LAB_INVENTORY when set, otherwise the local lab's (`make lab`). Secrets come from the lab's credentials file.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml

from sipp import SippRunner

REPO = Path(__file__).resolve().parents[2]

# Everything the tests need to know, evaluated by Ansible for each PBX of the inventory (so
# each pod's overrides show): the description, and where every host of the class is.
_SETTINGS = "query('ansible.builtin.varnames', '^lab_(?!secrets$)')"
_DESCRIPTION = {
    # Every lab setting as the playbooks see it: what the inventory sets (each pod's
    # overrides included) over the declared defaults, through the playbooks' own filter.
    "description": "{{ dict(%s | zip(query('ansible.builtin.vars', *%s))) | lab_description }}"
                   % (_SETTINGS, _SETTINGS),
    "secrets_file": "{{ lab_secrets_file | default('') }}",
    "credentials_file": "{{ lab_credentials_file }}",
    # The pods, as the playbooks find them: pod_of, part_of, pods {hosts, addresses}.
    "class": "{{ groups['all'] | lab_pods(hostvars, groups['pbx']) }}",
    "testers": "{{ groups['testers'] }}",
    # How Ansible reaches each host: its connection, and ansible_host.
    **{
        key: "{{ dict(groups['all'] | zip(groups['all'] | map('extract', hostvars)"
             " | map(attribute='%s', default=''))) }}" % key
        for key in ("ansible_connection", "ansible_host")
    },
}
# Call features: codes, parking, rooms, queues (the settings' names without lab_).
_FEATURES = (
    "services_host", "blind_transfer_keys", "attended_transfer_keys", "pickup_code",
    "park_extension", "parking_slots", "parking_seconds", "conference_rooms",
    "queues", "queue_login_code", "queue_logout_code", "queue_pause_code",
    "queue_unpause_code",
)


@dataclass(frozen=True)
class Lab:
    """One pod of the lab under test, as its students would read it off their phone card.

    Hosts are named by their part in the pod (vm-a, vm-b, tester, provider), whatever the
    inventory calls them, so a test reads the same in every pod.
    """

    pod: str
    users: list[dict[str, Any]]
    trunks: list[dict[str, Any]]
    echo_extension: str
    sip_port: int
    secrets: dict[str, dict[str, str]]
    containers: dict[str, str]  # part -> container
    addresses: dict[str, str]  # part -> address
    testers: list[str]
    features: dict[str, Any]  # lab_<name> of the call features, as {name: value}
    credentials_file: str
    settings: dict[str, Any] = field(default_factory=dict)  # lab_* variables, by name
    pbx_parts: tuple[str, ...] = ("vm-a", "vm-b")

    def user(self, name: str) -> dict[str, Any]:
        return next(u for u in self.users if u["name"] == name)

    def secret(self, name: str) -> str:
        return self.secrets["users"][name]

    def registrar_of(self, name: str) -> str:
        """Address of the PBX that serves user `name`."""
        return self.addresses[self.user(name)["host"]]


def _inventory() -> str:
    """Molecule's inventory under Molecule, LAB_INVENTORY if set, else the local lab's."""
    return (os.environ.get("MOLECULE_INVENTORY_FILE") or os.environ.get("LAB_INVENTORY")
            or str(REPO / "inventory" / "local"))


def _describe() -> dict[str, Any]:
    """The description as each PBX of the inventory sees it, by inventory host."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    ansible = shutil.which("ansible", path=str(Path(sys.executable).parent)) or "ansible"
    command = [
        ansible, "pbx", "-i", _inventory(), "--playbook-dir", str(REPO / "playbooks"),
        "-m", "ansible.builtin.debug", "-a", json.dumps({"msg": _DESCRIPTION}),
    ]
    output = subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True, text=True)
    hosts = json.loads(output.stdout)["plays"][0]["tasks"][0]["hosts"]
    return {host: result["msg"] for host, result in hosts.items()}


_described: dict[str, Any] = {}


def _description() -> dict[str, Any]:
    if not _described:
        _described.update(_describe())
    return _described


# A lab built by hand, being graded (--lab-grading FILE, grading.py): its pods, by name.
_grading: dict[str, Any] = {}


def pods() -> list[str]:
    """The pods of the lab under test, in name order (the first is the one most tests use)."""
    return sorted(_grading["pods"]) if _grading else _project_pods()


def _project_pods() -> list[str]:
    """The pods of the project's inventory (when grading, the first one's description is the assignment)."""
    found = next(iter(_description().values()))["class"]
    return sorted(pod for pod, entry in found["pods"].items() if entry["pbx_parts"])


def _pod_description(pod: str) -> dict[str, Any]:
    """The description as the pod's first PBX sees it."""
    if _grading:  # a hand-built lab's assignment: the project's own description
        pod = _project_pods()[0]
    found = next(iter(_description().values()))["class"]
    return _description()[found["pods"][pod]["first"]]


def _container(host: str, connection: str, ansible_host: str) -> str:
    """The container that is `host`: the one `docker exec` reaches (ansible_host, else the host's
    name), or for a host reached over SSH (Molecule's classroom stand-ins), the container
    Molecule named after it."""
    return (ansible_host or host) if "docker" in connection else host


def pytest_configure(config: pytest.Config) -> None:
    _register_lab_report(config)
    _read_grading_file(config)
    config.addinivalue_line(
        "markers", "local_lab: make test runs it against the local lab (make local-lab-checks), not in Molecule's"
        " run: it drives the local lab with make or breaks it on purpose, or it holds for any lab and the"
        " local lab's run, beside Molecule's, has the time"
    )
    config.addinivalue_line(
        "markers", "report_check: checks the lab report the run's questions wrote (test_lab_report.py)"
    )
    config.addinivalue_line(
        "markers", "softphones: real softphones (baresip) against the local lab (make local-lab-test); not run by"
        " Molecule, whose verify stage has no time left for them"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lab-grading", metavar="FILE", default=None,
                     help="grade a lab built by hand: its machines and accounts are in FILE (tests/lab/grading.py);"
                          " only the report's questions are asked, and nothing of that lab is changed")  # fmt: skip
    parser.addoption("--every-pod", action="store_true", default=False,
                     help="ask the report's questions of every pod, not only the first (grading always does)")
    parser.addoption("--lab-report", metavar="DIR", default=None,
                     help="capture each question of the lab report on the PBX and write its evidence"
                          " and verdict under DIR/<pod>/ (tests/lab/lab_report.py)")  # fmt: skip


def _register_lab_report(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "question(number, on=None): this test checks that question of the lab report"
        " (lab_report.QUESTIONS); with --lab-report it is captured on that PBX (the services host by default)"
    )
    folder = config.getoption("--lab-report")
    if folder:
        from lab_report import LabReport

        config.pluginmanager.register(LabReport(Path(folder).resolve()), "lab_report")


def _read_grading_file(config: pytest.Config) -> None:
    """--lab-grading FILE: checked before any call is placed; a bad file stops the run, saying why."""
    path = config.getoption("--lab-grading")
    if not path:
        return
    from grading import GradingError, load
    from lab_report import QUESTIONS

    try:
        _grading.update(load(path, _pod_description(_project_pods()[0])["description"]["lab_users"], QUESTIONS))
    except GradingError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A question marker names a question of the report: a typo would silently drop it. When
    grading, only the questions asked run: no other test may touch a lab we did not build."""
    from lab_report import QUESTIONS

    for item in items:
        for marker in item.iter_markers("question"):
            if marker.args[0] not in QUESTIONS:
                raise pytest.UsageError(f"{item.nodeid}: question {marker.args[0]!r} is not one of the"
                                        f" report's (lab_report.QUESTIONS): {', '.join(QUESTIONS)}")
    if _grading:
        asked = set(_grading["questions"])
        keep = [item for item in items if (m := item.get_closest_marker("question")) and m.args[0] in asked]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`lab_user` runs a test once for each user of the lab description. A question is asked of
    every pod when grading or with --every-pod (unless its module already runs it in every pod)."""
    every_pod = _grading or metafunc.config.getoption("--every-pod")
    if (every_pod and metafunc.definition.get_closest_marker("question") and "pod" in metafunc.fixturenames
            and not hasattr(metafunc.module, "pod")):  # test_two_pbx_lab.py's own `pod` runs every pod already
        metafunc.parametrize("pod", pods())
    if "lab_user" in metafunc.fixturenames:
        users = _pod_description(pods()[0])["description"]["lab_users"]
        metafunc.parametrize("lab_user", [user["name"] for user in users])


def _secrets_file(path: str) -> dict[str, Any]:
    """A secrets file as the lab reads it: plain YAML, or Vault-encrypted (opened with the
    vault password Ansible is given, ANSIBLE_VAULT_PASSWORD_FILE)."""
    text = Path(path).read_text() if Path(path).exists() else ""
    if text.startswith("$ANSIBLE_VAULT"):
        vault = shutil.which("ansible-vault", path=str(Path(sys.executable).parent)) or "ansible-vault"
        text = subprocess.run([vault, "view", path], check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(text) or {}


@functools.cache
def lab_of(pod: str) -> Lab:
    """Pod `pod` of the lab under test, with the secrets its phones register with."""
    if _grading:
        return _graded_lab(pod)
    found = _pod_description(pod)
    entry = found["class"]["pods"][pod]
    # The pod's generated secrets, under those the instructor chose (lab_secrets_file).
    layers = [(_secrets_file(found["credentials_file"]).get("pods") or {}).get(pod) or {}]
    if found["secrets_file"]:
        layers.append((_secrets_file(found["secrets_file"]).get("pods") or {}).get(pod) or {})
    secrets = {kind: {name: str(value) for layer in layers for name, value in (layer.get(kind) or {}).items()}
               for kind in ("users", "trunks", "pins")}
    described = found["description"]
    return Lab(
        pod=pod,
        users=described["lab_users"],
        trunks=described["lab_trunks"],
        echo_extension=str(described["lab_echo_extension"]),
        sip_port=int(described["lab_sip_port"]),
        secrets=secrets,
        containers={part: _container(host, found["ansible_connection"][host], found["ansible_host"][host])
                    for part, host in entry["hosts"].items()},
        addresses=entry["addresses"],
        testers=[found["class"]["part_of"][host] for host in found["testers"]
                 if found["class"]["pod_of"][host] == pod],
        features={name: described[f"lab_{name}"] for name in _FEATURES},
        credentials_file=found["credentials_file"],
        settings=described,
        pbx_parts=tuple(entry["pbx_parts"]),
    )


def _graded_lab(pod: str) -> Lab:
    """A pod of a hand-built lab: the assignment's services and numbers, the group's machines
    and accounts (grading file)."""
    from grading import PARTS

    entry = _grading["pods"][pod]
    described = _pod_description(pod)["description"]
    return Lab(
        pod=pod,
        users=[{key: value for key, value in user.items() if key not in ("secret", "pin")} for user in entry["users"]],
        trunks=described["lab_trunks"],
        echo_extension=str(described["lab_echo_extension"]),
        sip_port=int(described["lab_sip_port"]),
        secrets={"users": {user["name"]: user["secret"] for user in entry["users"]}, "trunks": {},
                 "pins": {user["name"]: user["pin"] for user in entry["users"] if user["pin"]}},
        containers={part: entry[part]["container"] for part in PARTS},
        addresses={part: entry[part]["address"] for part in PARTS},
        testers=["tester"],
        features={name: described[f"lab_{name}"] for name in _FEATURES},
        credentials_file="",
        settings=described,
    )


def cli(host: testinfra.host.Host, command: str) -> str:
    """What `asterisk -rx COMMAND` prints on a PBX."""
    return host.check_output(f"asterisk -rx {command!r}")


def wait_for(predicate: Any, timeout: float, step: float = 1.0) -> bool:
    """Whether `predicate()` comes true within `timeout` seconds (asked every `step`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


@functools.cache
def _host(container: str) -> testinfra.host.Host:
    return testinfra.get_host(f"docker://{container}")


@functools.cache
def _phones(container: str) -> SippRunner:
    runner = SippRunner(_host(container))
    runner.prepare()
    return runner


@pytest.fixture
def pod() -> str:
    """The pod a test runs against: the first; a module may parametrize it over pods()."""
    return pods()[0]


@pytest.fixture
def lab(pod: str) -> Lab:
    return lab_of(pod)


@pytest.fixture
def pbx(lab: Lab) -> dict[str, testinfra.host.Host]:
    """A testinfra host for each PBX of the pod, by part (vm-a, vm-b)."""
    return {part: _host(lab.containers[part]) for part in lab.pbx_parts}


@pytest.fixture
def tester(lab: Lab) -> testinfra.host.Host:
    """The pod's tester container, where the students' SIPp phones run."""
    return _host(lab.containers[lab.testers[0]])


@pytest.fixture
def phones(lab: Lab) -> SippRunner:
    """SIPp phones in the pod's tester container."""
    return _phones(lab.containers[lab.testers[0]])


@pytest.fixture
def provider_phones(lab: Lab) -> SippRunner:
    """SIPp in the pod's provider container: the ITSP, a host of its own."""
    return _phones(lab.containers["provider"])


@pytest.fixture(scope="session")
def converge(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run site.yml on the lab under test, as an instructor would, with extra variables.

    Returns the finished process (stdout holds the play output); never raises.
    """
    folder = tmp_path_factory.mktemp("converge")

    def run(extra_vars: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        playbook = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or "ansible-playbook"
        command = [playbook, "-i", _inventory(), str(REPO / "site.yml")]
        if extra_vars:
            extra = folder / "extra-vars.json"
            extra.write_text(json.dumps(extra_vars))
            command += ["-e", f"@{extra}"]
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)

    return run


# Figures a test measured (e.g. recovery times), printed at the end of the run.
_FIGURES: list[str] = []


@pytest.fixture
def report_figure() -> Any:
    """Call report_figure("what", value, "unit") to have a measurement printed at the end."""
    def report(what: str, value: float, unit: str = "s") -> None:
        _FIGURES.append(f"{what}: {value:.1f} {unit}")
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("lab figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
