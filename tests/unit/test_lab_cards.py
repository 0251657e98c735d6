"""The pods' cards (plugins/filter/lab_cards.py), read back as a student reads them.

Each card is parsed with the standard library's html.parser: what matters is the text a
browser shows, in the section the student cuts out, not how the source happens to look.
"""

from __future__ import annotations

import copy
import importlib.util
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lab_cards", ROOT / "plugins" / "filter" / "lab_cards.py")
lab_cards = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lab_cards)
_view_spec = importlib.util.spec_from_file_location("lab_view", ROOT / "plugins" / "filter" / "lab_view.py")
lab_view = importlib.util.module_from_spec(_view_spec)
_view_spec.loader.exec_module(lab_view)

PROVIDER = {"host": "sip.example.test", "port": 5600}
POD07 = {"vm-a": "10.0.7.165", "vm-b": "10.0.7.166"}
POD08 = {"vm-a": "10.0.7.167", "vm-b": "10.0.7.168"}
NASTY = "<&\"'{{ lab_secrets }}{% raw %}</dd><script>x</script>"


class Card(HTMLParser):
    """What a browser shows of a card: sections' fields and text, table rows, tags used."""

    CAPTURED = {"title", "h1", "h2", "dt", "dd", "td", "th", "style"}

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.fields: dict[str, dict[str, str]] = {}  # section id -> {label (dt): value (dd)}
        self.section_text: dict[str, str] = {}
        self.rows: list[list[str]] = []
        self.captured: dict[str, list[str]] = {tag: [] for tag in self.CAPTURED}
        self.text = ""
        self._section: str | None = None
        self._buffer: list[str] | None = None
        self._label = ""
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "section":
            self._section = dict(attrs).get("id") or ""
            self.fields[self._section], self.section_text[self._section] = {}, ""
        elif tag == "tr":
            self.rows.append([])
        if tag in self.CAPTURED:
            self._buffer = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        if tag not in self.CAPTURED or self._buffer is None:
            return
        content, self._buffer = "".join(self._buffer), None
        self.captured[tag].append(content)
        if tag == "dt":
            self._label = content
        elif tag == "dd" and self._section is not None:
            self.fields[self._section][self._label] = content
        elif tag == "td":
            self.rows[-1].append(content)

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._section is not None:
            self.section_text[self._section] += data
        if self._buffer is not None:
            self._buffer.append(data)

    def row(self, dial: str) -> list[str]:
        """The services or users row whose Dial cell is `dial`."""
        matches = [r for r in self.rows if r and r[0] == dial]
        assert len(matches) == 1, f"one row for {dial!r}, found {matches}"
        return matches[0]


@pytest.fixture
def lab() -> dict[str, Any]:
    # The reference lab: every setting's declared default, with a provider of the tests' own.
    return lab_view.lab_description({"lab_provider_address": PROVIDER["host"]})


def pod_secrets(lab: dict[str, Any], pod: str) -> dict[str, dict[str, str]]:
    """Secrets unique to `pod`, as the credentials file of that pod would hold them."""
    return {
        "users": {u["name"]: f"pw-{pod}-{u['name']}-Zq8" for u in lab["lab_users"]},
        "pins": {u["name"]: f"{n}{n}{pod[-1]}{n}90" for n, u in enumerate(lab["lab_users"], 1)},
        "trunks": {t["name"]: f"trunk-{pod}-{t['name']}-Kx3" for t in lab["lab_trunks"]},
    }


def card(
    lab: dict[str, Any],
    pod: str = "pod07",
    addresses: dict[str, str] = POD07,
    secrets: dict[str, Any] | None = None,
) -> tuple[str, Card]:
    page = lab_cards.lab_pod_card(lab, pod, addresses, secrets or pod_secrets(lab, pod), lab_name="tp3")
    return page, Card(page)


def test_every_student_reads_their_own_login_in_their_own_section(lab) -> None:
    secrets = pod_secrets(lab, "pod07")
    _, parsed = card(lab, secrets=secrets)
    for user in lab["lab_users"]:
        name = user["name"]
        fields = parsed.fields[f"user-{name}"]
        assert name in parsed.section_text[f"user-{name}"]
        assert fields["Extension"] == user["extension"]
        assert f"{POD07[user['host']]}:5060 ({user['host']})" in fields["Register to"]
        assert fields["SIP user name"] == name
        assert fields["SIP password"] == secrets["users"][name]
        assert fields["Voicemail PIN"] == secrets["pins"][name]
        assert fields["Voicemail"] == f"dial 9 from your phone, mailbox {user['extension']}"
        others = [secrets["users"][o["name"]] for o in lab["lab_users"] if o["name"] != name]
        assert not any(other in parsed.section_text[f"user-{name}"] for other in others)


def test_chhinyleboss_registers_to_vm_b_of_the_pod_and_amine_to_vm_a(lab) -> None:
    _, parsed = card(lab)
    assert parsed.fields["user-chhinyleboss"]["Register to"].startswith("10.0.7.166:5060 (vm-b)")
    assert parsed.fields["user-amine"]["Register to"].startswith("10.0.7.165:5060 (vm-a)")
    assert (
        "Follow-me" not in parsed.fields["user-amine"]
        and "6004 (kaiba)" in parsed.fields["user-makuba"]["Follow-me"]
    )


def test_a_secret_with_html_and_jinja_characters_reads_back_exactly(lab) -> None:
    secrets = pod_secrets(lab, "pod07")
    secrets["users"]["amine"] = NASTY
    secrets["pins"]["kaiba"] = "12<&\"'34"
    page, parsed = card(lab, secrets=secrets)
    assert parsed.fields["user-amine"]["SIP password"] == NASTY
    assert parsed.fields["user-kaiba"]["Voicemail PIN"] == "12<&\"'34"
    assert NASTY not in page and "<&" not in page, "a secret must be escaped in the source"
    assert not [mark for mark in ("{{", "{%", "{#") if mark in page], "no Jinja markup in the page"
    assert [tag for tag, _ in parsed.tags].count("script") == 0


def test_names_are_text_not_markup_even_in_attributes(lab) -> None:
    lab["lab_users"][0]["name"] = "am\"ine' <i>"  # a name also lands in the section's id
    page = lab_cards.lab_pod_card(lab, "<b>pod9</b>", POD07, pod_secrets(lab, "pod9"), lab_name="tp&3")
    parsed = Card(page)
    assert parsed.captured["h1"] == ["tp&3 — <b>pod9</b>"]
    assert "tp&3" in parsed.captured["title"][0]
    assert not {"b", "i"} & {tag for tag, _ in parsed.tags}
    assert parsed.fields["user-am\"ine' <i>"]["SIP user name"] == "am\"ine' <i>"


def test_no_trunk_secret_and_no_other_pods_value_is_on_the_card(lab) -> None:
    lab_cards.lab_pod_card(lab, "pod08", POD08, pod_secrets(lab, "pod08"))  # rendered first: no carry-over
    page, parsed = card(lab)
    own, other = pod_secrets(lab, "pod07"), pod_secrets(lab, "pod08")
    forbidden = [
        *own["trunks"].values(),
        *other["users"].values(),
        *other["pins"].values(),
        *other["trunks"].values(),
        *POD08.values(),
    ]
    for value in forbidden:
        assert value not in page and value not in parsed.text, value
    assert "pod08" not in page


def test_the_card_tells_what_to_dial_and_from_which_phones(lab) -> None:
    _, parsed = card(lab)
    assert parsed.row("600")[2] == "vm-a, vm-b" and "echo" in parsed.row("600")[1]
    assert "voicemail" in parsed.row("9")[1] and parsed.row("9")[2] == "vm-a, vm-b"
    assert (
        parsed.row("900")[1].startswith("rings chhinyleboss")
        and parsed.row("900")[2] == "vm-b; vm-a across trunk_A_vers_B"
    )
    assert parsed.row("100")[2] == "vm-a; vm-b across trunk_A_vers_B"
    assert "auto-attendant" in parsed.row("7")[1] and "chhiny (6002)" in parsed.row("7")[1]
    ivr = parsed.row("8")[1]
    assert "1: amine (100)" in ivr and "2: chhiny (6002)" in ivr and "3: kaiba (6004)" in ivr
    assert "music on hold for 30 s" in parsed.row("8100")[1]
    assert "4menu1" in parsed.row("4<name>")[1]
    assert "conference room main" in parsed.row("6")[1] and "1 mute/unmute" in parsed.row("6")[1]
    assert "701-720" in parsed.row("700")[1] and "45 s" in parsed.row("701-720")[1]
    assert "pickup group" in parsed.row("*8")[1]
    assert "support" in parsed.row("7001")[1] and "chhiny, makuba" in parsed.row("7001")[1]
    assert "amine, kaiba" in parsed.row("7002")[1]
    assert [parsed.row(code)[1].split(":")[0] for code in ("*71", "*72", "*73", "*74")] == ["agent"] * 4
    assert "blind" in parsed.row("in a call: #1 + number")[1]
    assert "attended" in parsed.row("in a call: *2 + number")[1]
    assert (
        parsed.row("9 + number")[1].startswith("out through siptrunk")
        and parsed.row("9 + number")[2] == "vm-a"
    )
    services = [r for r in parsed.rows if r and r[0] in {"7", "8", "8100", "6", "700", "7001", "*71"}]
    assert {r[2] for r in services} == {"vm-a"}, "the services are dialled from phones of lab_services_host"


def test_a_description_without_queues_or_conferences_still_renders(lab) -> None:
    for key in (
        "lab_queues",
        "lab_queue_login_code",
        "lab_queue_logout_code",
        "lab_queue_pause_code",
        "lab_queue_unpause_code",
        "lab_conference_rooms",
        "lab_conference_menu",
    ):
        del lab[key]
    _, parsed = card(lab)
    dials = [r[0] for r in parsed.rows if r]
    assert "7001" not in dials and "*71" not in dials and "6" not in dials
    assert "Queue agent" not in parsed.fields["user-chhiny"]
    assert parsed.row("700") and parsed.fields["user-amine"]["SIP user name"] == "amine"


def test_a_description_with_users_and_trunks_only_still_gives_every_login(lab) -> None:
    bare = {key: copy.deepcopy(lab[key]) for key in ("lab_users", "lab_trunks")}
    secrets = pod_secrets(lab, "pod07")
    _, parsed = card(bare, secrets=secrets)
    assert parsed.fields["user-kaiba"]["SIP password"] == secrets["users"]["kaiba"]
    assert parsed.fields["user-kaiba"]["Register to"].startswith("10.0.7.165:5060 (vm-a)")
    assert "Voicemail" not in parsed.fields["user-kaiba"]
    assert "9 + number" in [r[0] for r in parsed.rows if r]


def test_the_card_is_self_contained_and_prints_one_student_per_piece(lab) -> None:
    page, parsed = card(lab)
    assert page.startswith("<!DOCTYPE html>")
    assert ("meta", {"charset": "utf-8"}) in parsed.tags
    assert not {"script", "link", "img", "iframe", "object", "embed"} & {tag for tag, _ in parsed.tags}
    assert not [a for _, attrs in parsed.tags for k, a in attrs.items() if k in {"src", "href"}]
    style = "".join(parsed.captured["style"])
    assert (
        "@media print" in style
        and "break-inside: avoid" in style
        and "url(" not in style
        and "@import" not in style
    )
    students = [
        attrs.get("id") for tag, attrs in parsed.tags if tag == "section" and attrs.get("class") == "student"
    ]
    assert students == [f"user-{u['name']}" for u in lab["lab_users"]]
    assert parsed.captured["h1"] == ["tp3 — pod07"]


def test_a_user_without_a_password_or_a_part_without_an_address_is_refused(lab) -> None:
    secrets = pod_secrets(lab, "pod07")
    del secrets["users"]["kaiba"]
    with pytest.raises(ValueError, match="kaiba"):
        lab_cards.lab_pod_card(lab, "pod07", POD07, secrets)
    with pytest.raises(ValueError, match="vm-b"):
        lab_cards.lab_pod_card(lab, "pod07", {"vm-a": "10.0.7.165"}, pod_secrets(lab, "pod07"))


def test_the_summary_is_one_line_with_addresses_and_card_and_no_secret(lab) -> None:
    line = lab_cards.lab_pod_summary(
        "pod07",
        {"vm-b": "10.0.7.166", "vm-a": "10.0.7.165"},
        "/abs/path/credentials/classroom-pod07.html",
    )
    assert (
        line
        == "pod07  vm-a 10.0.7.165  vm-b 10.0.7.166  card: /abs/path/credentials/classroom-pod07.html"
    )
    assert "\n" not in lab_cards.lab_pod_summary("pod\n07", POD07, "/x/y\n.html")
    secrets = pod_secrets(lab, "pod07")
    assert not any(s in line for kind in secrets.values() for s in kind.values())


def test_ansible_finds_the_filters() -> None:
    filters = lab_cards.FilterModule().filters()
    assert filters == {
        "lab_class_cards": lab_cards.lab_class_cards,
        "lab_pod_summary": lab_cards.lab_pod_summary,
        "lab_card_path": lab_cards.lab_card_path,
        "lab_pod_files_prefix": lab_cards.lab_pod_files_prefix,
        "lab_pod_files_prefix_of": lab_cards.lab_pod_files_prefix_of,
        "lab_class_summary": lab_cards.lab_class_summary,
    }


def test_each_pods_card_sits_beside_the_credentials_file() -> None:
    assert lab_cards.lab_card_path("/x/credentials/classroom.yml", "pod07") == "/x/credentials/classroom-pod07.html"
    assert lab_cards.lab_pod_files_prefix("/x/credentials/classroom.yml", "pod07") == "/x/credentials/classroom-pod07"


def test_each_student_finds_their_phone_files_and_qr_code_in_their_own_section(lab) -> None:
    svg = '<svg viewBox="0 0 37 37" class="segno"><path class="qrline" stroke="#000" d="M4 4.5h7"/></svg>'
    phones = {
        u["name"]: {
            "files": {"MicroSIP": f"classroom-pod07-{u['name']}.microsip.ini",
                      "Linphone": f"classroom-pod07-{u['name']}.linphone.xml",
                      "baresip": f"classroom-pod07-{u['name']}.baresip-accounts"},
            "qr_svg": svg.replace("37", str(30 + n)),
        }
        for n, u in enumerate(lab["lab_users"])
    }
    page = lab_cards.lab_pod_card(lab, "pod07", POD07, pod_secrets(lab, "pod07"), "tp3", phones)
    parsed = Card(page)
    for n, user in enumerate(lab["lab_users"]):
        fields = parsed.fields[f"user-{user['name']}"]
        assert fields["MicroSIP settings"] == f"file classroom-pod07-{user['name']}.microsip.ini"
        assert fields["Linphone settings"] == f"file classroom-pod07-{user['name']}.linphone.xml"
        assert fields["baresip settings"] == f"file classroom-pod07-{user['name']}.baresip-accounts"
        assert "as a SIP URI" in parsed.section_text[f"user-{user['name']}"]
    # Each section holds its own code: the SVG as given, inside that student's section.
    sections = page.split('<section class="student"')[1:]
    assert [s.count("<svg") for s in sections] == [1] * len(lab["lab_users"])
    assert [f'viewBox="0 0 {30 + n} {30 + n}"' in s for n, s in enumerate(sections)] == [True] * len(sections)
    assert not {"script", "img", "a"} & {tag for tag, _ in parsed.tags}
    # Without phone settings, the card is as before: no file names, no code.
    plain = Card(lab_cards.lab_pod_card(lab, "pod07", POD07, pod_secrets(lab, "pod07")))
    assert "MicroSIP settings" not in plain.fields["user-amine"] and "<svg" not in plain.text


def test_every_pods_card_is_written_at_its_path_with_that_pods_secrets_only(lab) -> None:
    pods = {
        "pod07": {"first": "pod07-vm-a", "addresses": POD07},
        "pod08": {"first": "pod08-vm-a", "addresses": POD08},
        "tester-only": {"first": "", "addresses": {}},
    }
    plan = {f"{pod}-vm-a": {"description": {**lab, "lab_name": f"tp-{pod}"}} for pod in ("pod07", "pod08")}
    hosts = {f"{pod}-vm-a": {"secrets": pod_secrets(lab, pod)} for pod in ("pod07", "pod08")}
    cards = lab_cards.lab_class_cards(pods, plan, hosts, {"pod07": {}}, "/x/classroom.yml")
    assert set(cards) == {"/x/classroom-pod07.html", "/x/classroom-pod08.html"}
    for pod, other in (("pod07", "pod08"), ("pod08", "pod07")):
        page = cards[f"/x/classroom-{pod}.html"]
        assert page == lab_cards.lab_pod_card(plan[f"{pod}-vm-a"]["description"], pod, pods[pod]["addresses"],
                                              hosts[f"{pod}-vm-a"]["secrets"], lab_name=f"tp-{pod}")
        theirs = [s for kind in pod_secrets(lab, other).values() for s in kind.values()]
        assert not any(secret in page for secret in theirs)


def test_the_class_summary_is_one_line_per_pod_with_its_pbxs_only() -> None:
    pods = {
        "pod1": {"addresses": {"vm-a": "10.0.1.153", "vm-b": "10.0.1.154", "tester": "10.0.1.110"},
                 "pbx_parts": ["vm-a", "vm-b"]},
        "pod2": {"addresses": {"vm-a": "10.0.2.153", "vm-b": "10.0.2.154"}, "pbx_parts": ["vm-a", "vm-b"]},
    }
    lines = lab_cards.lab_class_summary(pods, "/c/local.yml")
    assert lines == [
        "pod1  vm-a 10.0.1.153  vm-b 10.0.1.154  card: /c/local-pod1.html",
        "pod2  vm-a 10.0.2.153  vm-b 10.0.2.154  card: /c/local-pod2.html",
    ]
