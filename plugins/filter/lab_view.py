"""Turn the lab description into what one host needs, so templates only print.

Every lab setting is declared once, in roles/asterisk/meta/argument_specs.yml (entry point
`lab`: name, type, default = the reference lab, meaning). This module reads it: the defaults
under what an inventory sets (lab_description), the names a misspelt one is checked against.
It decides which pod and part each host plays (lab_pods), and each PBX's view of its pod:
its own users, its side of each trunk, which extensions of the other PBX it reaches over
which trunk, its mailboxes and services (lab_host_view). Computing that here, once, keeps
that logic out of Jinja.
"""

from __future__ import annotations

import copy
import difflib
import functools
import ipaddress
import re
import secrets as _secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

SECRET_KINDS = ("users", "trunks", "pins")  # pins: voicemail PINs, by user name
# Where every lab setting is declared (name, type, default, meaning): the `lab` entry point.
SETTINGS_FILE = Path(__file__).resolve().parents[2] / "roles" / "asterisk" / "meta" / "argument_specs.yml"
GENERATED_SECRET_BYTES = 18  # 24 URL-safe characters
GENERATED_PIN_DIGITS = 6
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")  # a pod's name also names its files


@functools.cache
def lab_settings() -> dict[str, dict[str, Any]]:
    """Every lab setting as declared: {name: {type, default, description...}}."""
    return yaml.safe_load(SETTINGS_FILE.read_text(encoding="utf-8"))["argument_specs"]["lab"]["options"]


def default_pod() -> str:
    """The pod of a host whose inventory names none (a one-pod lab)."""
    return str(lab_settings()["lab_pod"]["default"])


def lab_description(given: Mapping[str, Any]) -> dict[str, Any]:
    """The lab description a host sees: what its inventory sets, over each setting's default.

    The defaults are the reference lab. lab_provider_address and lab_provider_username
    replace the host and user name of every trunk whose registrar is outside the lab, so a
    pod has its own account at the ITSP, and a lab without the ITSP its own provider.
    """
    description = {
        name: copy.deepcopy(spec["default"]) for name, spec in lab_settings().items() if "default" in spec
    }
    description.update(given)
    outside = {
        key: description[setting]
        for key, setting in (("host", "lab_provider_address"), ("username", "lab_provider_username"))
        if description.get(setting)
    }
    trunks = description.get("lab_trunks")
    if outside and isinstance(trunks, list):
        description["lab_trunks"] = [
            {
                **trunk,
                "registrar": {**trunk["registrar"], **{k: v for k, v in outside.items() if k == "host"}},
                **{k: v for k, v in outside.items() if k == "username"},
            }
            if isinstance(trunk, Mapping) and isinstance(trunk.get("registrar"), Mapping)
            else trunk
            for trunk in trunks
        ]
    return description


def lab_unknown_settings(names: list[str]) -> list[str]:
    """A message for each lab_* name that is no setting: a misspelt one would do nothing."""
    known = sorted(lab_settings())
    errors = []
    for name in sorted(names):
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        fix = f"did you mean {close[0]}?" if close else "remove it (ansible-doc -t role asterisk lists the settings)"
        errors.append(f"{name}: not a lab setting; {fix}")
    return errors


def lab_host_view(
    description: Mapping[str, Any],
    part: str,
    addresses: dict[str, str],
    secrets: dict[str, dict[str, str]],
    prompt_files_dir: str = "",
) -> dict[str, Any]:
    """What PBX part `part` of a pod needs, for the role to print: every setting (without
    its lab_ prefix) and what is worked out for this PBX, replacing the setting of the same
    name where there is one (users, trunks, ivr_options, prompts...)."""
    settings = {
        name.removeprefix("lab_"): value
        for name, value in description.items()
        if name.startswith("lab_")
    }
    d = description
    pbx = lab_pbx_view(d["lab_users"], d["lab_trunks"], part, addresses, secrets, d["lab_sip_port"])
    voice = lab_voice_view(
        d["lab_users"], part, d["lab_services_host"], secrets, d["lab_operator"], d["lab_ivr_options"]
    )
    features = lab_features_view(
        d["lab_queues"], part, d["lab_services_host"], d["lab_conference_rooms"], d["lab_parking_slots"]
    )
    return {
        **settings,
        **pbx,
        **features,
        "mailboxes": voice["mailboxes"],
        "services_here": voice["services"],
        "operator_extension": voice["operator_extension"],
        "ivr_options": voice["ivr_options"],
        # Prompts are made on the PBX that plays them only.
        "prompts": d["lab_prompts"] if voice["services"] else {},
        "prompt_files_dir": prompt_files_dir,
    }


def mailbox_of(user: Mapping[str, Any]) -> str:
    """A user's mailbox (context default) is its extension, as in the report."""
    return str(user["extension"])


def _trunk_peer(trunk: dict[str, Any], host: str) -> str | dict[str, Any] | None:
    """The other end of `trunk` seen from `host`, or None when `host` is not on it.

    The other end is an inventory host's name, or an outside provider {host, port} when
    `host` registers to one.
    """
    if trunk["registrar"] == host:
        return trunk["registrant"]
    if trunk["registrant"] == host:
        return trunk["registrar"]
    return None


def trunk_context(trunk: dict[str, Any]) -> str:
    """The dialplan context of calls arriving on `trunk` (its `inbound` destination's own)."""
    return f"lab-inbound-{trunk['name']}" if trunk.get("inbound") else "from-trunk"


def lab_pbx_view(
    users: list[dict[str, Any]],
    trunks: list[dict[str, Any]],
    host: str,
    addresses: dict[str, str],
    secrets: dict[str, dict[str, str]],
    sip_port: int = 5060,
) -> dict[str, Any]:
    """What PBX `host` serves: its users, its side of each trunk, and its routes.

    `addresses` maps each PBX inventory name to its lab address; `secrets` is
    {"users": {name: secret}, "trunks": {name: secret}}. Every trunk is one kind of thing:
    its registrar is an inventory host or an outside provider {host, port}; `username`
    (default: the trunk's name), `inbound` ({context, extension} where its calls land) and
    `dial_prefix` (dial prefix + number to call out through it, the prefix stripped) are
    options of any trunk. `remote_routes` are the users of other PBXs reached over a
    trunk; `prefix_routes` the `_<prefix>.` patterns that call out through one.
    """
    # Every key of the description passes through, so a service's per-user settings reach
    # the templates without this function knowing them.
    local_users = [
        {**user, "extension": str(user["extension"]), "mailbox": mailbox_of(user),
         "secret": secrets["users"][user["name"]]}
        for user in users
        if user["host"] == host
    ]
    local_trunks = []
    trunk_to_host: dict[str, str] = {}
    prefix_routes = []
    for trunk in trunks:
        peer = _trunk_peer(trunk, host)
        if peer is None:
            continue
        # An inventory host is reached at its lab address and the lab's SIP port; an
        # outside provider ({host, port}) at its own.
        outside = isinstance(peer, Mapping)
        if not outside:
            trunk_to_host.setdefault(peer, trunk["name"])
        local_trunks.append(
            {
                "name": trunk["name"],
                # The registrar challenges its peer; the registrant registers and answers
                # the challenge.
                "side": "registrar" if trunk["registrar"] == host else "registrant",
                "peer_host": peer["host"] if outside else peer,
                "peer_address": peer["host"] if outside else addresses[peer],
                "peer_port": int(peer.get("port", 5060) if outside else sip_port),
                # Which requests belong to the trunk. A provider may send its calls from
                # another port (or machine) than the one it registers on: its address says
                # it. A PBX of the lab is known by address and SIP port, so phones on its
                # machine are still told apart.
                "match": peer["host"] if outside else f"{addresses[peer]}:{sip_port}",
                "username": str(trunk.get("username", trunk["name"])),
                "secret": secrets["trunks"][trunk["name"]],
                "context": trunk_context(trunk),
                **({"inbound": trunk["inbound"]} if trunk.get("inbound") else {}),
            }
        )
        if trunk.get("dial_prefix"):
            prefix = str(trunk["dial_prefix"])
            prefix_routes.append(
                {"pattern": f"_{prefix}.", "strip": len(prefix), "trunk": trunk["name"]}
            )
    remote_routes = [
        {
            "extension": str(user["extension"]),
            "user": user["name"],
            "trunk": trunk_to_host[user["host"]],
        }
        for user in users
        if user["host"] != host and user["host"] in trunk_to_host
    ]
    return {
        "users": local_users,
        "trunks": local_trunks,
        "remote_routes": remote_routes,
        "prefix_routes": prefix_routes,
    }


def lab_missing_secrets(
    known: dict[str, dict[str, str]] | None,
    users: list[dict[str, Any]],
    trunks: list[dict[str, Any]],
) -> dict[str, dict[str, str]]:
    """Fresh random secrets for every user and trunk that `known` lacks (empty when none)."""
    known = known or {}
    wanted = {
        "users": [u["name"] for u in users],
        "trunks": [t["name"] for t in trunks],
        "pins": [u["name"] for u in users],
    }
    missing: dict[str, dict[str, str]] = {}
    for kind in SECRET_KINDS:
        have = known.get(kind) or {}
        fresh = {
            name: _new_pin() if kind == "pins" else _secrets.token_urlsafe(GENERATED_SECRET_BYTES)
            for name in wanted[kind]
            if not have.get(name)
        }
        if fresh:
            missing[kind] = fresh
    return missing


def _new_pin() -> str:
    """A random voicemail PIN: digits only, as a phone keypad types it."""
    return "".join(_secrets.choice("0123456789") for _ in range(GENERATED_PIN_DIGITS))


def lab_voice_view(
    users: list[dict[str, Any]],
    host: str,
    services_host: str,
    secrets: dict[str, dict[str, str]],
    operator: str = "",
    ivr_options: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The voice services PBX `host` offers: its mailboxes, and whether it hosts the menus.

    Every PBX keeps its own users' mailboxes (mailbox = extension, PIN from
    secrets["pins"]). Only `services_host` hosts the shared services (auto-attendant, IVR,
    prompt recording, music on hold); it gets the operator's extension and the IVR keys with
    the extension each one rings (`ivr_options`: key -> user name).
    """
    extension_of = {u["name"]: str(u["extension"]) for u in users}
    pins = secrets.get("pins") or {}
    here = host == services_host
    return {
        "services": here,
        "mailboxes": [
            {"user": u["name"], "mailbox": mailbox_of(u), "pin": str(pins[u["name"]])}
            for u in users
            if u["host"] == host
        ],
        "operator_extension": extension_of.get(operator, "") if here else "",
        "ivr_options": [
            {"key": str(key), "user": name, "extension": extension_of[name]}
            for key, name in (ivr_options or {}).items()
        ]
        if here
        else [],
    }


def lab_features_view(
    queues: list[dict[str, Any]],
    host: str,
    services_host: str,
    conference_rooms: list[dict[str, Any]],
    parking_slots: str,
) -> dict[str, Any]:
    """The call features PBX `host` serves: every one on `services_host`, none elsewhere.

    `queue_agents` lists, for each member of a queue, the queues its login codes act on;
    `parking` splits the slot range ("701-720") into its first and last slot.
    """
    if host != services_host:
        return {"conference_rooms": [], "queues": [], "queue_agents": [], "parking": {}}
    queues = [
        {"name": q["name"], "extension": str(q["extension"]), "members": list(q["members"])}
        for q in queues
    ]
    agents = list(dict.fromkeys(member for q in queues for member in q["members"]))
    first, last = str(parking_slots).split("-")
    return {
        "conference_rooms": [
            {**room, "extension": str(room["extension"])} for room in conference_rooms
        ],
        "queues": queues,
        "queue_agents": [
            {"user": agent, "queues": [q["name"] for q in queues if agent in q["members"]]}
            for agent in agents
        ],
        "parking": {"first_slot": first, "last_slot": last},
    }


def lab_merge_secrets(*layers: dict[str, dict[str, str]] | None) -> dict[str, dict[str, str]]:
    """Merge secret layers kind by kind; a later layer wins (inventory over stored file)."""
    merged: dict[str, dict[str, str]] = {kind: {} for kind in SECRET_KINDS}
    for layer in layers:
        for kind in SECRET_KINDS:
            merged[kind].update((layer or {}).get(kind) or {})
    return merged


def _lab_machines(
    names: list[str], hostvars: Mapping[str, Any], pbx_names: list[str]
) -> Iterator[tuple[str, Mapping[str, Any], str, str]]:
    """(name, variables, pod, part) of each machine of the lab: every PBX, and every other
    host that has a lab address (a tester, a provider), not a cache the pods share."""
    for name in names:
        host = hostvars[name]
        if name in pbx_names or host.get("lab_address"):
            yield name, host, str(host.get("lab_pod") or default_pod()), str(host.get("lab_part") or name)


def lab_pods(names: list[str], hostvars: Mapping[str, Any], pbx_names: list[str]) -> dict[str, Any]:
    """The class: which pod and part each host plays, and each pod's hosts by part.

    An inventory host belongs to pod `lab_pod` (default pod1) and plays part `lab_part` of
    the lab description (default: its own name, so a one-pod inventory names its hosts
    vm-a and vm-b and sets neither). Returns {pod_of: {host: pod}, part_of: {host: part},
    pods: {pod: {hosts: {part: host}, addresses: {part: address}, pbx_parts: [...],
    first: host}}}; `first` is the pod's first PBX in inventory order, which speaks for
    the pod where one host must (generating its secrets, writing its card).
    """
    found: dict[str, Any] = {"pod_of": {}, "part_of": {}, "pods": {}}
    for name, host, pod, part in _lab_machines(names, hostvars, pbx_names):
        found["pod_of"][name], found["part_of"][name] = pod, part
        entry = found["pods"].setdefault(
            pod, {"hosts": {}, "addresses": {}, "pbx_parts": [], "first": ""}
        )
        entry["hosts"].setdefault(part, name)
        entry["addresses"].setdefault(part, str(host.get("lab_address", "")))
        if name in pbx_names:
            entry["pbx_parts"].append(part)
            entry["first"] = entry["first"] or name
    return found


def lab_class_errors(names: list[str], hostvars: Mapping[str, Any], pbx_names: list[str]) -> list[str]:
    """What is wrong with the inventory's pods, naming the pod and the variable.

    Each pod plays the same parts as every other (a pod with one machine of two is
    refused); each part of a pod is one machine; no machine or address is in two places.
    Every lab address is an IP address; a pod or part is named by a string.
    """
    errors: list[str] = []
    seen: dict[tuple[str, str], tuple[str, str]] = {}  # (variable, value) -> (host, pod)
    parts_of: dict[str, dict[str, list[str]]] = {}
    for name, host, pod, part in _lab_machines(names, hostvars, pbx_names):
        address = host.get("lab_address")
        if name in pbx_names and address in (None, ""):
            errors.append(
                f"pod {pod}: {name}: lab_address: missing; give the PBX the address its phones"
                " and its pod's other PBX reach it at"
            )
        elif address not in (None, ""):
            try:
                # IPv4 only: the configs print sip:<address>:<port>, which IPv6 would need bracketed.
                ipaddress.IPv4Address(address if isinstance(address, str) else "")
            except ValueError:
                errors.append(
                    f"pod {pod}: {name}: lab_address: {address!r} is not an IPv4 address; write the"
                    " machine's address, e.g. 192.0.2.153"
                )
        given_pod, given_part = host.get("lab_pod"), host.get("lab_part")
        if given_pod not in (None, "") and not (isinstance(given_pod, str) and _NAME_RE.fullmatch(given_pod)):
            errors.append(
                f"{name}: lab_pod: {given_pod!r} is not a pod name; use letters, digits, _ and -,"
                ' quoted if only digits: "2"'
            )
        if given_part not in (None, "") and not isinstance(given_part, str):
            errors.append(
                f"pod {pod}: {name}: lab_part: {given_part!r} is not a part name; name a host of"
                " lab_users, e.g. vm-a"
            )
        if name in pbx_names:
            parts_of.setdefault(pod, {}).setdefault(part, []).append(name)
        for variable in ("lab_address", "ansible_host"):
            value = str(host.get(variable) or "")
            if not value or (variable == "ansible_host" and value == str(host.get("lab_address"))):
                continue
            other = seen.setdefault((variable, value), (name, pod))
            if other[0] != name:
                errors.append(
                    f"pod {pod}: {name}: {variable}: {value!r} is also the {variable} of"
                    f" {other[0]} (pod {other[1]}); one machine cannot play two parts,"
                    " give each host its own machine"
                )
    reference = max(parts_of.values(), key=len, default={})
    for pod, parts in parts_of.items():
        for part, hosts in parts.items():
            if len(hosts) > 1:
                errors.append(
                    f"pod {pod}: lab_part: {', '.join(hosts)} all play {part!r};"
                    " give each machine of a pod its own part"
                )
        missing = sorted(set(reference) - set(parts))
        if missing:
            errors.append(
                f"pod {pod}: lab_part: no machine plays {', '.join(map(repr, missing))}"
                f" (the pod has {', '.join(map(repr, sorted(parts)))}); add a pbx host with"
                f" lab_pod: {pod} and lab_part: {missing[0]}"
            )
    return errors


def lab_pod_secrets(stored: Mapping[str, Any] | None, pod: str) -> dict[str, dict[str, str]]:
    """The secrets stored for `pod` in the credentials file ({pods: {pod: {users...}}}).

    A file written before pods existed holds one lab's secrets at its top: they stay the
    secrets of the default pod, so that lab's phones keep working.
    """
    stored = stored or {}
    secrets = dict((stored.get("pods") or {}).get(pod) or {})
    if pod == default_pod() and not secrets:
        secrets = {kind: stored[kind] for kind in SECRET_KINDS if stored.get(kind)}
    return lab_merge_secrets(secrets)


def lab_class_plan(
    pbx_names: list[str],
    hostvars: Mapping[str, Any],
    pods: Mapping[str, Any],
    stored: Mapping[str, Any] | None,
    chosen: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each PBX's pod, part, description and the secrets known for it, in one pass.

    A host's description is every lab_* variable it sees (its pod's overrides included)
    over each setting's default; its known secrets, its pod's stored ones under those the
    instructor chose in lab_secrets_file (`chosen`, read by lab_read_secret_files). One call
    for the class: no task runs once per host.
    """
    plan = {}
    for name in pbx_names:
        host = hostvars[name]
        # Only the names are looked at here: reading an inventory value templates it.
        given = {str(key): host[key] for key in host if str(key).startswith("lab_") and key != "lab_secrets"}
        pod = pods["pod_of"][name]
        description = lab_description(given)
        pod_chosen = lab_pod_secrets(chosen, pod)
        plan[name] = {
            "pod": pod,
            "part": pods["part_of"][name],
            "addresses": pods["pods"][pod]["addresses"],
            "description": description,
            "unknown": lab_unknown_settings(list(given))
            + (_SECRETS_IN_INVENTORY if "lab_secrets" in host else [])
            + _unknown_secret_names(pod_chosen, description, pod),
            "chosen_secrets": pod_chosen,
            "known_secrets": lab_merge_secrets(lab_pod_secrets(stored, pod), pod_chosen),
            "inventory_dir": str(host.get("inventory_dir") or ""),
        }
    return plan


# Secrets are data: an inventory variable is a template to Ansible, so a secret holding
# "{{" would be evaluated, and Ansible's error would print the line that holds it.
_SECRETS_IN_INVENTORY = [
    "lab_secrets: secrets are not read from the inventory, where Ansible reads '{{' in a value"
    " as a template and prints the value in its errors; move them to a YAML file"
    " (pods: {pod1: {users: ..., trunks: ..., pins: ...}}, Vault-encrypted if you like) and"
    " name it in lab_secrets_file (README, Secrets)"
]


def _unknown_secret_names(chosen: Mapping[str, Any], description: Mapping[str, Any], pod: str) -> list[str]:
    """A chosen secret whose name is no user or trunk of the lab: a typo, said as one."""
    errors = []
    for kind, var in (("users", "lab_users"), ("trunks", "lab_trunks"), ("pins", "lab_users")):
        items = description.get(var)
        known = [str(i.get("name")) for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []
        for name in chosen.get(kind) or {}:
            if str(name) not in known:
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean {close[0]}?" if close else f"the lab's are {', '.join(known) or 'none'}"
                errors.append(
                    f"lab_secrets_file: pods.{pod}.{kind}.{name}: {var} has no {name!r}; {hint}"
                )
    return errors


def lab_read_secret_files(files: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The secrets files' contents as data, and what is wrong with their shape.

    `files` is {variable: {path, text}} (text None when the file does not exist; Ansible's
    file lookup has decrypted a Vault file). Returns {variable: {data, errors, sealed}}:
    `sealed`, the file on disk is Vault-encrypted. The text is parsed here, as plain YAML:
    a secret is never a template, and no error quotes a line of the file.
    """
    read = {}
    for variable, given in files.items():
        path, text = str(given.get("path") or ""), given.get("text")
        data, errors, sealed = {}, [], False
        if path and text is None and variable != "lab_credentials_file":
            errors.append(f"{variable}: {path} does not exist; write it (README, Secrets) or unset {variable}")
        if path and text is not None:
            sealed = Path(path).read_bytes()[:14] == b"$ANSIBLE_VAULT"
            try:
                data = yaml.safe_load(str(text)) or {}
            except yaml.YAMLError as error:  # its message quotes the line: say only where
                mark = getattr(error, "problem_mark", None)
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                errors.append(f"{variable}: {path} is not valid YAML{where}; fix it there")
                data = {}
            data, shape_errors = _secrets_shape(data, variable)
            errors += shape_errors
        read[variable] = {"data": data, "errors": errors, "sealed": sealed}
    return read


def _secrets_shape(data: Any, variable: str) -> tuple[dict[str, Any], list[str]]:
    """Keep what has the shape {pods: {pod: {kind: {name: secret}}}} (or, for the default
    pod, {kind: {name: secret}}); say what does not, never showing a value."""
    form = "pods: {pod1: {users: {name: secret}, trunks: {name: secret}, pins: {name: PIN}}}"
    if not isinstance(data, Mapping):
        return {}, [f"{variable}: the file holds a {type(data).__name__}, not a mapping; write {form}"]
    errors, kept = [], {}
    for key in data:
        if key not in ("pods", *SECRET_KINDS):
            errors.append(f"{variable}: {key}: unknown key; write {form}")
    pods = data.get("pods") or {}
    if not isinstance(pods, Mapping):
        errors.append(f"{variable}: pods: a {type(pods).__name__}, not a mapping; write {form}")
        pods = {}
    layers = {f"pods.{pod}": entry for pod, entry in pods.items()}
    layers[""] = {kind: data[kind] for kind in SECRET_KINDS if kind in data}
    for where, entry in layers.items():
        if not isinstance(entry, Mapping):
            errors.append(f"{variable}: {where}: a {type(entry).__name__}, not a mapping; write {form}")
            continue
        good = {}
        for kind, secrets in entry.items():
            path = f"{where}.{kind}".lstrip(".")
            if kind not in SECRET_KINDS:
                errors.append(f"{variable}: {path}: unknown kind; use users, trunks or pins")
            elif not isinstance(secrets, Mapping):
                errors.append(f"{variable}: {path}: a {type(secrets).__name__}, not a mapping; write {{name: secret}}")
            else:
                good[kind] = {str(name): value for name, value in secrets.items()}
        if where:
            kept.setdefault("pods", {})[where.removeprefix("pods.")] = good
        else:
            kept.update(good)
    return kept, errors


def lab_new_pod_secrets(plan: Mapping[str, Any], pods: Mapping[str, Any]) -> dict[str, Any]:
    """Fresh secrets for what each pod lacks, generated once per pod (for its first PBX's
    description) so that the pod's PBXs agree; none where lab_generate_secrets is false."""
    new = {}
    for pod, entry in pods["pods"].items():
        first = plan.get(entry["first"])
        if first and first["description"]["lab_generate_secrets"] is True:
            d = first["description"]
            new[pod] = lab_missing_secrets(first["known_secrets"], d["lab_users"], d["lab_trunks"])
    return new


def lab_host_views(
    plan: Mapping[str, Any], stored: Mapping[str, Any] | None, new_by_pod: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each PBX's settled secrets and its view of its pod (what the role prints)."""
    views = {}
    for name, host in plan.items():
        secrets = lab_merge_secrets(
            lab_pod_secrets(stored, host["pod"]), new_by_pod.get(host["pod"]), host["chosen_secrets"]
        )
        views[name] = {
            "secrets": secrets,
            "view": lab_host_view(host["description"], host["part"], host["addresses"], secrets,
                                  host["inventory_dir"]),
        }
    return views


def lab_store_pod_secrets(
    stored: Mapping[str, Any] | None, new_by_pod: Mapping[str, dict[str, dict[str, str]]]
) -> dict[str, Any]:
    """The credentials file with each pod's new secrets added, keeping every stored one."""
    pods = {
        pod: lab_pod_secrets(stored, pod)
        for pod in {*((stored or {}).get("pods") or {}), *new_by_pod}
    }
    if any((stored or {}).get(kind) for kind in SECRET_KINDS) and default_pod() not in pods:
        pods[default_pod()] = lab_pod_secrets(stored, default_pod())
    for pod, new in new_by_pod.items():
        pods[pod] = lab_merge_secrets(pods[pod], new)
    return {"pods": {pod: {k: v for k, v in pods[pod].items() if v} for pod in sorted(pods)}}


class FilterModule:
    """Views of the lab description."""

    def filters(self) -> dict[str, Any]:
        return {
            "lab_pbx_view": lab_pbx_view,
            "lab_host_view": lab_host_view,
            "lab_description": lab_description,
            "lab_unknown_settings": lab_unknown_settings,
            "lab_voice_view": lab_voice_view,
            "lab_features_view": lab_features_view,
            "lab_missing_secrets": lab_missing_secrets,
            "lab_merge_secrets": lab_merge_secrets,
            "lab_pods": lab_pods,
            "lab_class_errors": lab_class_errors,
            "lab_pod_secrets": lab_pod_secrets,
            "lab_store_pod_secrets": lab_store_pod_secrets,
            "lab_class_plan": lab_class_plan,
            "lab_read_secret_files": lab_read_secret_files,
            "lab_new_pod_secrets": lab_new_pod_secrets,
            "lab_host_views": lab_host_views,
        }
