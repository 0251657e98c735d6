"""Validate the lab description (lab_description: each setting of roles/asterisk/meta/argument_specs.yml
over its default) before any host is touched.

    {{ lab_description | lab_errors(groups['pbx']) }}

`lab_description` is a dict of the `lab_*` variables, with `lab_secrets` the pod's secrets as
they will be used: the credentials file's, under those chosen in lab_secrets_file
({users: {name: secret}, trunks: {...}, pins: {...}}).
The filter returns every problem at once, as messages naming the variable path, the
offending value and the fix; [] means the lab is valid. Secret values and PINs never appear
in a message. Standard library only, so plain pytest can import it.

To validate a new service: add its dialplan-code variable to SERVICE_CODE_VARS, a check of
one variable to VALUE_CHECKS, a new key of users or trunks to USER_FIELDS / TRUNK_FIELDS,
and a check across variables to CHECKS; a new dialplan context where a trunk's calls may
land, to INBOUND_CONTEXTS.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
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
# A DNS host name (RFC 1123): labels of letters, digits and inner hyphens, joined by dots.
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
HOST_NAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
MAX_HOST_NAME = 253

KNOWN_CODECS = frozenset(
    "ulaw alaw gsm g722 g723 g726 g726aal2 g729 opus ilbc speex speex16 speex32 lpc10"
    " adpcm slin slin12 slin16 slin24 slin32 slin44 slin48 slin96 slin192 siren7 siren14"
    " codec2 testlaw h261 h263 h263p h264 h265 mpeg4 vp8 vp9 jpeg png t140 t140red".split()
)
# The three passwords the lab report published, kept as SHA-256 digests so that they
# appear nowhere in the code: a secret whose digest is here is refused as weak.
REPORT_PASSWORD_DIGESTS = frozenset({
    "43b8eda0077f38b80989a133732901ea5a35ab0b43cf1769797e09c93be4cd81",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "f2d81a260dea8a100dd517984e53c56a7523d96942a834b9cdc249bd4e8c7aa9",
})
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
    "lab_voicemail_extension": "voicemail",
    "lab_auto_attendant_extension": "the auto-attendant",
    "lab_ivr_extension": "the IVR",
    "lab_moh_extension": "music on hold",
    "lab_pickup_code": "call pickup",
    "lab_park_extension": "call parking",
    "lab_queue_login_code": "queue agents' login",
    "lab_queue_logout_code": "queue agents' logout",
    "lab_queue_pause_code": "queue agents' pause",
    "lab_queue_unpause_code": "queue agents' resume",
}
# Lists whose items reserve their `extension`: variable -> what dialling it does.
SERVICE_CODE_LISTS: dict[str, str] = {
    "lab_conference_rooms": "conference room",
    "lab_queues": "queue",
}
# Prefixes reserving the pattern _<prefix>. (what follows the prefix is a name or number).
SERVICE_PREFIX_VARS: dict[str, str] = {
    "lab_record_prompt_prefix": "recording a prompt",
}
PROMPT_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")  # dialled after the record prefix
PROMPT_FILE_RE = re.compile(r".+\.wav")  # 8 kHz mono 16-bit, like recorded prompts
DTMF_KEY_RE = re.compile(r"[0-9*#]")
DTMF_KEYS_RE = re.compile(r"[0-9*#]{1,4}")  # an in-call feature: #1, *2
SLOTS_RE = re.compile(r"([0-9]{2,8})-([0-9]{2,8})")  # parking slots: 701-720
# Section names app_queue and ConfBridge keep for themselves.
RESERVED_SECTIONS = frozenset({"general", "StandardQueue"})

# Where a trunk's calls may land (lab_trunks[].inbound.context): each context the dialplan
# defines, -> its template in roles/asterisk/templates/etc/asterisk/. Their names are
# fixed there. Not offered: stdexten and lab-queue-* (subroutines called with arguments),
# and lab-inbound-<trunk> (a trunk's own landing, lab_view.trunk_context).
INBOUND_CONTEXTS: dict[str, str] = {
    "from-trunk": "extensions.conf.j2",  # this PBX's users: where a trunk without inbound lands
    "from-internal": "extensions.conf.j2",  # all a user may dial, calls out included
    "lab-local-users": "extensions.conf.j2",
    "lab-remote-users": "extensions.conf.j2",
    "lab-echo-test": "extensions.conf.j2",
    "lab-features": "extensions_features.conf.j2",
    "lab-outside": "extensions_outside.conf.j2",
    "lab-followme": "extensions_voice.conf.j2",
    "lab-voice": "extensions_voice.conf.j2",
    "lab-menu-users": "extensions_voice.conf.j2",
    "lab-auto-attendant": "extensions_voice.conf.j2",
    "lab-ivr": "extensions_voice.conf.j2",
}
# Those extensions_voice.conf.j2 writes on lab_services_host only.
SERVICES_HOST_CONTEXTS = frozenset({"lab-menu-users", "lab-auto-attendant", "lab-ivr"})
# Those that call out through the lab's trunks: an outside provider's callers may not land
# there, or anyone could call out at the lab's cost.
DIAL_OUT_CONTEXTS = frozenset({"from-internal", "lab-outside"})
# What each outside trunk takes from a lab_* setting over its own (lab_view.lab_description):
# the trunk's key -> the setting.
PROVIDER_OVERRIDES = {"registrar.host": "lab_provider_address", "username": "lab_provider_username"}


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
    codes += [
        (v, why, f"_{lab[v]}.")
        for v, why in SERVICE_PREFIX_VARS.items()
        if matches(DIGITS_RE, lab.get(v))
    ]
    extra = lab.get("lab_service_codes")
    if isinstance(extra, Mapping):
        codes += [(f"lab_service_codes.{k}", str(k), v) for k, v in extra.items()]
    # Conference rooms and queues reserve their extension; parking, each of its slots.
    for var, what in SERVICE_CODE_LISTS.items():
        for i, item in enumerate(lab.get(var) if is_list(lab.get(var)) else []):
            if isinstance(item, Mapping):
                codes.append(
                    (f"{var}[{i}].extension", f"{what} {item.get('name')}", item.get("extension"))
                )
    codes += [("lab_parking_slots", "a parking slot", slot) for slot in parking_slots(lab)]
    # A trunk's dial prefix reserves the pattern that calls out through it (`_9.`).
    for i, trunk in enumerate(lab.get("lab_trunks") if is_list(lab.get("lab_trunks")) else []):
        prefix = trunk.get("dial_prefix") if isinstance(trunk, Mapping) else None
        if matches(DIGITS_RE, prefix):
            codes.append((f"lab_trunks[{i}].dial_prefix", f"out through {trunk.get('name')}",
                          f"_{prefix}."))
    return [code for code in codes if isinstance(code[2], str)]


def parking_slots(lab: Lab) -> list[str]:
    """Each slot of lab_parking_slots ("701-720"), [] when it is not a valid range."""
    found = SLOTS_RE.fullmatch(str(lab.get("lab_parking_slots", "")))
    first, last = (int(x) for x in found.groups()) if found else (1, 0)
    return [str(slot) for slot in range(first, last + 1)] if last - first < 1000 else []


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
    """An outside provider's host (a trunk's registrar.host, lab_provider_address): an IP
    address or a DNS host name, as pjsip.conf writes it in sip:<host>:<port>."""
    if not isinstance(value, str) or not value:
        return [f"{path}: {show(value)} is not a host name or address;"
                " give the provider's, e.g. sip.example.com or 203.0.113.5"]
    try:
        ipaddress.IPv4Address(value)  # IPv6 would need brackets in sip:<host>:<port>
        return []
    except ValueError:
        pass
    try:
        ipaddress.IPv6Address(value)
        return [f"{path}: {show(value)} is an IPv6 address; the lab speaks IPv4 only,"
                " give an IPv4 address or a DNS host name"]
    except ValueError:
        pass
    if any(c.isspace() or not c.isprintable() for c in value):  # would start a new line
        return [f"{path}: {show(value)} holds a space or line break;"
                " give the host alone, e.g. sip.example.com"]
    host, _, port = value.rpartition(":")
    if host and matches(DIGITS_RE, port) and not provider_host_problem(path, host):
        home = (path.removesuffix(".host") + ".port" if path.endswith(".host")
                else "each outside trunk's registrar.port (lab_trunks)")
        return [f"{path}: {show(value)} gives a port too; write the host alone, {show(host)},"
                f" and the port in {home}: {port}"]
    if matches(DIGITS_RE, value.rsplit(".", 1)[-1]):  # numbers and dots: an IPv4 address
        return [f"{path}: {show(value)} is not an IP address (4 numbers from 0 to 255);"
                " correct it, or give a DNS host name"]
    if matches(HOST_NAME_RE, value) and len(value) <= MAX_HOST_NAME:
        return []
    return [f"{path}: {show(value)} is not an IP address or a DNS host name (labels of"
            " letters, digits and -, joined by dots); e.g. sip.example.com"]


def port_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    return int_problem(path, value, 1, 65535)


def username_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if matches(NAME_RE, value):
        return []
    return [f'{path}: {show(value)} is not a SIP user name; quote it: "1040"']


def inbound_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    """Where a trunk's calls land: {context, extension} of the dialplan."""
    fields = {"context": context_problem, "extension": name_problem}
    return mapping_problem(path, value, fields, ("context", "extension"), hosts)


def context_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    """A context the lab's dialplan defines (INBOUND_CONTEXTS)."""
    if isinstance(value, str) and value in INBOUND_CONTEXTS:
        return []
    close = difflib.get_close_matches(str(value), list(INBOUND_CONTEXTS), n=1)
    fix = f"did you mean {close[0]}?" if close else f"use one of {', '.join(INBOUND_CONTEXTS)}"
    return [f"{path}: {show(value)} is no context of the lab's dialplan; {fix}"]


def networks_problem(path: str, networks: Any, hosts: Hosts = ()) -> list[str]:
    if not is_list(networks):
        return [f"{path}: {show(networks)} is not a list; e.g. [10.0.0.0/24]"]
    errors = []
    for i, network in enumerate(networks):
        try:
            ipaddress.ip_network(network, strict=False)
        except (TypeError, ValueError):
            errors.append(f"{path}[{i}]: {show(network)} is not a network; write it as 10.0.0.0/24")
    return errors


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


VIDEO_CODECS = frozenset("h261 h263 h263p h264 h265 mpeg4 vp8 vp9".split())


def video_codecs_problem(path: str, codecs: Any, hosts: Hosts = ()) -> list[str]:
    if is_list(codecs) and not codecs:
        return []  # no video
    errors = codecs_problem(path, codecs, hosts)
    if errors:
        return errors
    return [
        f"{path}[{i}]: {show(codec)} is not a video codec; use h264, vp8, ... or list it in lab_codecs"
        for i, codec in enumerate(codecs)
        if codec not in VIDEO_CODECS
    ]


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


def followme_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if is_list(value) and all(matches(USER_EXTENSION_RE, x) for x in value):
        return []
    return [f'{path}: {show(value)} is not a list of extensions; e.g. ["6004"]']


def code_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if matches(CODE_RE, value):
        return []
    return [f'{path}: {show(value)} is not a dial code; quote digits, maybe after * or #: "*8"']


def dtmf_keys_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if matches(DTMF_KEYS_RE, value):
        return []
    return [f'{path}: {show(value)} is not 1 to 4 phone keys (0-9 * #); quote them: "#1"']


def slots_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    found = SLOTS_RE.fullmatch(value) if isinstance(value, str) else None
    if found and 0 < int(found[2]) - int(found[1]) < 1000 and len(found[1]) == len(found[2]):
        return []
    return [f'{path}: {show(value)} is not a range of slots first-last; e.g. "701-720"']


def group_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    return int_problem(path, value, 0, 63)


def members_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    if is_list(value) and value and all(isinstance(x, str) for x in value):
        return []
    return [f"{path}: {show(value)} is not a non-empty list of user names; e.g. [chhiny]"]


def menu_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    fields = {"mute": dtmf_keys_problem, "leave": dtmf_keys_problem}
    errors = mapping_problem(path, value, fields, ("mute", "leave"), hosts)
    if not errors and value["mute"] == value["leave"]:
        errors.append(f"{path}.leave: {show(value['leave'])} is also mute's key; give each its own")
    return errors


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
            "followme": followme_problem,
            "pickup_group": group_problem,
        },
        required=("name", "extension", "host"),
        unique=("name", "extension"),
    ),
    "lab_conference_rooms": ListSpec(
        fields={
            "name": name_problem,
            "extension": code_problem,
            "max_members": lambda path, value, hosts=(): int_problem(path, value, 2, 1000),
        },
        required=("name", "extension"),
        unique=("name", "extension"),
        may_be_empty=True,
    ),
    "lab_queues": ListSpec(
        fields={"name": name_problem, "extension": code_problem, "members": members_problem},
        required=("name", "extension", "members"),
        unique=("name", "extension"),
        may_be_empty=True,
    ),
    "lab_trunks": ListSpec(
        fields={
            "name": name_problem,
            "registrant": host_problem,
            "registrar": registrar_problem,
            "username": username_problem,
            "dial_prefix": digits_problem,
            "inbound": inbound_problem,
        },
        required=("name", "registrant", "registrar"),
        unique=("name",),
        may_be_empty=True,
    ),
}

# variable -> check of its value alone, run when the variable is present
VALUE_CHECKS: dict[str, Callable[[str, Any], list[str]]] = {
    **{var: digits_problem for var in (*SERVICE_CODE_VARS, *SERVICE_PREFIX_VARS)},
    "lab_moh_seconds": lambda path, value: int_problem(path, value, 1, 3600),
    "lab_menu_wait_seconds": lambda path, value: int_problem(path, value, 1, 120),
    "lab_name": name_problem,
    "lab_ring_seconds": lambda path, value: int_problem(path, value, 1, 300),
    "lab_codecs": codecs_problem,
    "lab_video_codecs": video_codecs_problem,
    "lab_sip_port": port_problem,
    "lab_rtp_port_start": lambda path, value: int_problem(path, value, 1024, 65535),
    "lab_rtp_port_end": lambda path, value: int_problem(path, value, 1024, 65535),
    "lab_generate_secrets": bool_problem,
    "lab_allow_weak_secrets": bool_problem,
    "lab_available_languages": languages_problem,
    "lab_ban_after_failures": lambda path, value: int_problem(path, value, 1, 1000),
    "lab_ban_window_seconds": lambda path, value: int_problem(path, value, 1, 86400),
    "lab_ban_seconds": lambda path, value: int_problem(path, value, 1, 604800),
    "lab_sip_allowed_networks": networks_problem,
    "lab_never_banned_networks": networks_problem,
    # Empty or null leaves each outside trunk's own (lab_view.lab_description).
    "lab_provider_address": lambda path, value: [] if value in (None, "") else provider_host_problem(path, value),
    "lab_provider_username": lambda path, value: [] if value in (None, "") else username_problem(path, value),
    "lab_pickup_code": code_problem,
    "lab_queue_login_code": code_problem,
    "lab_queue_logout_code": code_problem,
    "lab_queue_pause_code": code_problem,
    "lab_queue_unpause_code": code_problem,
    "lab_blind_transfer_keys": dtmf_keys_problem,
    "lab_attended_transfer_keys": dtmf_keys_problem,
    "lab_parking_slots": slots_problem,
    "lab_parking_seconds": lambda path, value: int_problem(path, value, 5, 7200),
    "lab_conference_menu": menu_problem,
}


# ------------------------------------------------------------ checks of the whole lab


def check_values(lab: Lab, hosts: Hosts) -> list[str]:
    errors = [
        f"{var}: missing; set it in the inventory (see ansible-doc -t role asterisk)"
        for var in REQUIRED
        if var not in lab
    ]
    return errors + [
        e for var, f in VALUE_CHECKS.items() if var in lab for e in f(var, lab[var])
    ]


def check_lists(lab: Lab, hosts: Hosts) -> list[str]:
    errors = [
        e
        for var, spec in LISTS.items()
        if var in lab
        for e in list_problems(var, lab[var], spec, hosts)
    ]
    # lab_provider_address and lab_provider_username replaced the host and user name of each
    # outside trunk (lab_view.lab_description): their own checks name them, so the trunks'
    # copies are not reported again.
    copies = tuple(
        f"lab_trunks[{i}].{key}: "
        for i, trunk in enumerate(lab["lab_trunks"] if is_list(lab.get("lab_trunks")) else [])
        if isinstance(trunk, Mapping) and isinstance(trunk.get("registrar"), Mapping)
        for key, value in (("registrar.host", trunk["registrar"].get("host")),
                           ("username", trunk.get("username")))
        if value == lab.get(PROVIDER_OVERRIDES[key]) and value
    )
    return [e for e in errors if not e.startswith(copies)]


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
    """No user's extension may be a service code.

    A pattern code (`_9.`) matching an extension (900) is fine: Asterisk tries the exact
    extension first, so the user is still reached and the pattern takes the rest.
    """
    errors = []
    for i, user in enumerate(lab["lab_users"] if is_list(lab.get("lab_users")) else []):
        ext = user.get("extension") if isinstance(user, Mapping) else None
        for path, why, code in (
            service_codes(lab) if matches(USER_EXTENSION_RE, ext) else []
        ):
            if ext == code:
                errors.append(
                    f"lab_users[{i}].extension: {show(ext)} is {show(code)} of {path}"
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
        errors += inbound_place_problems(lab, hosts, i, trunk)
    return errors


def inbound_place_problems(lab: Lab, hosts: Hosts, i: int, trunk: Mapping[str, Any]) -> list[str]:
    """A trunk's calls land in a context that exists on each PBX they arrive at, and an
    outside provider's calls do not land where they could call out again."""
    inbound = trunk.get("inbound")
    context = inbound.get("context") if isinstance(inbound, Mapping) else None
    if not isinstance(context, str):
        return []
    path, registrar = f"lab_trunks[{i}].inbound.context", trunk.get("registrar")
    services = lab.get("lab_services_host")
    ends = [h for h in (trunk.get("registrant"), registrar) if isinstance(h, str) and h in hosts]
    elsewhere = [h for h in ends if h != services]
    errors = []
    if context in SERVICES_HOST_CONTEXTS and isinstance(services, str) and services in hosts and elsewhere:
        # A trunk between two PBXs lands on both; a provider's, on its registrant only.
        move = "" if len(ends) > 1 else f"make {services} its registrant, or "
        errors.append(
            f"{path}: {show(context)} exists on lab_services_host ({services}) only, and the"
            f" trunk's calls arrive on {', '.join(elsewhere)}; {move}choose a context every"
            " PBX has, e.g. from-trunk"
        )
    if context in DIAL_OUT_CONTEXTS and isinstance(registrar, Mapping):
        errors.append(
            f"{path}: {show(context)} dials out through the lab's trunks, so the provider's"
            " callers could call anywhere at the lab's cost; land them in lab-ivr or from-trunk"
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
    if secret != secret.strip():
        return "begins or ends with a space, which Asterisk's config files drop; choose another"
    if weak_ok:
        return None
    if hashlib.sha256(secret.lower().encode()).hexdigest() in REPORT_PASSWORD_DIGESTS:
        return f"is a password published in the lab report; {fix}"
    if secret.lower() in {a.lower() for a in avoid}:
        return f"equals the account's name or extension; {fix}"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters; {fix}"
    return None


def check_secrets(lab: Lab, hosts: Hosts) -> list[str]:
    """Each secret the pod will use (stored, or chosen in lab_secrets_file), by its path
    in those files (users.amine); the shape of the files is checked where they are read."""
    secrets = lab.get("lab_secrets") if isinstance(lab.get("lab_secrets"), Mapping) else {}
    errors = []
    generate, weak_ok = (
        lab.get("lab_generate_secrets") is not False,  # when not a bool, say only that
        lab.get("lab_allow_weak_secrets") is True,
    )
    for kind, var in (("users", "lab_users"), ("trunks", "lab_trunks"), ("pins", "lab_users")):
        given = secrets.get(kind) if isinstance(secrets.get(kind), Mapping) else {}
        for name, i in sorted(names_of(lab, var).items(), key=lambda item: item[1]):
            path, owner = f"{kind}.{name}", f"{var}[{i}] ({name})"
            if name not in given and not generate:
                errors.append(
                    f"{path}: no secret for {owner}; add it to lab_secrets_file (under"
                    f" pods.<pod>.{kind}) or set lab_generate_secrets: true"
                )
            if name not in given:
                continue
            if kind == "pins":  # a voicemail PIN: digits, told apart from SIP secrets
                errors += pin_problem(f"{path}", given[name])
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


def check_followme(lab: Lab, hosts: Hosts) -> list[str]:
    """Every follow-me target is another user's extension."""
    users = lab["lab_users"] if is_list(lab.get("lab_users")) else []
    known = {u.get("extension") for u in users if isinstance(u, Mapping) and isinstance(u.get("extension"), str)}
    errors = []
    for i, user in enumerate(users):
        targets = user.get("followme") if isinstance(user, Mapping) else None
        for j, ext in enumerate(targets if is_list(targets) else []):
            if not isinstance(ext, str) or not matches(USER_EXTENSION_RE, ext):
                continue  # followme_problem said so
            if ext == user.get("extension"):
                errors.append(
                    f"lab_users[{i}].followme[{j}]: {show(ext)} is the user's own extension;"
                    " list where else to ring"
                )
            elif ext not in known:
                errors.append(
                    f"lab_users[{i}].followme[{j}]: {show(ext)} is no user's extension;"
                    " use one of lab_users"
                )
    return errors


def user_name_problem(lab: Lab, path: str, value: Any) -> list[str]:
    if isinstance(value, str) and value in names_of(lab, "lab_users"):
        return []
    return [f"{path}: {show(value)} is no user's name; use one of lab_users"]


def prompt_file_problem(path: str, value: Any, hosts: Hosts = ()) -> list[str]:
    """A supplied prompt: a .wav inside the inventory's folder, never a path out of it."""
    if not matches(PROMPT_FILE_RE, value):
        return [f"{path}: {show(value)} is not a .wav file; convert it to 8 kHz mono 16-bit WAV"]
    if value.startswith(("/", "~")) or ".." in value.split("/"):
        return [f"{path}: {show(value)} leads out of the inventory's folder; copy the file into it"
                " and give its path from there, e.g. prompts/menu1.wav"]
    return []


def prompt_problems(lab: Lab) -> list[str]:
    prompts = lab.get("lab_prompts", {})
    if not isinstance(prompts, Mapping):
        return [f"lab_prompts: {show(prompts)} is not a mapping; write {{name: {{text: ...}}}}"]
    errors = []
    for name, prompt in prompts.items():
        path = f"lab_prompts.{name}"
        if not matches(PROMPT_NAME_RE, name):
            errors.append(
                f"{path}: {show(name)} is not a prompt name; use letters, digits, _ and -"
            )
        fields = {
            "text": lambda p, v, h=(): [] if isinstance(v, str) and v.strip()
            else [f"{p}: {show(v)} is not a text; write the words to speak"],
            "file": prompt_file_problem,
        }
        errors += mapping_problem(path, prompt, fields, (), ())
        if isinstance(prompt, Mapping) and len({"text", "file"} & set(prompt)) != 1:
            errors.append(f"{path}: give exactly one of text or file; remove the other")
    for var in ("lab_auto_attendant_prompt", "lab_ivr_prompt"):
        if var in lab and (not isinstance(lab[var], str) or lab[var] not in prompts):
            errors.append(
                f"{var}: {show(lab[var])} is not in lab_prompts; add it there or use one of"
                f" {', '.join(map(str, prompts)) or 'lab_prompts'}"
            )
    return errors


def check_voice_services(lab: Lab, hosts: Hosts) -> list[str]:
    """Where the shared services live, who the operator is, IVR keys and prompts."""
    errors = []
    if "lab_services_host" in lab:
        errors += host_problem("lab_services_host", lab["lab_services_host"], hosts)
    # Names are looked up only in a valid user list: its own errors say the rest.
    users_ok = not list_problems("lab_users", lab.get("lab_users"), LISTS["lab_users"], hosts)
    if "lab_operator" in lab and users_ok:
        errors += user_name_problem(lab, "lab_operator", lab["lab_operator"])
    options = lab.get("lab_ivr_options", {})
    if not isinstance(options, Mapping):
        errors.append(
            f'lab_ivr_options: {show(options)} is not a mapping; write {{"1": user name}}'
        )
        options = {}
    for key, name in options.items():
        path = f"lab_ivr_options.{key}"
        if not matches(DTMF_KEY_RE, key):
            errors.append(f'{path}: {show(key)} is not one phone key; quote one: "1"')
        errors += user_name_problem(lab, path, name) if users_ok else []
    return errors + prompt_problems(lab)


def check_call_features(lab: Lab, hosts: Hosts) -> list[str]:
    """Queue agents are users of the services host; sections and transfer keys are distinct."""
    errors, users = [], names_of(lab, "lab_users")
    services = lab.get("lab_services_host")
    # Broken users are reported already; members are checked against valid ones only.
    users_ok = not list_problems("lab_users", lab.get("lab_users"), LISTS["lab_users"], hosts)
    queues = lab.get("lab_queues") if is_list(lab.get("lab_queues")) and users_ok else []
    for i, queue in enumerate(queues):
        members = queue.get("members") if isinstance(queue, Mapping) else None
        for j, name in enumerate(members if is_list(members) else []):
            path = f"lab_queues[{i}].members[{j}]"
            if not isinstance(name, str):
                continue  # members_problem said so
            if name not in users:
                errors.append(f"{path}: {show(name)} is no user's name; use one of lab_users")
            elif services in hosts and lab["lab_users"][users[name]].get("host") != services:
                errors.append(
                    f"{path}: {show(name)} is not a user of lab_services_host ({services});"
                    " queues ring that PBX's users only"
                )
            if name in members[:j]:
                errors.append(f"{path}: {show(name)} is listed twice; remove one")
    for var in ("lab_queues", "lab_conference_rooms"):
        for name, i in names_of(lab, var).items():
            if name in RESERVED_SECTIONS:
                errors.append(f"{var}[{i}].name: {show(name)} is reserved; choose another name")
    blind, attended = lab.get("lab_blind_transfer_keys"), lab.get("lab_attended_transfer_keys")
    if isinstance(blind, str) and blind == attended:
        errors.append(
            f"lab_attended_transfer_keys: {show(attended)} is also lab_blind_transfer_keys;"
            " give each transfer its own keys"
        )
    return errors


CHECKS: tuple[Callable[[Lab, Hosts], list[str]], ...] = (
    check_values,
    check_lists,
    check_users,
    check_trunks,
    check_service_codes,
    check_rtp,
    check_secrets,
    check_language,
    check_followme,
    check_voice_services,
    check_call_features,
)


def lab_errors(lab: Any, pbx_hosts: Any) -> list[str]:
    """Every problem of the lab description, as messages; [] when it is valid."""
    if not isinstance(lab, Mapping):
        return [
            f"lab description: a {type(lab).__name__} is not a mapping of lab_* variables"
        ]
    hosts = [str(host) for host in pbx_hosts] if is_list(pbx_hosts) else []
    return [error for check in CHECKS for error in check(lab, hosts)]


def lab_class_plan_errors(plan: Mapping[str, Any], pods: Mapping[str, Any]) -> list[str]:
    """Every problem of each pod's description (lab_class_plan), each said once per pod.

    With more than one pod, a message names its pod; a pod's PBXs see one description, so
    an error they share is said once.
    """
    many = len(pods["pods"]) > 1
    errors: list[str] = []
    for host in plan.values():
        prefix = f"pod {host['pod']}: " if many else ""
        found = host["unknown"] + lab_errors(
            {**host["description"], "lab_secrets": host["known_secrets"]},
            pods["pods"][host["pod"]]["pbx_parts"],
        )
        errors += [prefix + e for e in found if prefix + e not in errors]
    return errors


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"lab_errors": lab_errors, "lab_class_plan_errors": lab_class_plan_errors}
