"""Ready-to-import phone settings for every student of a pod, and the QR code on their card.

For each user of a pod (lab_users), beside the pod's card (lab_cards.py):

- `<user>.microsip.ini`: a MicroSIP.ini holding the account (MicroSIP, Windows);
- `<user>.linphone.xml`: a Linphone remote-provisioning file (the lpconfig XML format);
- `<user>.baresip-accounts`: a baresip `accounts` file: comments and one account line.

Each names the registrar (the address of the PBX part that serves the user, and lab_sip_port),
the user, the secret, the lab's codecs (lab_codecs, PCMU first) in the phone's own names, and
the voicemail number (lab_voicemail_extension). The playbook prefixes each name with the pod's
(lab_cards.lab_pod_files_prefix), so a file reads `<credentials stem>-<pod>-<user>.<kind>`.

A secret may hold any printable character. Each format is written so that its phone reads
the value back exactly, or the secret is refused, naming the user and never the secret:

- MicroSIP reads its file with Windows' GetPrivateProfileString: the value is the text after
  the first `=`, spaces trimmed, and one pair of matching quotes around it dropped; `;`, `#`
  and `=` inside a value mean nothing. A value that begins or ends with a space, or with
  matching quotes, is written inside double quotes. A file without a byte-order mark is read
  in the PC's ANSI code page, so only ASCII is written.
- Linphone parses the XML with libxml2 (coreapi/xml2lpc.c): `&`, `<` and `>` are written as
  entities. It then keeps the value in its linphonerc, which drops trailing spaces.
- baresip finds each setting of an account line with msg_param_decode (re, src/msg/param.c):
  the first `;name=` anywhere on the line, quoted or not, then a value that ends at a space,
  `;` or line end, except that a backslash takes the next character and double quotes
  enclose a run that may hold them (backslashes and quotes stay in the value), and a value
  quoted from end to end loses its quotes. So a `;` in a secret could be read as the start
  of another setting: refused. Other secrets are written bare or quoted,
  whichever baresip reads back exactly and ends where it was meant to end (so that
  `baresip -u ...` can still add settings after it); one that fits neither is refused.
- The QR code holds the account as a SIP URI (RFC 3261), every reserved character
  percent-escaped.

User names are the lab's (letters, digits, `_`, `.`, `-`; lab_validate.py): nothing to escape.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

DEFAULT_SIP_PORT = 5060

# What a user name may hold (lab_validate.NAME_RE): safe as is in every file and URI here.
USER_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")

# Where each file kind goes, after the pod's prefix and the user's name.
KINDS = {"MicroSIP": "microsip.ini", "Linphone": "linphone.xml", "baresip": "baresip-accounts"}

LINPHONE_NAMESPACE = "http://www.linphone.org/xsds/lpconfig.xsd"

# GetPrivateProfileString gives at most this many characters of the password: MicroSIP
# passes it a buffer of 1041 (settings.cpp, AccountLoad; 256 for the other values, which
# are short here).
MICROSIP_MAX_PASSWORD = 1040
# baresip's account module copies each line into a 1024-byte buffer (modules/account).
BARESIP_MAX_LINE = 1023


@dataclass(frozen=True)
class Codec:
    """One Asterisk codec as each phone names it (None: the phone does not offer it)."""

    microsip: str | None  # a PJSIP codec id, as MicroSIP's audioCodecs lists them
    linphone: tuple[str, int, int] | None  # mime type, RTP clock rate, channels
    baresip: str | None  # name/sample rate/channels, as baresip's modules register them


# Asterisk's codec names (lab_codecs) in the phones' words. Linphone's G722 runs at the RTP
# clock of 8000; PJSIP and baresip name it by its 16 kHz sample rate. baresip's codecs are
# those its modules register (g711, g722, opus); the others it does not have.
CODECS = {
    "ulaw": Codec("PCMU/8000/1", ("PCMU", 8000, 1), "PCMU/8000/1"),
    "alaw": Codec("PCMA/8000/1", ("PCMA", 8000, 1), "PCMA/8000/1"),
    "g722": Codec("G722/16000/1", ("G722", 8000, 1), "G722/16000/1"),
    "opus": Codec("opus/48000/2", ("opus", 48000, 2), "opus/48000/2"),
    "gsm": Codec("GSM/8000/1", ("GSM", 8000, 1), None),
    "ilbc": Codec("iLBC/8000/1", ("iLBC", 8000, 1), None),
    "g729": Codec("G729/8000/1", ("G729", 8000, 1), None),
    "speex": Codec("speex/8000/1", ("speex", 8000, 1), None),
    "speex16": Codec("speex/16000/1", ("speex", 16000, 1), None),
    "speex32": Codec("speex/32000/1", ("speex", 32000, 1), None),
}


@dataclass(frozen=True)
class Account:
    """What one student's phone needs: where to register, as whom, and how to talk."""

    pod: str
    name: str
    extension: str
    part: str
    host: str
    port: int
    secret: str
    codecs: tuple[str, ...]  # Asterisk names, ulaw first when the lab allows it
    voicemail: str  # the number to dial; "" when the lab has none

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"


def xml_escape(text: str) -> str:
    """&, < and > as XML entities. (xml.sax.saxutils.escape does the same, but importing it
    imports urllib.request, and Ansible loads this plugin in every worker.)"""
    return html.escape(text, quote=False)


def _ordered_codecs(codecs: Any) -> tuple[str, ...]:
    """The lab's audio codecs, PCMU (ulaw) first as the lab report's phones offered them."""
    names = [str(c) for c in codecs or []]
    return tuple(sorted(names, key=lambda c: c != "ulaw"))


def _accounts(
    description: Mapping[str, Any], pod: str, addresses: Mapping[str, str], secrets: Mapping[str, Any]
) -> list[Account]:
    """One account per user of the pod. Raises ValueError when a user has no secret or a
    part no address (naming them, never a secret)."""
    port = int(description.get("lab_sip_port") or DEFAULT_SIP_PORT)
    voicemail = description.get("lab_voicemail_extension")
    accounts = []
    for user in description.get("lab_users") or []:
        name, part = str(user["name"]), str(user["host"])
        secret = (secrets.get("users") or {}).get(name)
        if secret in (None, ""):
            raise ValueError(f"pod {pod}: no SIP password for user {name} in secrets.users")
        if not addresses.get(part):
            raise ValueError(f"pod {pod}: no address for {part}; give addresses[{part!r}]")
        accounts.append(
            Account(
                pod=pod,
                name=name,
                extension=str(user["extension"]),
                part=part,
                host=str(addresses[part]),
                port=port,
                secret=str(secret),
                codecs=_ordered_codecs(description.get("lab_codecs")),
                voicemail="" if voicemail in (None, "") else str(voicemail),
            )
        )
    return accounts


# ---------------------------------------------------------------------------- problems


def _where(account: Account) -> str:
    return f"pod {account.pod}: users.{account.name}"


def _common_problems(account: Account) -> list[str]:
    if not USER_NAME_RE.fullmatch(account.name):
        return [
            f"pod {account.pod}: lab_users: {account.name} is not a SIP user name that the phone files"
            " can hold; use letters, digits, _, . and -"
        ]
    if not account.secret.isprintable():
        return [f"{_where(account)}: the secret holds a line break or control character; choose another"]
    return []


def _codec_problems(account: Account, phone: str) -> list[str]:
    if not _phone_codecs(account, phone):
        listed = ", ".join(account.codecs) or "none"
        offered = ", ".join(c for c, names in CODECS.items() if getattr(names, phone.lower()))
        return [f"pod {account.pod}: lab_codecs: {phone} offers none of {listed}; allow one of {offered}"]
    return []


def microsip_problems(account: Account) -> list[str]:
    """Why MicroSIP could not read this account's values back exactly (never the secret)."""
    problems = _codec_problems(account, "MicroSIP")
    if not account.secret.isascii():
        problems.append(
            f"{_where(account)}: the secret holds a character outside ASCII, which MicroSIP reads in"
            " the code page of each PC; choose a secret of ASCII characters"
        )
    if len(account.secret) > MICROSIP_MAX_PASSWORD:
        problems.append(
            f"{_where(account)}: the secret is longer than the {MICROSIP_MAX_PASSWORD} characters"
            " MicroSIP reads; choose a shorter one"
        )
    return problems


def linphone_problems(account: Account) -> list[str]:
    """Why Linphone could not read this account's values back exactly (never the secret)."""
    problems = _codec_problems(account, "Linphone")
    if account.secret != account.secret.rstrip():
        problems.append(
            f"{_where(account)}: the secret ends with a space, which Linphone drops when it reads"
            " its linphonerc back; choose another"
        )
    return problems


def baresip_problems(account: Account) -> list[str]:
    """Why baresip could not read this account's values back exactly (never the secret)."""
    problems = _codec_problems(account, "baresip")
    if ";" in account.secret:
        problems.append(
            f"{_where(account)}: the secret holds a semicolon, which the baresip accounts line cannot"
            " carry (baresip finds each setting by ;name= anywhere on the line, even inside quotes);"
            " choose a secret without semicolons"
        )
    elif _baresip_value(account.secret) is None:
        problems.append(
            f"{_where(account)}: baresip cannot read the secret back exactly: a double quote or"
            " backslash in it would carry the value on past its end; choose a secret without"
            " double quotes and backslashes"
        )
    elif len(_baresip_line(account).encode()) > BARESIP_MAX_LINE:
        problems.append(
            f"{_where(account)}: the accounts line would be longer than the {BARESIP_MAX_LINE} bytes"
            " baresip reads; choose a shorter secret"
        )
    return problems


def lab_phone_problems(
    description: Mapping[str, Any], pod: str, addresses: Mapping[str, str], secrets: Mapping[str, Any]
) -> list[str]:
    """Every reason the pod's phone files could not be written so that each phone reads its
    values back exactly; each names the pod, the user and the phone, never a secret."""
    try:
        accounts = _accounts(description, pod, addresses, secrets)
    except ValueError as error:
        return [str(error)]
    problems: list[str] = []
    for account in accounts:
        common = _common_problems(account)
        if common:
            problems += common
            continue
        for check in (microsip_problems, linphone_problems, baresip_problems):
            problems += [p for p in check(account) if p not in problems]
    return problems


# ---------------------------------------------------------------------------- the files


def _phone_codecs(account: Account, phone: str) -> list[Any]:
    """The account's codecs as `phone` names them, in the lab's order; unknown ones left out."""
    return [
        getattr(CODECS[c], phone.lower())
        for c in account.codecs
        if c in CODECS and getattr(CODECS[c], phone.lower())
    ]


def _ini_value(value: str) -> str:
    """`value` as GetPrivateProfileString gives it back: quoted when it begins or ends with a
    space or with a pair of matching quotes, which the reader would otherwise drop."""
    if value != value.strip() or (len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]):
        return f'"{value}"'
    return value


def microsip_ini(account: Account) -> str:
    """A MicroSIP.ini whose only account is this one (section Account1, selected)."""
    settings = {
        "accountId": "1",
        "audioCodecs": " ".join(_phone_codecs(account, "MicroSIP")),
    }
    fields = {
        "label": f"{account.name} ({account.pod})",
        "server": account.hostport,
        "domain": account.hostport,
        "username": account.name,
        "password": account.secret,
        "authID": account.name,
        "displayName": account.name,
        "transport": "udp",
    }
    if account.voicemail:
        fields["voicemailNumber"] = account.voicemail
    lines = [
        f"; MicroSIP settings of {account.name} ({account.pod}), written by asterisk-lab.",
        "; Quit MicroSIP, then save this file as MicroSIP.ini beside microsip.exe (portable) or in",
        "; %APPDATA%\\MicroSIP (installed). MicroSIP encrypts the password when it starts.",
        "[Settings]",
        *(f"{key}={_ini_value(value)}" for key, value in settings.items()),
        "",
        "[Account1]",
        *(f"{key}={_ini_value(value)}" for key, value in fields.items()),
    ]
    return "\n".join(lines) + "\n"


def linphone_sections(account: Account) -> dict[str, dict[str, str]]:
    """What the Linphone file sets: {section: {entry: value}}, as linphonerc will hold it."""
    proxy = f"<sip:{account.hostport};transport=udp>"
    sections = {
        "sip": {"default_proxy": "0"},
        "proxy_0": {
            "reg_identity": f"sip:{account.name}@{account.hostport}",
            "reg_proxy": proxy,
            # The PBX is the outbound proxy: calls go through it too, not only REGISTER.
            "reg_route": f"<sip:{account.hostport};transport=udp;lr>",
            "reg_sendregister": "1",
        },
        "auth_info_0": {"username": account.name, "passwd": account.secret},
    }
    if account.voicemail:
        sections["proxy_0"]["voicemail_uri"] = f"sip:{account.voicemail}@{account.hostport}"
    for i, (mime, rate, channels) in enumerate(_phone_codecs(account, "Linphone")):
        sections[f"audio_codec_{i}"] = {
            "mime": mime,
            "rate": str(rate),
            "channels": str(channels),
            "enabled": "1",
        }
    return sections


def linphone_xml(account: Account) -> str:
    """A Linphone remote-provisioning XML (lpconfig.xsd) for this account. Every entry
    overwrites what the phone had, so that importing it again applies a changed secret."""
    body = []
    for section, entries in linphone_sections(account).items():
        body.append(f'  <section name="{xml_escape(section)}">')
        body += [
            f'    <entry name="{xml_escape(key)}" overwrite="true">{xml_escape(value)}</entry>'
            for key, value in entries.items()
        ]
        body.append("  </section>")
    return (
        "\n".join(
            [
                '<?xml version="1.0" encoding="UTF-8"?>',
                "<!-- Linphone settings written by asterisk-lab. To import, point Linphone's remote"
                " provisioning (the assistant's Fetch remote configuration, or config-uri in [misc]"
                " of linphonerc) at this file as a file:// URL, or at a copy served over HTTPS. -->",
                f'<config xmlns="{LINPHONE_NAMESPACE}">',
                *body,
                "</config>",
            ]
        )
        + "\n"
    )


def _baresip_reads(text: str) -> tuple[str, int]:
    """What msg_param_decode takes as a value from the start of `text` (the text right after
    `name=`), and how many characters of `text` that used. Its pattern's tail,
    `=[ \\t\\r\\n]*[~ \\t\\r\\n;]+` in re_regex (re, src/fmt/regex.c): white space skipped, then
    characters up to a space, tab, line end or `;`, where `\\` takes the next character, a
    `"` opens or closes a quoted run that takes anything, both kept; a value with a `"` at
    each end loses them."""
    i = 0
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    start, quoted, escaped = i, False, False
    while i < len(text):
        c = text[i]
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif not quoted and c in " \t\r\n;":
            break
        i += 1
    value = text[start:i]
    if len(value) > 1 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return value, i


def _baresip_value(value: str) -> str | None:
    """`value` as an account line's parameter value that baresip reads back exactly and that
    ends where it is written (bare, else in double quotes), or None when neither does."""
    if ";" in value:
        return None
    for written in (value, f'"{value}"'):
        if _baresip_reads(written + ";") == (value, len(written)):
            return written
    return None


def _baresip_line(account: Account) -> str:
    codecs = ",".join(_phone_codecs(account, "baresip"))
    password = _baresip_value(account.secret)
    if password is None:
        raise ValueError(baresip_problems(account)[0])
    # auth_pass last: nothing of ours follows the one value that may hold quotes.
    return (
        f"<sip:{account.name}@{account.hostport};transport=udp>"
        f";audio_codecs={codecs};auth_user={account.name};auth_pass={password}"
    )


def baresip_accounts(account: Account) -> str:
    """A baresip accounts file: comments (lines starting with #), then the account line."""
    voicemail = (
        f"# Voicemail: dial {account.voicemail} (baresip has no setting for a voicemail number).\n"
        if account.voicemail
        else ""
    )
    return (
        f"# baresip account of {account.name} ({account.pod}), written by asterisk-lab.\n"
        "# Use this file as ~/.baresip/accounts, or copy its last line into yours.\n"
        f"{voicemail}{_baresip_line(account)}\n"
    )


def sip_uri(account: Account) -> str:
    """The account as one SIP URI with its password (RFC 3261 userinfo `user:password`),
    port and transport: what the card's QR code holds. Each character the grammar reserves
    in a password is percent-escaped (UTF-8), so a decoder gives the secret back exactly."""
    password = quote(account.secret, safe="-_.!~*'()&=+$,")
    return f"sip:{account.name}:{password}@{account.hostport};transport=udp"


# Why each phone's file could not hold an account's values exactly.
_PHONE_PROBLEMS = {"MicroSIP": microsip_problems, "Linphone": linphone_problems, "baresip": baresip_problems}


def writable_phones(account: Account) -> dict[str, str]:
    """{phone: kind of file} of the phones whose file holds this account exactly. A secret
    the lab accepts but one format cannot carry (a ';' for baresip) leaves that phone out:
    its student types the secret from the card instead."""
    if _common_problems(account):
        return {}
    return {phone: kind for phone, kind in KINDS.items() if not _PHONE_PROBLEMS[phone](account)}


def lab_phone_files(
    description: Mapping[str, Any], pod: str, addresses: Mapping[str, str], secrets: Mapping[str, Any]
) -> dict[str, str]:
    """The pod's phone files, {"<user>.<kind>": content}, for the phones that can read each
    account back exactly (writable_phones; lab_phone_problems says why the others cannot)."""
    writers = {"MicroSIP": microsip_ini, "Linphone": linphone_xml, "baresip": baresip_accounts}
    return {
        f"{account.name}.{kind}": writers[phone](account)
        for account in _accounts(description, pod, addresses, secrets)
        for phone, kind in writable_phones(account).items()
    }


def qr_code(account: Account) -> Any:
    """The account's QR code (a segno QRCode: never a Micro QR, which phone cameras skip)."""
    try:
        import segno
    except ImportError as error:  # pragma: no cover - the venv has it (requirements.txt)
        raise ValueError("the QR codes need segno: pip install -r requirements.txt") from error
    return segno.make(sip_uri(account), error="m", micro=False)


def qr_svg(account: Account) -> str:
    """The QR code as inline SVG (one path; no text, no link), for a self-contained card:
    sized by its viewBox, so that the card's CSS sets its printed size."""
    return qr_code(account).svg_inline(scale=1, border=4, omitsize=True)


def lab_phone_card(
    description: Mapping[str, Any],
    pod: str,
    addresses: Mapping[str, str],
    secrets: Mapping[str, Any],
    prefix: str,
) -> dict[str, dict[str, Any]]:
    """What the card shows of each student's phone settings, by user: `files`, {phone: file
    name} (each name `prefix`-<user>.<kind>), and `qr_svg`, the QR code of sip_uri.

    The QR code holds the account's SIP URI rather than a Linphone remote-provisioning link:
    such a link must name an HTTP server that hands each phone its secret, and the lab serves
    nothing (its files stay on the instructor's machine, mode 0600), while a URI is the
    account itself: any QR reader shows its address, user, password, port and transport.
    """
    return {
        account.name: {
            "files": {
                phone: f"{prefix}-{account.name}.{kind}" if phone in writable_phones(account) else None
                for phone, kind in KINDS.items()
            },
            "qr_svg": qr_svg(account),
        }
        for account in _accounts(description, pod, addresses, secrets)
    }


# ---------------------------------------------------------------------------- the class


def _pods(
    pods: Mapping[str, Any], plan: Mapping[str, Any], hosts: Mapping[str, Any]
) -> list[tuple[str, Mapping[str, Any], Mapping[str, str], Mapping[str, Any]]]:
    """(pod, description, addresses, secrets) of each pod with a PBX, as its first PBX sees
    them: the same values the card task reads (playbooks/phone-card.yml)."""
    return [
        (pod, plan[entry["first"]]["description"], entry["addresses"], hosts[entry["first"]]["secrets"])
        for pod, entry in pods.items()
        if entry.get("first")
    ]


def lab_class_phone_problems(
    pods: Mapping[str, Any], plan: Mapping[str, Any], hosts: Mapping[str, Any]
) -> list[str]:
    """lab_phone_problems of every pod (lab_pods' `pods`, lab_class_plan, lab_host_views)."""
    return [
        problem
        for pod, description, addresses, secrets in _pods(pods, plan, hosts)
        for problem in lab_phone_problems(description, pod, addresses, secrets)
    ]


def lab_class_phone_files(
    pods: Mapping[str, Any], plan: Mapping[str, Any], hosts: Mapping[str, Any]
) -> list[dict[str, str]]:
    """Every pod's phone files as a list to loop over: {pod, name, content}."""
    return [
        {"pod": pod, "name": name, "content": content}
        for pod, description, addresses, secrets in _pods(pods, plan, hosts)
        for name, content in lab_phone_files(description, pod, addresses, secrets).items()
    ]


def lab_class_phone_cards(
    pods: Mapping[str, Any], plan: Mapping[str, Any], hosts: Mapping[str, Any], prefixes: Mapping[str, str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """lab_phone_card of every pod, by pod; `prefixes` gives each pod's file-name prefix
    (lab_pod_files_prefix's base name)."""
    return {
        pod: lab_phone_card(description, pod, addresses, secrets, prefixes[pod])
        for pod, description, addresses, secrets in _pods(pods, plan, hosts)
    }


class FilterModule:
    """Students' phone settings: files to import and the card's QR codes."""

    def filters(self) -> dict[str, Any]:
        return {
            "lab_phone_problems": lab_phone_problems,
            "lab_phone_files": lab_phone_files,
            "lab_class_phone_problems": lab_class_phone_problems,
            "lab_class_phone_files": lab_class_phone_files,
            "lab_class_phone_cards": lab_class_phone_cards,
        }
