"""One printable card per pod of a classroom: what each student of the pod registers with and dials.

A class runs the lab as pods (pod1, pod07, ...): each pod has its own VM A and VM B, playing the
parts `vm-a` and `vm-b` of the lab description (lab_description, lab_view.py). The instructor
prints one card per pod and hands it to the group:

- `lab_pod_card` makes the card: a self-contained HTML page (inline CSS, no script, nothing
  fetched), with one cut-out section per student (where to register, SIP user name and password,
  voicemail number and PIN; given the students' phone settings (lab_phones.lab_phone_card), the
  names of their phone files and a QR code of their account, as inline SVG) and, once, the
  numbers to dial (users, then services). It shows only the pod it is given; trunk secrets are
  never on it.
- `lab_pod_summary` is the pod's one line for the terminal: addresses and where its card is.
- `lab_pod_files_prefix` is where a pod's files go (its card, its students' phone files):
  beside the credentials file, named after it and the pod.

Every value printed into the page is HTML-escaped, and its braces are written as character
references, so a secret such as `<&"'{{` reads back exactly and the page never holds `{{`,
`{%` or `{#` for a later templating pass to act on.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

DEFAULT_SIP_PORT = 5060

# What the conference menu's actions (lab_conference_menu) do, as a participant reads it.
_MENU_ACTIONS = {"mute": "mute/unmute", "leave": "leave the room"}

# One row of a table of numbers: what to dial, what happens, from which phones.
Row = tuple[str, str, str]

_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 11pt/1.4 system-ui, "DejaVu Sans", Arial, sans-serif; color: #000; background: #fff;
  max-width: 50em; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 17pt; margin: 0 0 .2em; }
h2 { font-size: 13pt; margin: 0 0 .5em; }
p { margin: .3em 0; }
section { border: 1px dashed #555; border-radius: 4px; padding: .8em 1em; margin: 0 0 1em;
  break-inside: avoid; page-break-inside: avoid; }
section.numbers { break-inside: auto; page-break-inside: auto; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25em 1.2em; margin: 0; }
dt { font-weight: bold; }
dd { margin: 0; }
.value { font: 12pt ui-monospace, "DejaVu Sans Mono", Consolas, monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 0 0 .8em; }
th, td { border: 1px solid #888; padding: .2em .45em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.dial { font: 11pt ui-monospace, "DejaVu Sans Mono", Consolas, monospace; white-space: nowrap; }
tr { break-inside: avoid; page-break-inside: avoid; }
thead { display: table-header-group; }
.note { font-size: 9.5pt; color: #333; }
figure.qr { margin: .6em 0 0; display: flex; gap: 1em; align-items: center; }
figure.qr svg { width: 34mm; height: 34mm; flex: none; }
@page { size: A4; margin: 12mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  section { border-color: #000; }
  th { background: none; }
  .note { color: #000; }
}
"""


def _e(value: Any) -> str:
    """`value` as HTML text or attribute value: escaped, with no brace left for Jinja to see."""
    return html.escape(str(value), quote=True).replace("{", "&#123;").replace("}", "&#125;")


def _one_line(value: Any) -> str:
    """`value` as text with every line break or other control character turned into a space."""
    return "".join(c if c.isprintable() else " " for c in str(value))


def _parts(description: Mapping[str, Any]) -> list[str]:
    """The PBX parts of the lab (vm-a, vm-b, ...), in the order the description names them."""
    named = [str(u["host"]) for u in description.get("lab_users") or []]
    for trunk in description.get("lab_trunks") or []:
        named += [
            str(end) for end in (trunk.get("registrant"), trunk.get("registrar")) if isinstance(end, str)
        ]
    if description.get("lab_services_host"):
        named.append(str(description["lab_services_host"]))
    return list(dict.fromkeys(named))


def _trunk_between(trunks: list[Mapping[str, Any]], here: str, there: str) -> str | None:
    """The first trunk joining parts `here` and `there` (as the per-host view routes), if any."""
    for trunk in trunks:
        if {trunk.get("registrant"), trunk.get("registrar")} == {here, there}:
            return str(trunk["name"])
    return None


def _reached_from(description: Mapping[str, Any], part: str) -> str:
    """Which phones reach the users of `part`: its own, and other parts' across a trunk."""
    trunks = list(description.get("lab_trunks") or [])
    across = [
        f"{other} across {trunk}"
        for other in _parts(description)
        if other != part and (trunk := _trunk_between(trunks, other, part))
    ]
    return "; ".join([part, *across])


def _address(addresses: Mapping[str, str], part: str, pod: str) -> str:
    if not addresses.get(part):
        raise ValueError(f"pod {pod}: no address for {part}; give addresses[{part!r}]")
    return str(addresses[part])


def _extension_names(description: Mapping[str, Any]) -> dict[str, str]:
    return {str(u["extension"]): str(u["name"]) for u in description.get("lab_users") or []}


def _student_fields(
    user: Mapping[str, Any],
    description: Mapping[str, Any],
    registrar: str,
    secrets: Mapping[str, Any],
    pod: str,
) -> list[tuple[str, str, bool]]:
    """(label, value, is a value typed into the phone) of one student's section."""
    name, extension = str(user["name"]), str(user["extension"])
    password = (secrets.get("users") or {}).get(name)
    if password in (None, ""):
        raise ValueError(f"pod {pod}: no SIP password for user {name} in secrets.users")
    fields = [
        ("Extension", extension, True),
        ("Register to", f"{registrar} ({user['host']}), SIP over UDP", True),
        ("SIP user name", name, True),
        ("SIP password", str(password), True),
    ]
    if description.get("lab_voicemail_extension") not in (None, ""):
        fields.append(
            (
                "Voicemail",
                f"dial {description['lab_voicemail_extension']} from your phone, mailbox {extension}",
                False,
            )
        )
    pin = (secrets.get("pins") or {}).get(name)
    if pin not in (None, ""):
        fields.append(("Voicemail PIN", str(pin), True))
    if user.get("pickup_group") is not None:
        code = description.get("lab_pickup_code")
        how = f": dial {code} to answer a call ringing a phone of your group" if code else ""
        fields.append(("Pickup group", f"{user['pickup_group']}{how}", False))
    if user.get("followme"):
        names = _extension_names(description)
        targets = ", ".join(
            f"{ext} ({names[str(ext)]})" if str(ext) in names else str(ext) for ext in user["followme"]
        )
        fields.append(("Follow-me", f"unanswered, your calls ring {targets}, then voicemail", False))
    queues = [q for q in description.get("lab_queues") or [] if name in q.get("members", [])]
    if queues:
        listed = ", ".join(f"{q['name']} ({q['extension']})" for q in queues)
        fields.append(("Queue agent", f"{listed}; you start logged out", False))
    return fields


def _user_rows(description: Mapping[str, Any]) -> list[Row]:
    """Each user's extension: who it rings, and from which phones."""
    return [
        (
            str(u["extension"]),
            f"rings {u['name']} on {u['host']}; busy or unanswered: voicemail",
            _reached_from(description, str(u["host"])),
        )
        for u in description.get("lab_users") or []
    ]


def _has(description: Mapping[str, Any], key: str) -> bool:
    return description.get(key) not in (None, "", [], {})


def _voice_rows(description: Mapping[str, Any], every: str, services: str) -> list[Row]:
    """Echo test and voicemail (every PBX), then the menus, music and prompts (services host)."""
    d, rows = description, []
    names = {str(u["name"]): str(u["extension"]) for u in d.get("lab_users") or []}
    if _has(d, "lab_echo_extension"):
        rows.append((str(d["lab_echo_extension"]), "echo test: a prompt, then your own voice back", every))
    if _has(d, "lab_voicemail_extension"):
        rows.append(
            (str(d["lab_voicemail_extension"]), "your voicemail: mailbox number + #, then PIN + #", every)
        )
    operator = str(d["lab_operator"]) if _has(d, "lab_operator") else ""
    if operator:
        operator = f"{operator} ({names[operator]})" if operator in names else operator
    wait = f" within {d['lab_menu_wait_seconds']} s" if _has(d, "lab_menu_wait_seconds") else ""
    if _has(d, "lab_auto_attendant_extension"):
        prompt = (
            f"prompt {d['lab_auto_attendant_prompt']}, then " if _has(d, "lab_auto_attendant_prompt") else ""
        )
        fallback = f", else the operator {operator}" if operator else ""
        rows.append(
            (
                str(d["lab_auto_attendant_extension"]),
                f"auto-attendant: {prompt}dial any extension{wait}{fallback}",
                services,
            )
        )
    if _has(d, "lab_ivr_extension"):
        prompt = f"prompt {d['lab_ivr_prompt']}; " if _has(d, "lab_ivr_prompt") else ""
        keys = "; ".join(
            f"{key}: {user} ({names[str(user)]})" if str(user) in names else f"{key}: {user}"
            for key, user in (d.get("lab_ivr_options") or {}).items()
        )
        keys = f"{keys}; another key replays it" if keys else "press a key"
        fallback = f"; no key: the operator {operator}" if operator else ""
        rows.append((str(d["lab_ivr_extension"]), f"IVR: {prompt}{keys}{fallback}", services))
    if _has(d, "lab_moh_extension"):
        length = f" for {d['lab_moh_seconds']} s" if _has(d, "lab_moh_seconds") else ""
        rows.append((str(d["lab_moh_extension"]), f"music on hold{length}", services))
    if _has(d, "lab_record_prompt_prefix"):
        prefix = str(d["lab_record_prompt_prefix"])
        example = next(iter(d.get("lab_prompts") or {}), d.get("lab_auto_attendant_prompt") or "menu1")
        rows.append(
            (
                f"{prefix}<name>",
                f"record prompt <name> (e.g. {prefix}{example}): speak after the beep, "
                "# or 3 s of silence ends it, then hear it back",
                services,
            )
        )
    return rows


def _feature_rows(description: Mapping[str, Any], every: str, services: str) -> list[Row]:
    """Conference, parking, pickup, queues and their agents' codes, transfers."""
    d, rows = description, []
    menu = d.get("lab_conference_menu") or {}
    keys = ", ".join(f"{key} {_MENU_ACTIONS.get(str(action), action)}" for action, key in menu.items())
    for room in d.get("lab_conference_rooms") or []:
        cap = f" (up to {room['max_members']})" if room.get("max_members") else ""
        inside = f"; in the room: {keys}" if keys else ""
        rows.append((str(room["extension"]), f"conference room {room['name']}{cap}{inside}", services))
    slots = str(d["lab_parking_slots"]) if _has(d, "lab_parking_slots") else ""
    if _has(d, "lab_park_extension"):
        where = f"; it waits in the first free slot {slots}" if slots else ""
        rows.append(
            (str(d["lab_park_extension"]), f"park the call (or transfer a call to it){where}", services)
        )
    if slots:
        back = (
            f"; unanswered after {d['lab_parking_seconds']} s it rings whoever parked it"
            if _has(d, "lab_parking_seconds")
            else ""
        )
        rows.append((slots, f"take the call parked in that slot{back}", services))
    if _has(d, "lab_pickup_code"):
        groups: dict[str, list[str]] = {}
        for user in d.get("lab_users") or []:
            if user.get("pickup_group") is not None:
                groups.setdefault(str(user["pickup_group"]), []).append(str(user["name"]))
        listed = "; ".join(f"group {g}: {', '.join(members)}" for g, members in groups.items())
        rows.append(
            (
                str(d["lab_pickup_code"]),
                "answer a call ringing another phone of your pickup group"
                + (f" ({listed})" if listed else ""),
                every,
            )
        )
    queues = list(d.get("lab_queues") or [])
    for queue in queues:
        members = ", ".join(str(m) for m in queue.get("members", []))
        rows.append(
            (
                str(queue["extension"]),
                f"queue {queue['name']}: the next free agent among {members} who is logged in; "
                "busy when none is",
                services,
            )
        )
    if queues:
        for key, what in (
            ("lab_queue_login_code", "agent: log in to every queue that lists you"),
            ("lab_queue_logout_code", "agent: log out of every queue that lists you"),
            ("lab_queue_pause_code", "agent: pause (stay logged in, take no calls)"),
            ("lab_queue_unpause_code", "agent: resume taking calls"),
        ):
            if _has(d, key):
                rows.append((str(d[key]), what, services))
    if _has(d, "lab_blind_transfer_keys"):
        rows.append(
            (
                f"in a call: {d['lab_blind_transfer_keys']} + number",
                "blind transfer: the call goes to the number, you leave it at once",
                every,
            )
        )
    if _has(d, "lab_attended_transfer_keys"):
        rows.append(
            (
                f"in a call: {d['lab_attended_transfer_keys']} + number",
                "attended transfer: talk to the number, hang up to hand the call over",
                every,
            )
        )
    return rows


def _trunk_rows(description: Mapping[str, Any]) -> list[Row]:
    """Each trunk with a dial prefix: prefix + number goes out through it."""
    parts = _parts(description)
    rows = []
    for trunk in description.get("lab_trunks") or []:
        if trunk.get("dial_prefix") in (None, ""):
            continue
        prefix = str(trunk["dial_prefix"])
        ends = [
            str(e)
            for e in (trunk.get("registrant"), trunk.get("registrar"))
            if isinstance(e, str) and e in parts
        ]
        rows.append(
            (
                f"{prefix} + number",
                f"out through {trunk['name']} (the {prefix} is dropped; an exact extension still wins)",
                "; ".join(ends),
            )
        )
    return rows


def _service_rows(description: Mapping[str, Any]) -> list[Row]:
    every = ", ".join(_parts(description))
    services = str(description.get("lab_services_host") or "")
    return [
        *_voice_rows(description, every, services),
        *_feature_rows(description, every, services),
        *_trunk_rows(description),
    ]


def _phone_fields(phone: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """The names of a student's phone files (lab_phones.lab_phone_card), one line a phone."""
    return [
        (f"{kind} settings", f"file {name}" if name else "none: its file cannot hold your password, type it in",
         False)
        for kind, name in phone.get("files", {}).items()
    ]


def _render_qr(phone: Mapping[str, Any]) -> str:
    """The student's QR code: segno's SVG as it is (a path drawn from the code's modules: it
    holds no text of ours), with what it holds in words."""
    if not phone.get("qr_svg"):
        return ""
    return (
        f'<figure class="qr">{phone["qr_svg"]}<figcaption class="note">Your account as a SIP URI '
        "(sip:user:password@server:port;transport=udp), for a phone to read instead of typing it."
        "</figcaption></figure>"
    )


def _render_fields(fields: list[tuple[str, str, bool]]) -> str:
    items = []
    for label, value, typed in fields:
        css = ' class="value"' if typed else ""
        items.append(f"<dt>{_e(label)}</dt><dd{css}>{_e(value)}</dd>")
    return "<dl>\n" + "\n".join(items) + "\n</dl>"


def _render_table(caption: str, rows: list[Row]) -> str:
    if not rows:
        return ""
    body = "\n".join(
        f'<tr><td class="dial">{_e(dial)}</td><td>{_e(what)}</td><td>{_e(where or "-")}</td></tr>'
        for dial, what, where in rows
    )
    return (
        f"<h2>{_e(caption)}</h2>\n<table>\n"
        "<thead><tr><th>Dial</th><th>What happens</th><th>From phones on</th></tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>"
    )


def _header(description: Mapping[str, Any], pod: str, addresses: Mapping[str, str], lab_name: str) -> str:
    port = description.get("lab_sip_port") or DEFAULT_SIP_PORT
    pbxs = ", ".join(f"{part} {_address(addresses, part, pod)}" for part in _parts(description))
    settings = [f"SIP over UDP, port {port}"]
    if description.get("lab_codecs"):
        settings.append("audio codecs " + ", ".join(str(c) for c in description["lab_codecs"]))
    if description.get("lab_video_codecs"):
        settings.append("video codecs " + ", ".join(str(c) for c in description["lab_video_codecs"]))
    if description.get("lab_language"):
        settings.append(f"prompts in {description['lab_language']}")
    return (
        f"<header>\n<h1>{_e(lab_name)} — {_e(pod)}</h1>\n"
        f"<p>PBXs of pod {_e(pod)}: {_e(pbxs)}</p>\n"
        f"<p>Phone settings: {_e('; '.join(settings))}</p>\n"
        '<p class="note">One section per student: cut along the dashed lines. '
        "Keep your section to yourself: it holds your passwords.</p>\n</header>"
    )


def lab_pod_card(
    description: Mapping[str, Any],
    pod: str,
    addresses: Mapping[str, str],
    secrets: Mapping[str, Any],
    lab_name: str = "tp3",
    phones: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The printable HTML card of pod `pod`: a section per student, then the numbers to dial.

    `description` holds the lab settings (lab_description: keys with their `lab_` prefix); a
    missing service setting leaves its line off the card. `addresses` maps each part
    (vm-a, vm-b) to this pod's address; `secrets` is this pod's {"users": {name: password},
    "pins": {name: PIN}, ...}: trunk secrets are not read. `phones` (lab_phones.lab_phone_card)
    gives, by user, the names of their phone files and the SVG of their QR code. Raises
    ValueError when a part has no address or a user no password (naming them, never a secret).
    """
    port = description.get("lab_sip_port") or DEFAULT_SIP_PORT
    students = []
    for user in description.get("lab_users") or []:
        registrar = f"{_address(addresses, str(user['host']), pod)}:{port}"
        fields = _student_fields(user, description, registrar, secrets, pod)
        phone = (phones or {}).get(str(user["name"])) or {}
        students.append(
            f'<section class="student" id="user-{_e(user["name"])}">\n'
            f"<h2>{_e(user['name'])} — extension {_e(user['extension'])}</h2>\n"
            f'<p class="note">{_e(lab_name)}, {_e(pod)}</p>\n'
            f"{_render_fields(fields + _phone_fields(phone))}\n{_render_qr(phone)}</section>"
        )
    numbers = "\n".join(
        table
        for table in (
            _render_table("Call each other", _user_rows(description)),
            _render_table("Services", _service_rows(description)),
        )
        if table
    )
    title = f"{_e(lab_name)} — {_e(pod)}: phone card"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{_header(description, pod, addresses, lab_name)}\n"
        + "\n".join(students)
        + f'\n<section class="numbers" id="numbers">\n{numbers}\n</section>\n</body>\n</html>\n'
    )


def lab_pod_summary(pod: str, addresses: Mapping[str, str], card_path: str) -> str:
    """One terminal line for pod `pod`: its parts' addresses and where its card is (no secret)."""
    pieces = [
        _one_line(pod),
        *(f"{_one_line(part)} {_one_line(addresses[part])}" for part in sorted(addresses)),
    ]
    return "  ".join([*pieces, f"card: {_one_line(card_path)}"])


def lab_pod_files_prefix(credentials_file: str, pod: str) -> str:
    """Where pod `pod`'s files go: beside the credentials file, named after both. Its card
    adds `.html`; each student's phone files add `-<user>.<kind>` (lab_phones.py)."""
    stem = credentials_file[: -len(".yml")] if credentials_file.endswith(".yml") else credentials_file
    return f"{stem}-{pod}"


def lab_pod_files_prefix_of(pod: str, credentials_file: str) -> str:
    """lab_pod_files_prefix with the pod first, to map over a list of pods in Jinja."""
    return lab_pod_files_prefix(credentials_file, pod)


def lab_card_path(credentials_file: str, pod: str) -> str:
    """Where pod `pod`'s card is written: beside the credentials file, named after both."""
    return f"{lab_pod_files_prefix(credentials_file, pod)}.html"


def lab_class_summary(pods: Mapping[str, Any], credentials_file: str) -> list[str]:
    """One line per pod (lab_pods' `pods`): its PBXs' addresses and its card."""
    return [
        lab_pod_summary(
            pod,
            {part: entry["addresses"][part] for part in entry["pbx_parts"]},
            lab_card_path(credentials_file, pod),
        )
        for pod, entry in pods.items()
        if entry["pbx_parts"]
    ]


def lab_class_cards(
    pods: Mapping[str, Any],
    plan: Mapping[str, Any],
    hosts: Mapping[str, Any],
    phones: Mapping[str, Any],
    credentials_file: str,
) -> dict[str, str]:
    """Every pod's card by the path it is written to (lab_card_path), for one module run.

    Each pod is shown as its first PBX sees it: its description and secrets (lab_class_plan,
    lab_host_views); `phones` is lab_class_phone_cards, by pod.
    """
    cards = {}
    for pod, entry in pods.items():
        if not entry.get("first"):
            continue
        description = plan[entry["first"]]["description"]
        named = {"lab_name": description["lab_name"]} if "lab_name" in description else {}
        cards[lab_card_path(credentials_file, pod)] = lab_pod_card(
            description, pod, entry["addresses"], hosts[entry["first"]]["secrets"], phones=phones.get(pod), **named)
    return cards


class FilterModule:
    """Classroom pods' cards."""

    def filters(self) -> dict[str, Any]:
        return {
            "lab_class_cards": lab_class_cards,
            "lab_pod_summary": lab_pod_summary,
            "lab_card_path": lab_card_path,
            "lab_pod_files_prefix": lab_pod_files_prefix,
            "lab_pod_files_prefix_of": lab_pod_files_prefix_of,
            "lab_class_summary": lab_class_summary,
        }
