"""fail2ban's view of the lab: which lines of Asterisk's security log count, and who is never banned.

The filter (roles/asterisk/templates/etc/fail2ban/filter.d/asterisk-lab.conf.j2) is read the
way fail2ban reads it (its options, `<counted-<mode>>`, `%(_remote)s`, `<HOST>`) and matched
with Python's `re` against lines Asterisk 22 really wrote (asterisk_security_log_samples.txt),
one attempt of each kind. `fail2ban-regex` gave the same counts on the same lines.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "roles" / "asterisk" / "templates"
SAMPLES = Path(__file__).with_name("asterisk_security_log_samples.txt")
ADDRESSES = {"vm-a": "10.0.0.153", "vm-b": "10.0.0.154"}

# What Debian's asterisk.conf (which ours includes) cuts off before matching the failregex:
# "[date] SECURITY[thread] res_security_log.c: " (its prefregex, for this log's lines).
PREFIX = re.compile(r"^\[[^]]+\] SECURITY\[\d+\] [^:]+: (?P<content>.+)$")
# fail2ban's <HOST>, for the addresses of these lines.
HOST = r"(?P<host>[0-9A-Fa-f.:]+)"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


lab_view = _load("_lab_view_for_fail2ban", ROOT / "plugins" / "filter" / "lab_view.py")
lab_validate = _load("_lab_validate_for_fail2ban", ROOT / "plugins" / "filter" / "lab_validate.py")


def render(template: str, **settings: Any) -> str:
    """What the role writes from `template` for vm-a of the reference lab with `settings`."""
    lab = {**lab_view.lab_description({}), **settings}
    secrets = {
        "users": {u["name"]: f"secret-of-{u['name']}" for u in lab["lab_users"]},
        "trunks": {t["name"]: f"secret-of-{t['name']}" for t in lab["lab_trunks"]},
        "pins": {u["name"]: "864201" for u in lab["lab_users"]},
    }
    view = lab_view.lab_host_view(lab, "vm-a", ADDRESSES, secrets)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return env.get_template(template).render(asterisk_pbx=view)


def ini(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # option names keep their case
    parser.read_string(text)
    return parser


FILTER = ini(render("etc/fail2ban/filter.d/asterisk-lab.conf.j2"))


def failregex(mode: str) -> re.Pattern[str]:
    """The filter's failregex in `mode`, expanded as fail2ban expands it."""
    definition = FILTER["Definition"]
    text = definition["failregex"].replace("<mode>", mode)
    text = re.sub(r"<([\w-]+)>", lambda m: definition.get(m.group(1), m.group(0)), text)
    text = re.sub(r"%\((\w+)\)s", lambda m: definition[m.group(1)], text)
    return re.compile(text.replace("<HOST>", HOST))


def attempts() -> dict[str, list[str]]:
    """The sample lines, by the attempt ("# attempt: ..." line) that wrote them."""
    found: dict[str, list[str]] = {}
    for line in SAMPLES.read_text().splitlines():
        if line.startswith("# attempt: "):
            found[line.removeprefix("# attempt: ")] = []
        elif line.strip() and not line.startswith("#"):
            found[list(found)[-1]].append(line)
    return found


def counted(mode: str, lines: list[str]) -> list[str]:
    """The address of each line the filter counts as a failure in `mode`."""
    pattern = failregex(mode)
    hosts = []
    for line in lines:
        content = PREFIX.match(line)
        assert content, f"not a line of Asterisk's security log: {line}"
        match = pattern.search(content["content"])
        if match:
            hosts.append(match["host"])
    return hosts


# attempt -> (failures in the jail [asterisk], in the jail [asterisk-unknown-users])
EXPECTED = {
    "a phone registers with the right name and password": (0, 0),
    "a phone registers with a wrong password": (1, 0),
    "a phone registers with a mistyped user name": (1, 2),
    "a phone calls 600 with a wrong password": (1, 0),
    "a phone calls 600 with a mistyped user name": (1, 2),
    "a scanner sends OPTIONS as an unknown user and never answers the challenge": (0, 1),
    "a scanner sends OPTIONS as a user that exists and never answers the challenge": (0, 0),
    "a scanner sends REGISTER with a made-up Authorization, unknown user": (1, 1),
    "a scanner sends REGISTER with a made-up Authorization, user that exists": (1, 0),
}


def test_the_samples_hold_every_attempt_the_filter_is_meant_for() -> None:
    assert [name.rsplit(" (", 1)[0] for name in attempts()] == list(EXPECTED)
    assert all(attempts().values())


@pytest.mark.parametrize("attempt", list(attempts()))
def test_each_attempt_counts_as_the_jails_mean_it(attempt: str) -> None:
    lines, address = attempts()[attempt], attempt.rsplit("(", 1)[1].rstrip(")")
    wrong, unknown = counted("wrong-credentials", lines), counted("unknown-names", lines)
    assert (len(wrong), len(unknown)) == EXPECTED[attempt.rsplit(" (", 1)[0]]
    assert set(wrong + unknown) <= {address}


def test_a_mistyped_user_name_counts_once_as_a_wrong_password_does() -> None:
    # The issue: Debian's filter counted three failures for one mistyped name, one for a
    # wrong password; two typos banned a phone.
    by_kind = {name.rsplit(" (", 1)[0]: counted("wrong-credentials", lines) for name, lines in attempts().items()}
    assert len(by_kind["a phone registers with a mistyped user name"]) == 1
    assert len(by_kind["a phone registers with a wrong password"]) == 1


def test_a_successful_registration_or_an_unanswered_challenge_is_no_failure() -> None:
    ok = attempts()["a phone registers with the right name and password (10.99.0.110)"]
    assert ok and not counted("wrong-credentials", ok) and not counted("unknown-names", ok)


# ---- the jails

def jails(**settings: Any) -> configparser.RawConfigParser:
    return ini(render("etc/fail2ban/jail.d/asterisk-lab.local.j2", **settings))


def test_each_jail_reads_the_security_log_with_its_mode_of_the_lab_filter() -> None:
    found = jails()
    assert found.sections() == ["asterisk", "asterisk-unknown-users"]
    modes = {name: re.fullmatch(r"asterisk-lab\[mode=([\w-]+)\]", found[name]["filter"]) for name in found.sections()}
    assert {name: m and m.group(1) for name, m in modes.items()} == {
        "asterisk": "wrong-credentials", "asterisk-unknown-users": "unknown-names"}
    assert all(f"counted-{m.group(1)}" in FILTER["Definition"] for m in modes.values() if m)
    logger = render("etc/asterisk/logger.conf.j2")
    log = re.search(r"^(\S+) => security$", logger, re.M)
    assert log and {found[name]["logpath"] for name in found.sections()} == {f"/var/log/asterisk/{log.group(1)}"}


def test_a_scanner_gets_twice_the_requests_a_phone_gets_attempts() -> None:
    found = jails(lab_ban_after_failures=7, lab_ban_window_seconds=120, lab_ban_seconds=30)
    assert found["asterisk"]["maxretry"] == "7"
    assert found["asterisk-unknown-users"]["maxretry"] == "14"
    for name in found.sections():
        assert (found[name]["findtime"], found[name]["bantime"]) == ("120", "30")
        assert found[name]["enabled"] == "true"


def test_the_never_banned_networks_reach_every_jail_beside_the_pbx_itself() -> None:
    found = jails(lab_never_banned_networks=["198.51.100.0/24", "10.1.2.3/32"])
    for name in found.sections():
        assert found[name]["ignoreip"].split() == ["127.0.0.1/8", "::1", "198.51.100.0/24", "10.1.2.3/32"]


def test_by_default_only_the_pbx_itself_is_never_banned() -> None:
    assert lab_view.lab_description({})["lab_never_banned_networks"] == []
    for name in jails().sections():
        assert jails()[name]["ignoreip"].split() == ["127.0.0.1/8", "::1"]


@pytest.mark.parametrize(("value", "path"), [
    (["172.30.0/24"], "lab_never_banned_networks[0]"),
    (["198.51.100.0/24", "classroom"], "lab_never_banned_networks[1]"),
    ("198.51.100.0/24", "lab_never_banned_networks"),
])
def test_a_never_banned_network_that_is_none_is_refused(value: Any, path: str) -> None:
    lab = {**lab_view.lab_description({}), "lab_never_banned_networks": value}
    errors = [e for e in lab_validate.lab_errors(lab, list(ADDRESSES)) if e.startswith("lab_never_banned_networks")]
    assert [e.split(": ", 1)[0] for e in errors] == [path]
    assert "10.0.0.0/24" in errors[0]


def test_never_banned_networks_written_as_networks_are_accepted() -> None:
    lab = {**lab_view.lab_description({}), "lab_never_banned_networks": ["198.51.100.0/24", "2001:db8::/32", "10.0.0.7"]}
    assert not [e for e in lab_validate.lab_errors(lab, list(ADDRESSES)) if e.startswith("lab_never_banned_networks")]
