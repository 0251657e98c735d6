"""Turn the lab description into what one host needs, so templates only print.

The lab description (playbooks/group_vars/all/lab.yml) names users, trunks and hosts once. A PBX needs
a different view of it: its own users, its side of each trunk, and which extensions of other
PBXs it reaches over which trunk. Computing that here, once, keeps that logic out of Jinja.
"""

from __future__ import annotations

import secrets as _secrets
from typing import Any

SECRET_KINDS = ("users", "trunks")
GENERATED_SECRET_BYTES = 18  # 24 URL-safe characters


def _trunk_peer(trunk: dict[str, Any], host: str) -> str | None:
    """The other end of `trunk` seen from `host`, or None when `host` is not on it."""
    if trunk["registrar"] == host:
        return trunk["registrant"]
    if trunk["registrant"] == host:
        return trunk["registrar"]
    return None


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
    {"users": {name: secret}, "trunks": {name: secret}}.
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
    for trunk in trunks:
        peer = _trunk_peer(trunk, host)
        if peer is None:
            continue
        trunk_to_host.setdefault(peer, trunk["name"])
        local_trunks.append(
            {
                "name": trunk["name"],
                # The registrar challenges its peer; the registrant registers and answers
                # the challenge.
                "side": "registrar" if trunk["registrar"] == host else "registrant",
                "peer_host": peer,
                "peer_address": addresses[peer],
                "peer_port": int(sip_port),
                "username": trunk["name"],
                "secret": secrets["trunks"][trunk["name"]],
            }
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
    return {"users": local_users, "trunks": local_trunks, "remote_routes": remote_routes}


def lab_missing_secrets(
    known: dict[str, dict[str, str]] | None,
    users: list[dict[str, Any]],
    trunks: list[dict[str, Any]],
) -> dict[str, dict[str, str]]:
    """Fresh random secrets for every user and trunk that `known` lacks (empty when none)."""
    known = known or {}
    wanted = {"users": [u["name"] for u in users], "trunks": [t["name"] for t in trunks]}
    missing: dict[str, dict[str, str]] = {}
    for kind in SECRET_KINDS:
        have = known.get(kind) or {}
        fresh = {
            name: _secrets.token_urlsafe(GENERATED_SECRET_BYTES)
            for name in wanted[kind]
            if not have.get(name)
        }
        if fresh:
            missing[kind] = fresh
    return missing


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
    lines.append(f"Secrets (SIP passwords): {credentials_file}, under 'users'.")
    return lines


class FilterModule:
    """Views of the lab description."""

    def filters(self) -> dict[str, Any]:
        return {
            "lab_pbx_view": lab_pbx_view,
            "lab_missing_secrets": lab_missing_secrets,
            "lab_merge_secrets": lab_merge_secrets,
            "lab_phone_card": lab_phone_card,
        }
