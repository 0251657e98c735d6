"""Turn the lab description into what one host needs, so templates only print.

The lab description (playbooks/group_vars/all/lab.yml) names users, trunks and hosts once. A PBX needs
a different view of it: its own users, its side of each trunk, and which extensions of other
PBXs it reaches over which trunk. Computing that here, once, keeps that logic out of Jinja.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Mapping
from typing import Any

SECRET_KINDS = ("users", "trunks", "pins")  # pins: voicemail PINs, by user name
GENERATED_SECRET_BYTES = 18  # 24 URL-safe characters
GENERATED_PIN_DIGITS = 6


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
        {**user, "extension": str(user["extension"]), "secret": secrets["users"][user["name"]]}
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
            {"user": u["name"], "mailbox": str(u["extension"]), "pin": str(pins[u["name"]])}
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


def lab_phone_card(
    users: list[dict[str, Any]],
    addresses: dict[str, str],
    credentials_file: str,
    sip_port: int = 5060,
) -> list[str]:
    """Lines telling a student where each phone registers and where its secret is."""
    lines = [f"{'user':<14} {'extension':<10} register to", "-" * 46]
    for user in users:
        registrar = f"{addresses[user['host']]}:{sip_port} ({user['host']})"
        lines.append(f"{user['name']:<14} {str(user['extension']):<10} {registrar}")
    lines.append(f"Secrets: {credentials_file}: SIP passwords under 'users', voicemail PINs under 'pins'.")
    return lines


class FilterModule:
    """Views of the lab description."""

    def filters(self) -> dict[str, Any]:
        return {
            "lab_pbx_view": lab_pbx_view,
            "lab_voice_view": lab_voice_view,
            "lab_features_view": lab_features_view,
            "lab_missing_secrets": lab_missing_secrets,
            "lab_merge_secrets": lab_merge_secrets,
            "lab_phone_card": lab_phone_card,
        }
