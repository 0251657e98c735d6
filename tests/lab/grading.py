"""Grading a lab built by hand: the grading file, read and checked before any call is placed.

The assignment is the project's lab description (lab.yml: users, extensions, services and
their numbers). A grading file says, for each group (pod), where its machines are and the
accounts the group gave its users; the report's questions (lab_report.QUESTIONS) are then
asked of that lab from the outside, and nothing of it is changed::

    questions: all                 # or a list of question numbers, e.g. [1.1-register, 2.2-busy]
    pods:
      group1:
        vm-a: {address: 10.0.1.153, container: group1-vm-a}
        vm-b: {address: 10.0.1.154, container: group1-vm-b}
        tester: {address: 10.0.1.110, container: group1-tester}     # SIPp phones
        provider: {address: 10.0.1.200, container: group1-provider} # SIPp ITSP
        users:
          amine: {secret: "...", pin: "1234"}     # extension: the assignment's, unless given

Machines are reached with `docker exec` (container): the PBXs for `asterisk -rx` and the
captures, the tester and the provider for SIPp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PARTS = ("vm-a", "vm-b", "tester", "provider")


class GradingError(ValueError):
    """A grading file that cannot be used; the message names the file, the place and the fix."""


def load(path: str | Path, assignment_users: list[dict[str, Any]], questions: dict[str, str]) -> dict[str, Any]:
    """The grading file at `path`, checked: {"questions": [...], "pods": {pod: entry}}.

    Each pod's entry gets `users`: the assignment's users with the group's extension (if it
    gave one), secret and PIN. Raises GradingError naming what is wrong; never prints a secret.
    """
    path = Path(path)
    try:
        found = yaml.safe_load(path.read_text())
    except OSError as error:
        raise GradingError(f"grading file {path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise GradingError(f"grading file {path}: not YAML ({error})") from None
    if not isinstance(found, dict) or not isinstance(found.get("pods"), dict) or not found["pods"]:
        raise GradingError(f"grading file {path}: 'pods' must map each group's name to its machines and users")
    asked = found.get("questions", "all")
    if asked == "all":
        asked = list(questions)
    if not isinstance(asked, list) or not asked:
        raise GradingError(f"grading file {path}: 'questions' must be 'all' or a list of question numbers")
    unknown = [str(q) for q in asked if str(q) not in questions]
    if unknown:
        raise GradingError(f"grading file {path}: questions: {', '.join(unknown)} is not a question of the"
                           f" report; the questions are: {', '.join(questions)}")
    names = [u["name"] for u in assignment_users]
    pods = {str(pod): _pod(path, str(pod), entry, assignment_users, names) for pod, entry in found["pods"].items()}
    addresses: dict[str, str] = {}
    for pod, entry in pods.items():
        for part in PARTS:
            where = f"pods.{pod}.{part}.address"
            other = addresses.setdefault(entry[part]["address"], where)
            if other != where and part not in ("tester", "provider"):
                raise GradingError(f"grading file {path}: {where}: {entry[part]['address']} is already {other};"
                                   " each PBX has an address of its own")
    return {"questions": [str(q) for q in asked], "pods": pods}


def _pod(path: Path, pod: str, entry: Any, assignment_users: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise GradingError(f"grading file {path}: pods.{pod} must map vm-a, vm-b, tester, provider and users")
    checked: dict[str, Any] = {}
    for part in PARTS:
        machine = entry.get(part)
        where = f"pods.{pod}.{part}"
        if not isinstance(machine, dict):
            raise GradingError(f"grading file {path}: {where} is missing: give its address and container,"
                               f" e.g. {part}: {{address: 10.0.1.153, container: {pod}-{part}}}")
        for key in ("address", "container"):
            if not str(machine.get(key) or "").strip():
                raise GradingError(f"grading file {path}: {where}.{key} is missing: the {key} of {pod}'s {part}")
        checked[part] = {"address": str(machine["address"]).strip(), "container": str(machine["container"]).strip()}
    given = entry.get("users")
    if not isinstance(given, dict):
        raise GradingError(f"grading file {path}: pods.{pod}.users must map each user of the assignment"
                           f" ({', '.join(names)}) to their secret")
    strangers = [str(name) for name in given if name not in names]
    if strangers:
        raise GradingError(f"grading file {path}: pods.{pod}.users: {', '.join(strangers)} is not a user of the"
                           f" assignment; its users are {', '.join(names)}")
    users = []
    for user in assignment_users:
        account = given.get(user["name"])
        where = f"pods.{pod}.users.{user['name']}"
        if not isinstance(account, dict) or not str(account.get("secret") or ""):
            raise GradingError(f"grading file {path}: {where} has no secret: give the secret its phone"
                               " registers with (secret: ...)")
        users.append({**user, "extension": str(account.get("extension", user["extension"])),
                      "secret": str(account["secret"]), "pin": str(account.get("pin") or "")})
    checked["users"] = users
    return checked
