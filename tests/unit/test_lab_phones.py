"""Each student's phone files (plugins/filter/lab_phones.py), read back the way each phone reads them.

- MicroSIP: Python's configparser (no interpolation, `=` only, full-line `;` comments), then
  what GetPrivateProfileString does to a value on top of it (one pair of matching quotes
  around it dropped: Wine's PROFILE_CopyEntry, dlls/kernel32/profile.c).
- Linphone: xml.etree, then what coreapi/xml2lpc.c keeps (each entry's text under its
  section, by local name), then linphonerc's `key=value` line (coreapi/lpconfig.c); and
  lxml, that is libxml2, the parser and schema validator Linphone itself uses.
- baresip: a port of re_regex (baresip/re, src/fmt/regex.c) running the very expressions of
  conf_parse (baresip, src/conf.c), sip_addr_decode (re, src/sip/addr.c) and
  msg_param_decode (re, src/msg/param.c) on the account line, as account_alloc
  (baresip, src/account.c) does.
- The QR code: a PNG rendered by segno, decoded by zxing-cpp (the image passed as a Pillow
  image: zxing-cpp needs Pillow or numpy for that, Pillow is the smaller), and the URI read
  with RFC 3261's grammar.

The last tests run the real playbooks (validate.yml, phone-card.yml) on a throw-away inventory.
"""

from __future__ import annotations

import configparser
import importlib.util
import io
import os
import secrets as random_secrets
import stat
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import segno
import yaml
import zxingcpp
from lxml import etree
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "filter" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as Ansible's plugin loader does: dataclasses look it up there
    spec.loader.exec_module(module)
    return module


lab_phones, lab_cards, lab_view = _load("lab_phones"), _load("lab_cards"), _load("lab_view")

POD = "pod07"
ADDRESSES = {"vm-a": "10.0.7.165", "vm-b": "10.0.7.166"}
# Every character XML, ini files, baresip's account line, URIs and Jinja treat specially, in
# a shape every phone can carry: no `;`, balanced double quotes, no trailing backslash.
NASTY = "<&\"'{{ d }} %41\"#x=y\\z>"
# The lab's own example of a secret it allows; baresip's line cannot hold its `;`.
LAB_EXAMPLE = "a;b#c{{ d }}'e\"f\\g"

# Secrets and what each phone does with them: True, read back exactly; else the refusal
# names the user and this phrase.
SECRETS = {
    "generated": (random_secrets.token_urlsafe(18), True, True, True),
    "nasty": (NASTY, True, True, True),
    "lab example": (LAB_EXAMPLE, True, True, "holds a semicolon"),
    "spaces": ("pass word with spaces", True, True, True),
    "single quotes at both ends": ("'quoted both ends'", True, True, True),
    "double quotes at both ends": ('"quoted both ends"', True, True, "cannot read the secret back"),
    "one double quote": ('half"quoted', True, True, "cannot read the secret back"),
    "trailing backslash": ("ends-with\\", True, True, "cannot read the secret back"),
    "equals and hash": ("=#[Account2]=x", True, True, True),
    "not ascii": ("mot-de-passe-été", "outside ASCII", True, True),
    "too long": ("x" * 1100, "longer than", True, "longer than"),
}


@pytest.fixture
def lab() -> dict[str, Any]:
    return lab_view.lab_description({"lab_provider_address": "sip.example.test"})


def pod_secrets(lab: dict[str, Any], **chosen: str) -> dict[str, dict[str, str]]:
    users = {u["name"]: f"pw-{POD}-{u['name']}-Zq8Kx3" for u in lab["lab_users"]}
    return {"users": {**users, **chosen}, "pins": {u["name"]: "482193" for u in lab["lab_users"]}}


def account(lab: dict[str, Any], name: str = "amine", **chosen: str) -> Any:
    accounts = lab_phones._accounts(lab, POD, ADDRESSES, pod_secrets(lab, **chosen))
    return next(a for a in accounts if a.name == name)


# ------------------------------------------------------------------------------ MicroSIP


def read_microsip(text: str) -> dict[str, dict[str, str]]:
    """What MicroSIP's GetPrivateProfileString calls get from the file, by section and key."""
    parser = configparser.ConfigParser(
        interpolation=None, delimiters=("=",), comment_prefixes=(";",), inline_comment_prefixes=None,
        strict=True, empty_lines_in_values=False,
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys as written
    parser.read_string(text)

    def profile_value(value: str) -> str:  # PROFILE_CopyEntry: one pair of matching quotes
        if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]:
            return value[1:-1]
        return value

    return {s: {k: profile_value(v) for k, v in parser[s].items()} for s in parser.sections()}


def microsip_expected(a: Any, codecs: str = "PCMU/8000/1 PCMA/8000/1") -> dict[str, dict[str, str]]:
    return {
        "Settings": {"accountId": "1", "audioCodecs": codecs},
        "Account1": {
            "label": f"{a.name} ({a.pod})", "server": f"{a.host}:5060", "domain": f"{a.host}:5060",
            "username": a.name, "password": a.secret, "authID": a.name, "displayName": a.name,
            "transport": "udp", "voicemailNumber": "9",
        },
    }


# ------------------------------------------------------------------------------ Linphone

# Linphone publishes lpconfig.xsd (liblinphone, share/xml/lpconfig.xsd; GPL, not shipped by
# Debian's packages), which is not copied here: this schema states its rules, read from it.
# A config holds sections; a section, named (at least one character), holds entries; an
# entry, named likewise, holds text and may say overwrite (a boolean).
LPCONFIG_RULES = b"""<?xml version="1.0"?>
<schema xmlns="http://www.w3.org/2001/XMLSchema" xmlns:lp="http://www.linphone.org/xsds/lpconfig.xsd"
        targetNamespace="http://www.linphone.org/xsds/lpconfig.xsd" elementFormDefault="qualified">
  <simpleType name="name"><restriction base="string"><minLength value="1"/></restriction></simpleType>
  <element name="config">
    <complexType><sequence>
      <element name="section" minOccurs="0" maxOccurs="unbounded">
        <complexType>
          <sequence>
            <element name="entry" minOccurs="0" maxOccurs="unbounded">
              <complexType><simpleContent><extension base="string">
                <attribute name="name" type="lp:name" use="required"/>
                <attribute name="overwrite" type="boolean" default="false"/>
              </extension></simpleContent></complexType>
            </element>
          </sequence>
          <attribute name="name" type="lp:name" use="required"/>
        </complexType>
      </element>
    </sequence></complexType>
  </element>
</schema>
"""


def read_linphone(text: str) -> dict[str, dict[str, str]]:
    """What Linphone keeps of the file: each entry's text under its section (xml2lpc.c takes
    elements by local name, and an entry's first text node), as its linphonerc reads it back
    (lpconfig.c: `key=value`, the value after the first `=`, trailing spaces dropped)."""
    root = ET.fromstring(text)
    assert root.tag == f"{{{lab_phones.LINPHONE_NAMESPACE}}}config"
    config: dict[str, dict[str, str]] = {}
    for section in root:
        entries = config.setdefault(section.attrib["name"], {})
        for entry in section:
            assert entry.tag.endswith("}entry") and len(entry) == 0, "an entry is text only"
            assert entry.attrib.get("overwrite") == "true", "a re-import replaces the old value"
            line = f"{entry.attrib['name']}={entry.text or ''}"
            key, _, value = line.partition("=")
            entries[key] = value.rstrip(" ")
    return config


def linphone_expected(a: Any) -> dict[str, dict[str, str]]:
    codec = {"channels": "1", "enabled": "1", "rate": "8000"}
    return {
        "sip": {"default_proxy": "0"},
        "proxy_0": {
            "reg_identity": f"sip:{a.name}@{a.host}:5060",
            "reg_proxy": f"<sip:{a.host}:5060;transport=udp>",
            "reg_route": f"<sip:{a.host}:5060;transport=udp;lr>",
            "reg_sendregister": "1",
            "voicemail_uri": f"sip:9@{a.host}:5060",
        },
        "auth_info_0": {"username": a.name, "passwd": a.secret},
        "audio_codec_0": {"mime": "PCMU", **codec},
        "audio_codec_1": {"mime": "PCMA", **codec},
    }


# ------------------------------------------------------------------------------- baresip


def re_regex(text: str, expr: str) -> list[str] | None:
    """re_regex (re, src/fmt/regex.c), ported: the captures of `expr`'s character classes at
    the first position of `text` where it matches, or None. Literals match case-blind; a
    class is `[...]` with `^` (not) or `~` (not, where `\\` takes the next character and
    `"` toggles a quoted run that takes anything; a capture quoted at both ends loses the
    quotes), ranges `a-z`, then `*`, `+` or a digit 1-9 (exactly that many). No
    backtracking: each class takes all it can, and a failure starts over one character on."""
    for start in range(len(text)):
        p, captures, ok, i = start, [], True, 0
        while i < len(expr):
            if expr[i] != "[":
                if p >= len(text):
                    return None  # the C code gives up here, without trying further on
                if expr[i].lower() != text[p].lower():
                    ok = False
                    break
                p, i = p + 1, i + 1
                continue
            end = expr.index("]", i + 2)
            body, quantifier, i = expr[i + 1 : end], expr[end + 1], end + 2
            quote_escape = body.startswith("~")
            negate = quote_escape or body.startswith("^")
            body = body[1:] if negate else body
            ranges, j = [], 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    ranges.append((body[j].lower(), body[j + 2].lower()))
                    j += 3
                else:
                    ranges.append((body[j].lower(), body[j].lower()))
                    j += 1
            if quantifier in "*+":
                least, most = (0 if quantifier == "*" else 1), None
            else:
                least = most = int(quantifier)
            taken, quoted, escaped, begin = 0, False, False, p
            while p < len(text) and (most is None or taken < most):
                c = text[p]
                if quote_escape and (escaped or quoted or c in '\\"'):
                    quoted = quoted != (c == '"' and not escaped)  # an escaped quote is just taken
                    escaped = not escaped and c == "\\"
                elif any(lo <= c.lower() <= hi for lo, hi in ranges) == negate:
                    break
                p, taken = p + 1, taken + 1
            capture = text[begin:p]
            if quote_escape and len(capture) > 1 and capture[0] == capture[-1] == '"':
                capture, taken = capture[1:-1], taken - 2
            if taken < least:
                ok = False
                break
            captures.append(capture)
        if ok:
            return captures
    return None


def msg_param_decode(params: str, name: str) -> str | None:
    found = re_regex(params, f";[ \t\r\n]*{name}[ \t\r\n]*=[ \t\r\n]*[~ \t\r\n;]+")
    return found[3] if found else None


def read_baresip(text: str, extra: str = "") -> dict[str, Any]:
    """The account baresip makes of the file: its only line that is not a comment (conf_parse
    skips empty lines and those starting with #), with `baresip -u` parameters appended as
    ua_alloc does, decoded by sip_addr_decode and account_alloc's msg_param_decode calls."""
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    assert len(lines) == 1, lines
    line = lines[0] + (f";{extra}" if extra else "")
    assert len(line.encode()) <= lab_phones.BARESIP_MAX_LINE
    display, _, uri, params = re_regex(line, "[~ \t\r\n<]*[ \t\r\n]*<[^>]+>[^]*")
    return {
        "display": display,
        "uri": uri,
        "params": params,
        "auth_user": msg_param_decode(params, "auth_user"),
        "auth_pass": msg_param_decode(params, "auth_pass"),
        "audio_codecs": msg_param_decode(params, "audio_codecs"),
    }


# Every setting account_alloc and its helpers read (src/account.c): none but ours may appear.
BARESIP_SETTINGS = (
    "regint prio rwait fbregint pubint tcpsrcport regq outbound outbound1 outbound2 sipnat"
    " check_origin mwi call_transfer sip_autoredirect 100rel answermode answerdelay sip_autoanswer"
    " sip_autoanswer_beep dtmfmode uas_user uas_pass inreq_allowed video_codecs mediaenc medianat"
    " catchall autelev_pt audio_source audio_player video_source video_display stunserver stunuser"
    " stunpass cert extra"
).split()


def test_the_regex_port_behaves_as_the_c_code_on_baresips_own_examples() -> None:
    # From docs/examples/accounts: a quoted value keeps its `;`, and loses its quotes.
    params = ';sipnat=outbound;outbound="sip:primary.example.com;transport=tcp";auth_pass=pass'
    assert msg_param_decode(params, "outbound") == "sip:primary.example.com;transport=tcp"
    assert msg_param_decode(params, "auth_pass") == "pass"
    assert msg_param_decode(params, "AUTH_PASS") == "pass", "names match case-blind"
    assert msg_param_decode(params, "regint") is None
    assert msg_param_decode(';auth_pass=a\\ b c', "auth_pass") == "a\\ b", "a backslash takes a space, kept"
    assert msg_param_decode(';auth_pass=a"b c";x=1', "auth_pass") == 'a"b c"'
    assert re_regex("Alice <sip:a@b>;x=1", "[~ \t\r\n<]*[ \t\r\n]*<[^>]+>[^]*") == ["Alice", " ", "sip:a@b", ";x=1"]


def baresip_expected(a: Any, codecs: str = "PCMU/8000/1,PCMA/8000/1") -> dict[str, Any]:
    return {
        "display": "",
        "uri": f"sip:{a.name}@{a.host}:5060;transport=udp",
        "auth_user": a.name,
        "auth_pass": a.secret,
        "audio_codecs": codecs,
    }


# ------------------------------------------------------------------------------- QR code


def decode_qr(qr: Any) -> str:
    """The text a phone's camera reads off the code: a PNG from segno, decoded by zxing-cpp."""
    png = io.BytesIO()
    qr.save(png, kind="png", scale=4, border=4)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.getvalue())))
    assert [b.format for b in found] == [zxingcpp.BarcodeFormat.QRCode]
    return found[0].text


def read_sip_uri(uri: str) -> dict[str, str]:
    """RFC 3261's SIP-URI: sip:user:password@host:port;params, each part unescaped. Neither
    user nor password may hold an unescaped `:` or `@` (19.1.1), so the first of each splits."""
    assert uri.startswith("sip:")
    userinfo, _, rest = uri[4:].partition("@")
    user, _, password = userinfo.partition(":")
    hostport, _, params = rest.partition(";")
    host, _, port = hostport.partition(":")
    return {"user": unquote(user), "password": unquote(password), "host": host, "port": port, "params": params}


# --------------------------------------------------------------------------------- tests


def test_every_phone_reads_exactly_the_labs_values_for_every_student(lab) -> None:
    files = lab_phones.lab_phone_files(lab, POD, ADDRESSES, pod_secrets(lab))
    kinds = ("microsip.ini", "linphone.xml", "baresip-accounts")
    assert sorted(files) == sorted(f"{u['name']}.{k}" for u in lab["lab_users"] for k in kinds)
    for user in lab["lab_users"]:
        a = account(lab, user["name"])
        assert a.host == ADDRESSES[user["host"]], "each student registers to the PBX that serves them"
        assert read_microsip(files[f"{a.name}.microsip.ini"]) == microsip_expected(a)
        assert read_linphone(files[f"{a.name}.linphone.xml"]) == linphone_expected(a)
        assert {k: v for k, v in read_baresip(files[f"{a.name}.baresip-accounts"]).items() if k != "params"} == (
            baresip_expected(a)
        )
        assert "Voicemail: dial 9" in files[f"{a.name}.baresip-accounts"]


@pytest.mark.parametrize(("secret", "microsip", "linphone", "baresip"), SECRETS.values(), ids=SECRETS.keys())
def test_each_secret_reads_back_exactly_or_is_refused_by_name(lab, secret, microsip, linphone, baresip) -> None:
    a = account(lab, amine=secret)
    for expected, problems, read_password in (
        (microsip, lab_phones.microsip_problems(a),
         lambda: read_microsip(lab_phones.microsip_ini(a))["Account1"]["password"]),
        (linphone, lab_phones.linphone_problems(a),
         lambda: read_linphone(lab_phones.linphone_xml(a))["auth_info_0"]["passwd"]),
        (baresip, lab_phones.baresip_problems(a),
         lambda: read_baresip(lab_phones.baresip_accounts(a))["auth_pass"]),
    ):
        if expected is True:
            assert problems == []
            assert read_password() == secret
        else:
            assert len(problems) == 1 and expected in problems[0], problems
            assert problems[0].startswith(f"pod {POD}: users.amine: ")
            assert secret not in problems[0]
    assert read_sip_uri(decode_qr(lab_phones.qr_code(a)))["password"] == secret


def test_the_linphone_file_is_valid_against_the_lpconfig_rules_as_libxml2_reads_it(lab) -> None:
    schema = etree.XMLSchema(etree.fromstring(LPCONFIG_RULES))
    for secret in (NASTY, LAB_EXAMPLE, "a]]>b&#38;c"):
        text = lab_phones.linphone_xml(account(lab, amine=secret))
        document = etree.fromstring(text.encode())  # libxml2, as xml2lpc_set_xml_string
        assert schema.validate(document), schema.error_log
        passwd = document.find("{*}section[@name='auth_info_0']/{*}entry[@name='passwd']")
        assert passwd.text == secret, "the entry's first text node is the whole secret"


def test_baresip_takes_the_secret_whole_and_no_setting_from_it(lab) -> None:
    for secret in (NASTY, "sp ace", "'quoted both ends'", "x=1,y>z"):
        text = lab_phones.baresip_accounts(account(lab, amine=secret))
        params = read_baresip(text)["params"]
        assert [name for name in BARESIP_SETTINGS if msg_param_decode(params, name) is not None] == []
        # `baresip -u` appends parameters after the line: they still read as given.
        read = read_baresip(text, extra="regint=0;answermode=auto")
        assert (read["auth_pass"], msg_param_decode(read["params"], "regint")) == (secret, "0")
        assert msg_param_decode(read["params"], "answermode") == "auto"


def test_pcmu_comes_first_and_each_phone_gets_the_labs_codecs_in_its_own_names(lab) -> None:
    lab["lab_codecs"] = ["alaw", "g722", "ulaw", "opus", "gsm", "g726"]
    a = account(lab)
    ini = read_microsip(lab_phones.microsip_ini(a))
    assert ini["Settings"]["audioCodecs"] == "PCMU/8000/1 PCMA/8000/1 G722/16000/1 opus/48000/2 GSM/8000/1"
    xml = read_linphone(lab_phones.linphone_xml(a))
    codecs = [(xml[s]["mime"], xml[s]["rate"], xml[s]["channels"]) for s in sorted(xml) if s.startswith("audio_codec_")]
    assert codecs == [("PCMU", "8000", "1"), ("PCMA", "8000", "1"), ("G722", "8000", "1"),
                      ("opus", "48000", "2"), ("GSM", "8000", "1")]
    assert read_baresip(lab_phones.baresip_accounts(a))["audio_codecs"] == (
        "PCMU/8000/1,PCMA/8000/1,G722/16000/1,opus/48000/2"
    ), "baresip has no GSM module; g726 no phone here offers"


def test_a_lab_whose_codecs_a_phone_lacks_is_refused_naming_the_setting(lab) -> None:
    lab["lab_codecs"] = ["gsm"]
    problems = lab_phones.lab_phone_problems(lab, POD, ADDRESSES, pod_secrets(lab))
    assert problems == [f"pod {POD}: lab_codecs: baresip offers none of gsm; allow one of ulaw, alaw, g722, opus"]


def test_a_lab_without_voicemail_writes_no_voicemail_number(lab) -> None:
    del lab["lab_voicemail_extension"]
    a = account(lab)
    assert "voicemailNumber" not in read_microsip(lab_phones.microsip_ini(a))["Account1"]
    assert "voicemail_uri" not in read_linphone(lab_phones.linphone_xml(a))["proxy_0"]
    assert "Voicemail" not in lab_phones.baresip_accounts(a)


def test_a_registrar_on_another_port_is_in_every_file(lab) -> None:
    lab["lab_sip_port"] = 5070
    a = account(lab, "chhinyleboss")
    assert read_microsip(lab_phones.microsip_ini(a))["Account1"]["server"] == "10.0.7.166:5070"
    assert read_linphone(lab_phones.linphone_xml(a))["proxy_0"]["reg_proxy"] == "<sip:10.0.7.166:5070;transport=udp>"
    assert read_baresip(lab_phones.baresip_accounts(a))["uri"] == "sip:chhinyleboss@10.0.7.166:5070;transport=udp"
    assert read_sip_uri(lab_phones.sip_uri(a))["port"] == "5070"


@pytest.mark.parametrize("secret", [random_secrets.token_urlsafe(18), NASTY], ids=["normal", "nasty"])
def test_each_qr_code_decodes_to_the_students_account(lab, secret) -> None:
    a = account(lab, amine=secret)
    text = decode_qr(lab_phones.qr_code(a))
    assert text == lab_phones.sip_uri(a)
    assert read_sip_uri(text) == {
        "user": "amine", "password": secret, "host": "10.0.7.165", "port": "5060", "params": "transport=udp",
    }
    assert lab_phones.qr_code(a).version is not None and not lab_phones.qr_code(a).is_micro
    # The card shows that very code.
    shown = lab_phones.lab_phone_card(lab, POD, ADDRESSES, pod_secrets(lab, amine=secret), "lab-pod07")
    assert shown["amine"]["qr_svg"] == lab_phones.qr_code(a).svg_inline(scale=1, border=4, omitsize=True)
    assert shown["amine"]["files"] == {
        "MicroSIP": "lab-pod07-amine.microsip.ini",
        "Linphone": "lab-pod07-amine.linphone.xml",
        "baresip": "lab-pod07-amine.baresip-accounts",
    }


def test_a_file_a_phone_cannot_read_back_is_left_out_naming_the_user_never_the_secret(lab) -> None:
    chosen = {"amine": LAB_EXAMPLE, "kaiba": "mot-de-passe-été", "makuba": "tab\there"}
    problems = lab_phones.lab_phone_problems(lab, POD, ADDRESSES, pod_secrets(lab, **chosen))
    assert [p.split(":")[1].strip() for p in problems] == ["users.amine", "users.makuba", "users.kaiba"]
    assert "control character" in problems[1]
    assert not [s for s in chosen.values() for p in problems if s in p]
    files = lab_phones.lab_phone_files(lab, POD, ADDRESSES, pod_secrets(lab, **chosen))
    # amine's ';' only baresip cannot carry; kaiba's accent only MicroSIP; makuba's tab none.
    assert {name for name in files if name.startswith(("amine.", "kaiba.", "makuba."))} == {
        f"amine.{lab_phones.KINDS['MicroSIP']}", f"amine.{lab_phones.KINDS['Linphone']}",
        f"kaiba.{lab_phones.KINDS['Linphone']}", f"kaiba.{lab_phones.KINDS['baresip']}",
    }
    card = lab_phones.lab_phone_card(lab, POD, ADDRESSES, pod_secrets(lab, **chosen), "classroom-pod1")
    assert card["amine"]["files"]["baresip"] is None
    assert card["amine"]["files"]["MicroSIP"] == f"classroom-pod1-amine.{lab_phones.KINDS['MicroSIP']}"


def test_a_missing_secret_or_address_is_named(lab) -> None:
    secrets = pod_secrets(lab)
    del secrets["users"]["kaiba"]
    assert lab_phones.lab_phone_problems(lab, POD, ADDRESSES, secrets) == [
        f"pod {POD}: no SIP password for user kaiba in secrets.users"
    ]
    assert "vm-b" in lab_phones.lab_phone_problems(lab, POD, {"vm-a": "10.0.7.165"}, pod_secrets(lab))[0]


def test_the_class_functions_read_each_pods_first_pbx(lab) -> None:
    pods = {
        "pod1": {"first": "vm-a", "addresses": {"vm-a": "10.0.1.1", "vm-b": "10.0.1.2"}},
        "pod2": {"first": "pod2-vm-a", "addresses": {"vm-a": "10.0.2.1", "vm-b": "10.0.2.2"}},
        "empty": {"first": "", "addresses": {}},
    }
    plan = {"vm-a": {"description": lab}, "pod2-vm-a": {"description": lab}}
    hosts = {"vm-a": {"secrets": pod_secrets(lab)}, "pod2-vm-a": {"secrets": pod_secrets(lab, amine=LAB_EXAMPLE)}}
    assert lab_phones.lab_class_phone_problems(pods, plan, hosts) == lab_phones.lab_phone_problems(
        lab, "pod2", pods["pod2"]["addresses"], hosts["pod2-vm-a"]["secrets"]
    )
    hosts["pod2-vm-a"]["secrets"] = pod_secrets(lab, amine=NASTY)
    assert lab_phones.lab_class_phone_problems(pods, plan, hosts) == []
    files = lab_phones.lab_class_phone_files(pods, plan, hosts)
    assert len(files) == 2 * 5 * 3 and {f["pod"] for f in files} == {"pod1", "pod2"}
    chhinyleboss = next(f for f in files if f["pod"] == "pod2" and f["name"] == "chhinyleboss.baresip-accounts")
    assert read_baresip(chhinyleboss["content"])["uri"] == "sip:chhinyleboss@10.0.2.2:5060;transport=udp"
    cards = lab_phones.lab_class_phone_cards(pods, plan, hosts, {"pod1": "c-pod1", "pod2": "c-pod2"})
    assert set(cards) == {"pod1", "pod2"}
    assert cards["pod2"]["amine"]["files"]["MicroSIP"] == "c-pod2-amine.microsip.ini"


def lab_files(tmp_path: Path, files: dict[str, str], check_mode: bool = False, **options: str) -> dict:
    """playbooks/library/lab_files.py, run as Ansible runs a module."""
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"files": files, "_ansible_check_mode": check_mode,
                                                             **options}}))
    done = subprocess.run([sys.executable, str(ROOT / "playbooks" / "library" / "lab_files.py"), str(arguments)],
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def test_phone_files_are_written_0600_once_and_rewritten_when_their_bytes_or_mode_differ(tmp_path: Path) -> None:
    path = str(tmp_path / "x.ini")
    assert lab_files(tmp_path, {path: "a{{ b }}\n"}, check_mode=True)["changed"]
    assert not Path(path).exists()
    assert lab_files(tmp_path, {path: "a{{ b }}\n"})["written"] == [path]
    assert Path(path).read_text() == "a{{ b }}\n" and Path(path).stat().st_mode & 0o777 == 0o600
    assert not lab_files(tmp_path, {path: "a{{ b }}\n"})["changed"]
    Path(path).chmod(0o644)
    assert lab_files(tmp_path, {path: "a{{ b }}\n"})["changed"] and Path(path).stat().st_mode & 0o777 == 0o600
    result = lab_files(tmp_path, {path: "a{{ b }}"})
    assert result["changed"] and Path(path).read_text() == "a{{ b }}"
    assert "a{{ b }}" not in json.dumps(result)  # the content is never logged


def test_the_credentials_folder_is_made_private_in_the_same_run(tmp_path: Path) -> None:
    # The credentials file's folder, as the file module made it: missing parents too, and an
    # existing folder's mode set back to 0700.
    folder = tmp_path / "credentials" / "class"
    path = str(folder / "classroom.yml")
    planned = lab_files(tmp_path, {path: "pods: {}\n"}, check_mode=True, folder_mode="0700")
    assert planned["changed"] and planned["folders"] == [str(folder)] and not folder.exists()
    assert lab_files(tmp_path, {path: "pods: {}\n"}, folder_mode="0700")["folders"] == [str(folder)]
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    assert not lab_files(tmp_path, {path: "pods: {}\n"}, folder_mode="0700")["changed"]
    folder.chmod(0o755)
    again = lab_files(tmp_path, {path: "pods: {}\n"}, folder_mode="0700")
    assert again["changed"] and again["written"] == [] and stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_on_the_controller_the_files_are_written_without_a_module_run(tmp_path: Path) -> None:
    # playbooks/action_plugins/lab_files.py: the same writes, in-process; check mode writes nothing.
    path = tmp_path / "private" / "card.html"
    play = tmp_path / "playbooks" / "play.yml"
    play.parent.mkdir()
    for kind in ("library", "action_plugins"):
        (play.parent / kind).symlink_to(ROOT / "playbooks" / kind)
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"lab_files": {"files": {str(path): "{{ '<p>' }}{{ content }}\n"}, "mode": "0600", "folder_mode": "0700"},
         "vars": {"content": "x"}, "delegate_to": "localhost", "become": False}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_PIPELINING="0")

    def playbook(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                               "-e", f"ansible_python_interpreter={sys.executable}", "-vvv", *options, str(play)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    checked = playbook("--check")
    assert checked.returncode == 0 and "changed=1" in checked.stdout, checked.stdout[-2000:]
    assert not path.parent.exists()
    done = playbook()
    assert done.returncode == 0 and "changed=1" in done.stdout, done.stdout[-2000:]
    assert path.read_text() == "<p>x\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "AnsiballZ_lab_files" not in done.stdout + checked.stdout
    assert "changed=0" in playbook().stdout


def test_ansible_finds_the_filters() -> None:
    assert lab_phones.FilterModule().filters() == {
        "lab_phone_problems": lab_phones.lab_phone_problems,
        "lab_phone_files": lab_phones.lab_phone_files,
        "lab_class_phone_problems": lab_phones.lab_class_phone_problems,
        "lab_class_phone_files": lab_phones.lab_class_phone_files,
        "lab_class_phone_cards": lab_phones.lab_class_phone_cards,
    }


# --------------------------------------------------------------- through the real playbooks


def run_phone_cards(tmp_path: Path, users: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """validate.yml then phone-card.yml (the plays site.yml runs on the controller only), on
    an inventory of one pod whose hosts are never contacted; every secret chosen in a Vault
    file, `users` replacing some."""
    names = ("amine", "chhiny", "makuba", "kaiba", "chhinyleboss")
    chosen = {"users": {n: f"{n}-Chosen-Secret-7Q2" for n in names},
              "trunks": {t: f"{t}-Chosen-Secret-7Q2" for t in ("trunk_A_vers_B", "siptrunk")},
              "pins": {n: "48213" for n in names}}
    chosen["users"].update(users)
    bin_dir = Path(sys.executable).parent
    (tmp_path / "vault-password").write_text("correct horse battery staple\n")
    (tmp_path / "chosen.yml").write_text(yaml.safe_dump({"pods": {"pod1": chosen}}))
    subprocess.run([str(bin_dir / "ansible-vault"), "encrypt", "--vault-password-file", str(tmp_path / "vault-password"),
                    str(tmp_path / "chosen.yml")], check=True, capture_output=True)
    inventory = {"all": {"vars": {"lab_credentials_file": str(tmp_path / "classroom.yml"),
                                  "lab_secrets_file": str(tmp_path / "chosen.yml"),
                                  "lab_generate_secrets": False, "ansible_connection": "local"},
                         "children": {"pbx": {"hosts": {"vm-a": {"lab_address": "192.0.2.153"},
                                                        "vm-b": {"lab_address": "192.0.2.154"}}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "cards.yml").write_text(yaml.safe_dump([
        {"name": "Check the lab", "ansible.builtin.import_playbook": str(ROOT / "playbooks" / "validate.yml")},
        {"name": "Write the cards", "ansible.builtin.import_playbook": str(ROOT / "playbooks" / "phone-card.yml")},
    ]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(bin_dir / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
                           "--vault-password-file", str(tmp_path / "vault-password"), str(tmp_path / "cards.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_playbook_writes_every_students_files_0600_with_the_secret_verbatim(tmp_path: Path) -> None:
    done = run_phone_cards(tmp_path, {"amine": NASTY})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert NASTY not in done.stdout + done.stderr and "{{ d }}" not in done.stdout + done.stderr
    written = {p.name: p for p in tmp_path.iterdir()}
    phone_files = sorted(n for n in written if n.startswith("classroom-pod1-") and not n.endswith(".html"))
    assert phone_files == sorted(f"classroom-pod1-{u}.{k}" for u in ("amine", "chhiny", "makuba", "kaiba",
                                 "chhinyleboss") for k in ("microsip.ini", "linphone.xml", "baresip-accounts"))
    for name in [*phone_files, "classroom-pod1.html"]:
        assert stat.S_IMODE(written[name].stat().st_mode) == 0o600, name
    ini = read_microsip(written["classroom-pod1-amine.microsip.ini"].read_text())
    assert ini["Account1"]["password"] == NASTY and ini["Account1"]["server"] == "192.0.2.153:5060"
    assert read_linphone(written["classroom-pod1-amine.linphone.xml"].read_text())["auth_info_0"]["passwd"] == NASTY
    assert read_baresip(written["classroom-pod1-amine.baresip-accounts"].read_text())["auth_pass"] == NASTY
    # Verbatim in the ini and baresip files: Ansible did not template the content again.
    assert NASTY in written["classroom-pod1-amine.microsip.ini"].read_text()
    assert NASTY in written["classroom-pod1-amine.baresip-accounts"].read_text()
    card = written["classroom-pod1.html"].read_text()
    assert "classroom-pod1-amine.linphone.xml" in card and card.count('<svg viewBox="') == 5
    holders = sorted(n for n, p in written.items() if NASTY in p.read_text(errors="replace"))
    assert holders == ["classroom-pod1-amine.baresip-accounts", "classroom-pod1-amine.microsip.ini"], (
        "the Linphone file and the card hold it escaped; the Vault file sealed; no other file at all"
    )
    again = run_phone_cards(tmp_path, {"amine": NASTY})
    assert "changed=0" in again.stdout, again.stdout[-2000:]


def test_the_playbook_leaves_out_a_file_that_cannot_hold_the_secret_and_says_so(tmp_path: Path) -> None:
    done = run_phone_cards(tmp_path, {"amine": LAB_EXAMPLE, "kaiba": 'half"quoted-Secret-1'})
    assert done.returncode == 0, done.stdout[-3000:]
    out = done.stdout.replace("\n        ", " ")
    assert "2 phone file(s) not written; their students type the password from the card:" in out, out[-3000:]
    assert "pod pod1: users.amine: the secret holds a semicolon, which the baresip accounts line cannot" in out
    assert "pod pod1: users.kaiba: baresip cannot read the secret back exactly" in out
    assert LAB_EXAMPLE not in done.stdout + done.stderr and "{{ d }}" not in done.stdout + done.stderr
    written = {p.name for p in tmp_path.iterdir()}
    assert f"classroom-pod1-amine.{lab_phones.KINDS['baresip']}" not in written
    assert f"classroom-pod1-amine.{lab_phones.KINDS['MicroSIP']}" in written
    card = (tmp_path / "classroom-pod1.html").read_text()
    assert "its file cannot hold your password, type it in" in card
