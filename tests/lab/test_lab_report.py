"""The lab report that the questions' checks wrote (--lab-report, tests/lab/lab_report.py),
checked against its own captures with tshark, never with the report's own SIP reading, and
its page opened in a real browser (Chromium, headless in the tester).

These run after every question's check (lab_report.py moves them last), in the same session.
Without --lab-report there is no report to check: they are skipped, saying so.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from conftest import Lab
from lab_report import QUESTIONS

pytestmark = pytest.mark.report_check

SVG = "{http://www.w3.org/2000/svg}"

# What each question's capture, taken on vm-a, must hold: these SIP messages in this order,
# others (a phone's authentication, the other leg) may come between. Requests by method,
# answers by code.
SIP_IN_ORDER = {
    "1.1-register": ["REGISTER", "401", "REGISTER", "200"],
    "1.1-trunk-a-to-b": ["INVITE", "100", "200", "ACK", "BYE", "200"],
    "1.1-trunk-b-to-a": ["INVITE", "100", "200", "ACK", "BYE", "200"],
    "1.2": ["INVITE", "100", "180", "200", "ACK", "BYE", "200"],
    "1.3-busy": ["INVITE", "486", "ACK"],
    "1.3-decline": ["INVITE", "603", "403", "ACK"],
    "1.3-cancel": ["INVITE", "180", "CANCEL", "200", "487", "ACK"],
    "1.3-unknown": ["INVITE", "404", "ACK"],
    "1.3-unregistered": ["INVITE", "404", "ACK"],
    "1.3-password": ["REGISTER", "401", "INVITE", "401", "ACK"],
    "1.4-video": ["INVITE", "200", "ACK", "BYE", "200"],
}


@pytest.fixture
def report(request: pytest.FixtureRequest, lab: Lab) -> Path:
    folder = request.config.getoption("--lab-report")
    if not folder:
        pytest.skip("no lab report in this run: pytest --lab-report DIR writes and checks one")
    return Path(folder) / lab.pod


def tshark(report: Path, lab: Lab, question: str, *args: str) -> str:
    """tshark's own reading of the question's capture (the report's capture.pcap), in the pod's tester."""
    pcap = f"/tmp/lab-report-checks/{lab.pod}-{question}.pcap"
    tester = lab.containers[lab.testers[0]]
    subprocess.run(["docker", "exec", tester, "mkdir", "-p", "/tmp/lab-report-checks"], check=True)
    subprocess.run(["docker", "cp", str(report / question / "capture.pcap"), f"{tester}:{pcap}"], check=True,
                   capture_output=True)  # fmt: skip
    done = subprocess.run(["docker", "exec", "-e", "LC_ALL=C", tester, "tshark", "-r", pcap, "-n", *args],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def sip_of(report: Path, lab: Lab, question: str) -> list[dict[str, str]]:
    """Each SIP message of the capture: source, destination, and its method or status code."""
    rows = tshark(report, lab, question, "-Y", "sip and not icmp", "-T", "fields", "-E", "separator=|",
                  "-e", "ip.src", "-e", "ip.dst", "-e", "sip.Method", "-e", "sip.Status-Code")  # fmt: skip
    found = []
    for row in rows.splitlines():
        src, dst, method, code = row.split("|")
        found.append({"src": src, "dst": dst, "what": method or code})
    return found


def in_order(wanted: list[str], seen: list[str]) -> bool:
    remaining = iter(seen)
    return all(any(item == want for item in remaining) for want in wanted)


def test_every_question_passed_with_its_evidence(report: Path) -> None:
    for question in QUESTIONS:
        verdict = json.loads((report / question / "verdict.json").read_text())
        assert verdict["verdict"] == "pass", verdict
        for name in ("capture.pcap", "ladder.svg", "evidence.json"):
            assert (report / question / name).stat().st_size > 0, (question, name)


@pytest.mark.parametrize("question", SIP_IN_ORDER)
def test_each_capture_holds_what_its_question_is_about(report: Path, lab: Lab, question: str) -> None:
    seen = [m["what"] for m in sip_of(report, lab, question)]
    assert in_order(SIP_IN_ORDER[question], seen), seen


@pytest.mark.parametrize("question", SIP_IN_ORDER)
def test_each_ladder_has_one_arrow_per_sip_message_in_order_between_the_right_columns(
    report: Path, lab: Lab, question: str
) -> None:
    svg = ET.fromstring((report / question / "ladder.svg").read_text())
    columns = {g.get("data-address").split(":")[0]: g.get("data-name")
               for g in svg.iter(f"{SVG}g") if "party" in (g.get("class") or "").split()}  # fmt: skip
    arrows = [g for g in svg.iter(f"{SVG}g") if "msg" in (g.get("class") or "").split()]
    messages = sip_of(report, lab, question)
    assert len(arrows) == len(messages)
    for arrow, message in zip(arrows, messages):
        assert arrow.get("data-label").split(" ")[0] == message["what"], (arrow.attrib, message)
        assert (arrow.get("data-from"), arrow.get("data-to")) == (columns[message["src"]], columns[message["dst"]])


def test_the_call_carries_pcmu_each_way_with_its_own_ssrc_and_no_loss(report: Path, lab: Lab) -> None:
    streams = json.loads((report / "1.2" / "evidence.json").read_text())["rtp_streams"]
    # tshark's own count of RTP packets per SSRC and payload type, to hold the table against.
    counted: dict[str, set[str]] = {}
    for row in tshark(report, lab, "1.2", "--enable-heuristic", "rtp_udp", "-Y", "rtp", "-T", "fields",
                      "-e", "rtp.ssrc", "-e", "rtp.p_type").splitlines():  # fmt: skip
        ssrc, payload_type = row.split("\t")
        counted.setdefault(ssrc, set()).add(payload_type)
    assert {s["ssrc"] for s in streams} == set(counted)
    assert all(counted[s["ssrc"]] == {"0"} and s["encoding"] == "PCMU/8000" and s["lost"] == 0 for s in streams)
    # Each leg (a phone and vm-a, by address and port) carries one stream each way, and the
    # two ways have different SSRCs. (Two SIPp phones replaying the same tone share an SSRC:
    # an SSRC is unique within a session, not across a PBX's legs.)
    legs: dict[frozenset[str], list[str]] = {}
    for stream in streams:
        legs.setdefault(frozenset((stream["src"], stream["dst"])), []).append(stream["ssrc"])
    assert len(legs) == 2, legs  # amine and vm-a, vm-a and kaiba
    assert all(len(ssrcs) == 2 and ssrcs[0] != ssrcs[1] for ssrcs in legs.values()), legs
    phones, pbx = lab.addresses[lab.testers[0]], lab.addresses["vm-a"]
    assert all({end.split(":")[0] for end in leg} == {phones, pbx} for leg in legs), legs


def test_the_video_answer_offers_h264(report: Path, lab: Lab) -> None:
    answers = tshark(report, lab, "1.4-video", "-Y", "sip.Status-Code == 200 and sdp", "-T", "fields", "-e", "sdp.media_attr")
    assert re.search(r"rtpmap:\d+ H264/90000", answers), answers


def test_the_index_names_every_question_with_its_verdict(report: Path) -> None:
    text = Shown((report / "index.html").read_text()).text
    for question, title in QUESTIONS.items():
        assert f"{question} {title}: pass" in text


# In the tester: a copy of the pod's report as an instructor would open it, and Chromium's profile.
BROWSER = "/tmp/lab-report/browser"


def chromium(lab: Lab, *args: str) -> str:
    """Debian's Chromium, headless, in the pod's tester; what it printed. It runs as root
    there, which its sandbox refuses; /dev/shm is Docker's 64 MB; there is no D-Bus (it says so,
    line after line, on its standard error)."""
    done = subprocess.run(["docker", "exec", lab.containers[lab.testers[0]], "chromium", "--headless",
                           "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={BROWSER}/profile", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, "\n".join(line for line in done.stderr.splitlines() if "dbus" not in line)[-3000:]
    return done.stdout


class Shown(HTMLParser):
    """A page's text as it shows (the body, without style or script), and its images in order."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text, self.images, self._hidden, self._in_body = "", [], 0, False
        self.feed(page)
        self.text = " ".join(self.text.split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_body |= tag == "body"
        self._hidden += tag in ("style", "script", "template")
        self.images += [value for name, value in attrs if tag == "img" and name == "src" and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "template") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if self._in_body and not self._hidden:
            self.text += data


def distinct_colours(image: Image.Image) -> int:
    return len(image.convert("RGB").getcolors(image.width * image.height))


def non_white_share(image: Image.Image) -> float:
    return 1 - image.convert("L").histogram()[255] / (image.width * image.height)


def hsv_of(colour: str) -> tuple[int, int, int]:
    """Pillow's hue (0-255 around the circle), saturation and value of "#rrggbb"."""
    return Image.new("RGB", (1, 1), colour).convert("HSV").getpixel((0, 0))


def pixels_in_hue(image: Image.Image, colour: str, tolerance: int = 4) -> int:
    """Pixels drawn in `colour` at any strength over white, antialiased edges too: those of its
    hue (within `tolerance`, about 5 degrees), clearly coloured."""
    hue, saturation, _ = image.convert("HSV").split()
    counts = hue.histogram(mask=saturation.point(lambda s: 255 if s >= 96 else 0))
    return sum(counts[(hsv_of(colour)[0] + d) % 256] for d in range(-tolerance, tolerance + 1))


def ladder_inks(svg: str) -> set[str]:
    """The colours a ladder draws its messages in, but black and greys (text is black too)."""
    colours = {element.get(paint) for group in ET.fromstring(svg).iter(f"{SVG}g")
               if "msg" in (group.get("class") or "").split()
               for element in group.iter() for paint in ("stroke", "fill")}  # fmt: skip
    return {c for c in colours if c and re.fullmatch(r"#[0-9a-fA-F]{6}", c)
            and hsv_of(c)[1] >= 96}  # fmt: skip


def test_the_index_page_renders_in_a_real_browser_naming_every_question(report: Path, lab: Lab) -> None:
    """The pod's page opened in a real browser: Chromium draws it, ladders and all (its
    screenshot is kept beside it as index.png), and the text it shows names every question."""
    tester, copy = lab.containers[lab.testers[0]], f"{BROWSER}/{lab.pod}"
    subprocess.run(["docker", "exec", tester, "sh", "-c", f"rm -rf {BROWSER} && mkdir -p {BROWSER}"], check=True)
    subprocess.run(["docker", "cp", str(report), f"{tester}:{copy}"], check=True, capture_output=True)
    # One load of the page, both its picture and the document the browser built from it.
    dom = chromium(lab, "--window-size=1280,2000", "--hide-scrollbars", f"--screenshot={copy}/index.png",
                   "--dump-dom", f"file://{copy}/index.html")  # fmt: skip
    subprocess.run(["docker", "cp", f"{tester}:{copy}/index.png", str(report / "index.png")],
                   check=True, capture_output=True)  # fmt: skip
    shown = Shown(dom)

    with Image.open(report / "index.png") as screenshot:
        assert screenshot.size == (1280, 2000)
        # A blank page has one colour; text alone, antialiased, has dozens of greys.
        assert distinct_colours(screenshot) >= 64 and non_white_share(screenshot) >= 0.01
        # The first ladder, at the top of the page, drawn in its own colours (the answers' blue...).
        drawn = {ink: pixels_in_hue(screenshot, ink) for ink in ladder_inks((report / shown.images[0]).read_text())}
        assert drawn and min(drawn.values()) >= 100, (shown.images[0], drawn)

    verdicts = [json.loads(path.read_text()) for path in sorted(report.glob("*/verdict.json"))]
    named = [" ".join(f"{verdict['question']} {verdict['title']}".split()) for verdict in verdicts]
    assert named
    assert [name for name in named if name not in shown.text] == []


def test_the_class_summary_has_a_row_per_pod_and_question(report: Path, lab: Lab) -> None:
    rows = [row for row in csv.DictReader((report.parent / "summary.csv").read_text().splitlines())
            if row["pod"] == lab.pod]  # fmt: skip
    assert {row["question"]: row["verdict"] for row in rows} == {question: "pass" for question in QUESTIONS}
    suite = ET.fromstring((report.parent / "summary.xml").read_text()).find(f"testsuite[@name='{lab.pod}']")
    assert suite is not None and suite.get("failures") == "0"
    assert sorted(case.get("name").split(" ")[0] for case in suite.iter("testcase")) == sorted(QUESTIONS)


def test_nothing_the_report_wrote_holds_a_secret(report: Path, lab: Lab) -> None:
    secrets = [s for kind in lab.secrets.values() for s in kind.values() if len(s) >= 4]
    assert secrets
    for path in report.parent.rglob("*"):  # every pod's folder and the class summary
        if path.is_file():
            content = path.read_bytes()
            assert not any(secret.encode() in content for secret in secrets), path
