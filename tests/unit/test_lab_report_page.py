"""The lab report's page (tests/lab/lab_report.py), read back as a browser shows it: every
question by its number and title, its verdict and reason, and links to its own evidence only,
all offline. The evidence is the report module's, from tshark's saved reads of real captures."""

from __future__ import annotations

import importlib.util
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lab"))
_spec = importlib.util.spec_from_file_location("lab_report", ROOT / "tests" / "lab" / "lab_report.py")
lab_report = importlib.util.module_from_spec(_spec)
sys.modules["lab_report"] = lab_report  # its dataclasses look their module up there
_spec.loader.exec_module(lab_report)
CAPTURES = ROOT / "tests" / "unit" / "captures"
PARTIES = [{"name": "amine", "address": "172.30.250.110"}, {"name": "chhiny", "address": "172.30.250.111"}]


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text, self.links, self.tags = "", [], set()
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [value for name, value in attrs if name in ("href", "src") and value]

    def handle_data(self, data: str) -> None:
        self.text += data


def question(number: str, title: str, capture: str | None, outcome: str, reason: str = "") -> object:
    q = lab_report.Question("pod1", number, title, Path("/nowhere"), PARTIES, "tester", outcome, reason)
    if capture:
        saved = [(CAPTURES / f"{capture}.{read}").read_text() for read in ("sip.json", "media.json", "rtp-streams.txt")]
        q.evidence = lab_report._lab_capture().evidence(*saved, PARTIES)
        q.evidence.pop("ladder_svg")
    return q


def test_the_page_names_every_question_with_its_verdict_reason_and_own_evidence() -> None:
    asked = [
        question("1.2", "A call: INVITE, 100, 180, 200, ACK, BYE", "call", "pass"),
        question("1.3-busy", "A busy callee: 486 Busy Here", "busy", "fail", "assert 480 == 486 <script>"),
        question("1.4-video", "A video call: H.264 in the answer", None, "not run"),
    ]
    page = Page(lab_report.index_page("pod1", asked))
    for q in asked:
        assert f"{q.number} {q.title}" in page.text
    assert "1.2 A call: INVITE, 100, 180, 200, ACK, BYE: pass" in page.text
    assert "486 Busy Here: FAIL" in page.text and "assert 480 == 486 <script>" in page.text
    assert "script" not in page.tags  # the reason is text, not markup
    assert set(page.links) == {f"{n}/{f}" for n in ("1.2", "1.3-busy") for f in ("capture.pcap", "ladder.svg")}
    # The call's RTP table: tshark's two PCMU streams, as the report module reads them.
    assert page.text.count("PCMU/8000") == 2


def test_questions_are_in_the_reports_order() -> None:
    numbers = ["1.10", "1.3-cancel", "1.2", "2.1", "1.3-busy"]
    assert sorted(numbers, key=lab_report.question_key) == ["1.2", "1.3-busy", "1.3-cancel", "1.10", "2.1"]


def test_the_class_summary_has_a_row_and_a_test_case_per_pod_and_question() -> None:
    import csv
    import xml.etree.ElementTree as ET

    asked = [question("1.2", "A call", None, "pass"), question("1.3-busy", "Busy, \"486\"", None, "fail", "got 480")]
    asked[1].pod = "pod2"
    rows = list(csv.DictReader(lab_report.summary_csv(asked).splitlines()))
    assert [(r["pod"], r["question"], r["verdict"], r["reason"]) for r in rows] == [
        ("pod1", "1.2", "pass", ""), ("pod2", "1.3-busy", "fail", "got 480")]
    assert rows[1]["title"] == 'Busy, "486"'
    suites = ET.fromstring(lab_report.summary_junit(asked))
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == [("pod1", "1", "0"), ("pod2", "1", "1")]
    assert suites.find("testsuite[@name='pod2']/testcase/failure").get("message") == "got 480"
