"""Validate the lab description (playbooks/group_vars/all/lab.yml) before any host is touched.

    {{ lab_description | lab_errors(groups['pbx']) }}

`lab_description` is a dict of the `lab_*` variables, with `lab_secrets` already merged from
the inventory and the generated credentials file ({users: {name: secret}, trunks: {...}}).
The filter returns every problem at once, as messages naming the variable path, the
offending value and the fix; [] means the lab is valid. Secret values and PINs never appear
in a message. Standard library only, so plain pytest can import it.

To validate a new service: add its dialplan-code variable to SERVICE_CODE_VARS, a check of
one variable to VALUE_CHECKS, a new key of users or trunks to USER_FIELDS / TRUNK_FIELDS,
and a check across variables to CHECKS.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Lab = Mapping[str, Any]
Hosts = Sequence[str]
FieldCheck = Callable[[str, Any, Hosts], list[str]]

NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")  # what a PJSIP section name may hold
USER_EXTENSION_RE = re.compile(r"[0-9]{2,8}")
DIGITS_RE = re.compile(r"[0-9]+")
CODE_RE = re.compile(r"[*#]?[0-9]+")  # an exact service code: 600, *8, #1
PIN_RE = re.compile(r"[0-9]{4,10}")

KNOWN_CODECS = frozenset(
    "ulaw alaw gsm g722 g723 g726 g726aal2 g729 opus ilbc speex speex16 speex32 lpc10"
    " adpcm slin slin12 slin16 slin24 slin32 slin44 slin48 slin96 slin192 siren7 siren14"
    " codec2 testlaw h261 h263 h263p h264 h265 mpeg4 vp8 vp9 jpeg png t140 t140red".split()
)
REPORT_PASSWORDS = frozenset({"test", "azerty", "vitrygtr"})  # published in the report
MIN_SECRET_LENGTH = 12
DEFAULT_LANGUAGES = ("en", "fr")
REQUIRED = (
    "lab_users", "lab_trunks", "lab_echo_extension", "lab_ring_seconds", "lab_codecs",
    "lab_sip_port", "lab_rtp_port_start", "lab_rtp_port_end", "lab_generate_secrets",
)  # fmt: skip

# Dialplan codes reserved by a lab variable: variable -> what dialling it does. A user's
# extension may not be one of them; `lab_service_codes` ({purpose: code}) adds more.
SERVICE_CODE_VARS: dict[str, str] = {
    "lab_echo_extension": "the echo test",
}


# ------------------------------------------------------------------------- helpers


def show(value: Any) -> str:
    """The value as it would read in YAML: strings quoted, long values cut."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def matches(regex: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and regex.fullmatch(value) is not None


def asterisk_pattern(pattern: str) -> re.Pattern[str] | None:
    """The Python regex of an Asterisk pattern such as `_9.` or `_6XX[1-5]`."""
    classes = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}
    out, rest = [], pattern[1:]
    while rest:
        end = rest.find("]") if rest[0] == "[" else 0
        if rest[0] == "[" and end < 2:
            return None
        if end:
            out.append("[" + re.escape(rest[1:end]).replace("\\-", "-") + "]")
        else:
            out.append(classes.get(rest[0].upper(), re.escape(rest[0])))
        rest = rest[end + 1 :]
    return re.compile("".join(out)) if out else None


def service_codes(lab: Lab) -> list[tuple[str, str, str]]:
    """(variable path, purpose, code) of every dialplan code the lab reserves."""
    codes = [(v, why, lab[v]) for v, why in SERVICE_CODE_VARS.items() if v in lab]
    extra = lab.get("lab_service_codes")
    if isinstance(extra, Mapping):
        codes += [(f"lab_service_codes.{k}", str(k), v) for k, v in extra.items()]
    return [code for code in codes if isinstance(code[2], str)]


def names_of(lab: Lab, var: str) -> dict[str, int]:
    """name -> index of the items of list `var` that have a string name."""
    items = lab.get(var) if is_list(lab.get(var)) else []
    named = [(i, it) for i, it in enumerate(items) if isinstance(it, Mapping)]
    return {
        it["name"]: i for i, it in reversed(named) if isinstance(it.get("name"), str)
    }


# ------------------------------------------------------------- one value, by path


def int_problem(path: str, value: Any, low: int, high: int) -> list[str]:
    if is_int(value) and low <= value <= high:
        return []
    return [
        f"{path}: {show(value)} is not a whole number from {low} to {high}; use one"
    ]


def bool_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if isinstance(value, bool):
        return []
    return [f"{path}: {show(value)} is not a boolean; use true or false"]


def name_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if matches(NAME_RE, value):
        return []
    return [
        f"{path}: {show(value)} is not a valid name; use only letters, digits, _ - and ."
    ]


def extension_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if matches(USER_EXTENSION_RE, value):
        return []
    return [f'{path}: {show(value)} is not a string of 2 to 8 digits; quote it: "100"']


def digits_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if matches(DIGITS_RE, value):
        return []
    return [f'{path}: {show(value)} is not a string of digits; quote it: "600"']


def pin_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if matches(PIN_RE, value):
        return []
    return [
        f'{path}: the PIN (hidden) is not a string of 4 to 10 digits; quote it: "4821"'
    ]


def host_problem(path: str, value: Any, hosts: Hosts) -> list[str]:
    if isinstance(value, str) and value in hosts:
        return []
    return [f"{path}: {show(value)} is not a pbx host; use one of {', '.join(hosts)}"]


def provider_host_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if isinstance(value, str) and value.strip():
        return []
    return [f"{path}: {show(value)} is not a host name or address; set the provider's"]


def port_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    return int_problem(path, value, 1, 65535)


def codecs_problem(path: str, codecs: Any, hosts: Hosts = ()) -> list[str]:
    if not is_list(codecs) or not codecs:
        return [f"{path}: {show(codecs)} is not a non-empty list; e.g. [ulaw, alaw]"]
    errors, seen = [], set()
    for i, codec in enumerate(codecs):
        lower = codec.lower() if isinstance(codec, str) else None
        if show(codec) in seen:
            errors.append(f"{path}[{i}]: {show(codec)} is listed twice; remove one")
        elif not isinstance(codec, str) or codec not in KNOWN_CODECS:
            fix = f"write {lower}" if lower in KNOWN_CODECS else "e.g. ulaw, g722, h264"
            errors.append(f"{path}[{i}]: {show(codec)} is not an Asterisk codec; {fix}")
        seen.add(show(codec))
    return errors


def languages_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if is_list(value) and value and all(isinstance(x, str) and x for x in value):
        return []
    return [
        f"{path}: {show(value)} is not a non-empty list of languages; e.g. [en, fr]"
    ]


def mapping_problem(
    path: str,
    item: Any,
    fields: Mapping[str, FieldCheck],
    required: Sequence[str],
    hosts: Hosts,
) -> list[str]:
    """Problems of a mapping whose keys are `fields`: missing, unknown, bad values."""
    if not isinstance(item, Mapping):
        return [
            f"{path}: {show(item)} is not a mapping; write {{{', '.join(required)}}}"
        ]
    errors = [f"{path}.{key}: missing; set it" for key in required if key not in item]
    for key, value in item.items():
        if key in fields:
            errors += fields[key](f"{path}.{key}", value, hosts)
            continue
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        fix = f"did you mean {close[0]}?" if close else f"use {', '.join(fields)}"
        errors.append(f"{path}.{key}: unknown key; {fix}")
    return errors


OUTSIDE_REGISTRAR_FIELDS: dict[str, FieldCheck] = {
    "host": provider_host_problem,
    "port": port_problem,
}


def registrar_problem(path: str, value: Any, hosts: Hosts) -> list[str]:
    """A pbx host of the inventory, or an outside provider {host, port}."""
    if isinstance(value, Mapping):
        return mapping_problem(path, value, OUTSIDE_REGISTRAR_FIELDS, ("host",), hosts)
    return host_problem(path, value, hosts)


@dataclass(frozen=True)
class ListSpec:
    """A list variable of mappings: the check of each key, the keys that must be unique."""

    fields: Mapping[str, FieldCheck]
    required: tuple[str, ...]
    unique: tuple[str, ...]
    may_be_empty: bool = False


LISTS: dict[str, ListSpec] = {
    "lab_users": ListSpec(
        fields={
            "name": name_problem,
            "extension": extension_problem,
            "host": host_problem,
            "pin": pin_problem,
        },
        required=("name", "extension", "host"),
        unique=("name", "extension"),
    ),
    "lab_trunks": ListSpec(
        fields={
            "name": name_problem,
            "registrant": host_problem,
            "registrar": registrar_problem,
        },
        required=("name", "registrant", "registrar"),
        unique=("name",),
        may_be_empty=True,
    ),
}

# variable -> check of its value alone, run when the variable is present
VALUE_CHECKS: dict[str, Callable[[str, Any], list[str]]] = {
    **{var: digits_problem for var in SERVICE_CODE_VARS},
    "lab_name": name_problem,
    "lab_ring_seconds": lambda path, value: int_problem(path, value, 1, 300),
    "lab_codecs": codecs_problem,
    "lab_sip_port": port_problem,
    "lab_rtp_port_start": lambda path, value: int_problem(path, value, 1024, 65535),
    "lab_rtp_port_end": lambda path, value: int_problem(path, value, 1024, 65535),
    "lab_generate_secrets": bool_problem,
    "lab_allow_weak_secrets": bool_problem,
    "lab_available_languages": languages_problem,
}


# ------------------------------------------------------------ checks of the whole lab


def check_values(lab: Lab, hosts: Hosts) -> list[str]:
    errors = [
        f"{var}: missing; set it in playbooks/group_vars/all/lab.yml"
        for var in REQUIRED
        if var not in lab
    ]
    return errors + [
        e for var, f in VALUE_CHECKS.items() if var in lab for e in f(var, lab[var])
    ]


def check_lists(lab: Lab, hosts: Hosts) -> list[str]:
    return [
        e
        for var, spec in LISTS.items()
        if var in lab
        for e in list_problems(var, lab[var], spec, hosts)
    ]


def list_problems(var: str, items: Any, spec: ListSpec, hosts: Hosts) -> list[str]:
    """Problems of each item of list `var`, and of values used twice."""
    what, fields = var.removeprefix("lab_").rstrip("s"), ", ".join(spec.required)
    if not is_list(items) or not (items or spec.may_be_empty):
        kind = "list" if spec.may_be_empty else "non-empty list"
        return [
            f"{var}: {show(items)} is not a {kind}; list each {what} as {{{fields}}}"
        ]
    errors = [
        error
        for i, item in enumerate(items)
        for error in mapping_problem(
            f"{var}[{i}]", item, spec.fields, spec.required, hosts
        )
    ]
    for key in spec.unique:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            value = item.get(key) if isinstance(item, Mapping) else None
            if isinstance(value, str) and value in seen:
                first = f"{var}[{seen[value]}] ({items[seen[value]].get('name')})"
                errors.append(
                    f"{var}[{i}].{key}: {show(value)} is already the {key} of {first};"
                    f" give each {what} its own {key}"
                )
            elif isinstance(value, str):
                seen[value] = i
    return errors


def check_users(lab: Lab, hosts: Hosts) -> list[str]:
    """No user's extension may be a service code, or be matched by a service pattern."""
    errors = []
    for i, user in enumerate(lab["lab_users"] if is_list(lab.get("lab_users")) else []):
        ext = user.get("extension") if isinstance(user, Mapping) else None
        for path, why, code in (
            service_codes(lab) if matches(USER_EXTENSION_RE, ext) else []
        ):
            regex = asterisk_pattern(code) if code.startswith("_") else None
            if ext == code or (regex and regex.fullmatch(ext)):
                how = "is matched by the pattern" if regex else "is"
                errors.append(
                    f"lab_users[{i}].extension: {show(ext)} {how} {show(code)} of {path}"
                    f" ({why}); choose another extension or code"
                )
    return errors


def check_trunks(lab: Lab, hosts: Hosts) -> list[str]:
    """A trunk joins two different hosts, and its PJSIP sections are not a user's."""
    errors, users = [], names_of(lab, "lab_users")
    for i, trunk in enumerate(
        lab["lab_trunks"] if is_list(lab.get("lab_trunks")) else []
    ):
        if not isinstance(trunk, Mapping):
            continue
        name, registrar = trunk.get("name"), trunk.get("registrar")
        if isinstance(name, str) and name in users:
            errors.append(
                f"lab_trunks[{i}].name: {show(name)} is also the name of"
                f" lab_users[{users[name]}]; rename the trunk"
            )
        if isinstance(registrar, str) and registrar == trunk.get("registrant"):
            errors.append(
                f"lab_trunks[{i}].registrar: {show(registrar)} is also the registrant;"
                " a trunk joins two different hosts"
            )
    return errors


def check_service_codes(lab: Lab, hosts: Hosts) -> list[str]:
    extra = lab.get("lab_service_codes", {})
    if not isinstance(extra, Mapping):
        return [
            f"lab_service_codes: {show(extra)} is not a mapping; write {{purpose: code}}"
        ]
    errors = []
    for key, code in extra.items():
        pattern = (
            isinstance(code, str) and code.startswith("_") and asterisk_pattern(code)
        )
        if not (matches(CODE_RE, code) or pattern):
            errors.append(
                f"lab_service_codes.{key}: {show(code)} is neither a code nor a pattern;"
                ' quote one, e.g. "*8" or "_9."'
            )
    seen: dict[str, str] = {}
    for path, _why, code in service_codes(lab):
        if code in seen:
            errors.append(
                f"{path}: {show(code)} is already the code of {seen[code]};"
                " give each service its own"
            )
        seen.setdefault(code, path)
    return errors


def check_rtp(lab: Lab, hosts: Hosts) -> list[str]:
    start, end, sip = (
        lab.get(f"lab_{v}") for v in ("rtp_port_start", "rtp_port_end", "sip_port")
    )
    if not (is_int(start) and is_int(end)):
        return []
    errors = []
    if start % 2:
        errors.append(
            f"lab_rtp_port_start: {start} is odd; RTP takes even ports, use {start - 1}"
        )
    if end - start < 10:
        errors.append(
            f"lab_rtp_port_end: {end} leaves under 10 ports after lab_rtp_port_start"
            f" ({start}); raise it"
        )
    if is_int(sip) and start <= sip <= end:
        errors.append(
            f"lab_sip_port: {sip} is inside the RTP range {start}-{end}; move one of them"
        )
    return errors


def secret_problem(secret: Any, avoid: Sequence[str], weak_ok: bool) -> str | None:
    """What is wrong with a secret, in words that never reveal it."""
    fix = (
        "choose a random one (or set lab_allow_weak_secrets: true for a throwaway lab)"
    )
    if not isinstance(secret, str) or not secret:
        return "is not a non-empty string; set one"
    if any(ord(c) < 32 or ord(c) == 127 for c in secret):
        return "contains a line break or control character; choose another"
    if weak_ok:
        return None
    if secret.lower() in REPORT_PASSWORDS:
        return f"is a password published in the lab report; {fix}"
    if secret.lower() in {a.lower() for a in avoid}:
        return f"equals the account's name or extension; {fix}"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters; {fix}"
    return None


def check_secrets(lab: Lab, hosts: Hosts) -> list[str]:
    secrets = lab.get("lab_secrets") or {}
    if not isinstance(secrets, Mapping):
        return [
            "lab_secrets: (hidden) is not a mapping;"
            " write {users: {name: secret}, trunks: {name: secret}}"
        ]
    errors = [
        f"lab_secrets.{k}: unknown key; use users or trunks"
        for k in secrets
        if k not in ("users", "trunks")
    ]
    generate, weak_ok = (
        lab.get("lab_generate_secrets") is not False,  # when not a bool, say only that
        lab.get("lab_allow_weak_secrets") is True,
    )
    for kind, var in (("users", "lab_users"), ("trunks", "lab_trunks")):
        given = secrets.get(kind) or {}
        if not isinstance(given, Mapping):
            errors.append(
                f"lab_secrets.{kind}: (hidden) is not a mapping; write {{name: secret}}"
            )
            continue
        for name, i in sorted(names_of(lab, var).items(), key=lambda item: item[1]):
            path, owner = f"lab_secrets.{kind}.{name}", f"{var}[{i}] ({name})"
            if name not in given and not generate:
                errors.append(
                    f"{path}: missing for {owner};"
                    " set it (Ansible Vault) or lab_generate_secrets: true"
                )
            if name not in given:
                continue
            extension = lab[var][i].get("extension")
            problem = secret_problem(
                given[name],
                [name, extension] if isinstance(extension, str) else [name],
                weak_ok,
            )
            if problem:
                errors.append(f"{path}: the secret of {owner} {problem}")
    return errors


def check_mailbox_pins(lab: Lab, hosts: Hosts) -> list[str]:
    pins = lab.get("lab_mailbox_pins", {})
    if not isinstance(pins, Mapping):
        return ["lab_mailbox_pins: (hidden) is not a mapping; write {user name: pin}"]
    users = names_of(lab, "lab_users")
    errors = [
        f"lab_mailbox_pins.{name}: no user has that name; use one of lab_users"
        for name in pins
        if name not in users
    ]
    return errors + [
        e
        for name, pin in pins.items()
        for e in pin_problem(f"lab_mailbox_pins.{name}", pin)
    ]


def check_language(lab: Lab, hosts: Hosts) -> list[str]:
    available = lab.get("lab_available_languages", DEFAULT_LANGUAGES)
    if (
        "lab_language" not in lab
        or not is_list(available)
        or lab["lab_language"] in available
    ):
        return []
    return [
        f"lab_language: {show(lab['lab_language'])} is not available;"
        f" use one of {', '.join(map(str, available))}"
    ]


CHECKS: tuple[Callable[[Lab, Hosts], list[str]], ...] = (
    check_values,
    check_lists,
    check_users,
    check_trunks,
    check_service_codes,
    check_rtp,
    check_secrets,
    check_mailbox_pins,
    check_language,
)


def lab_errors(lab: Any, pbx_hosts: Any) -> list[str]:
    """Every problem of the lab description, as messages; [] when it is valid."""
    if not isinstance(lab, Mapping):
        return [
            f"lab description: a {type(lab).__name__} is not a mapping of lab_* variables"
        ]
    hosts = [str(host) for host in pbx_hosts] if is_list(pbx_hosts) else []
    return [error for check in CHECKS for error in check(lab, hosts)]


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"lab_errors": lab_errors}
