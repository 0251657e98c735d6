"""The lab report, reproduced from the tests that place its calls (issue: the lab report).

A test marked ``@pytest.mark.question("1.3-busy")`` is the check of that question of the
report (QUESTIONS below). With ``--lab-report DIR``, each such test is captured on
the PBX its calls go through (tcpdump, all UDP: SIP, RTP, RTCP; the way a student captures in
Wireshark), and as each check ends, its pod's folder gets:

    DIR/<pod>/<question>/capture.pcap   what the PBX saw during the check
    DIR/<pod>/<question>/ladder.svg     the SIP ladder diagram (tshark's SIP, lab_capture.py)
    DIR/<pod>/<question>/evidence.json  SIP messages, RTP streams table, RTCP per direction
    DIR/<pod>/<question>/verdict.json   pass or fail, and why
    DIR/<pod>/index.html                every question with its verdict, reason and evidence
    DIR/summary.csv, DIR/summary.xml    the class: one row (JUnit: one test case) per pod and
                                        question, for an instructor grading many labs at once

Captures are read by tshark in the pod's tester (Wireshark's own dissectors), through the
report module's functions (roles/lab_report/library/lab_capture.py); nothing here parses SIP.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import json
import shlex
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
CAPTURE_DIR = "/tmp/lab-report"  # in the PBX, then in the tester for tshark
LOCALE = "LC_ALL=C LANG=C"  # tshark prints decimal points, whatever the host's locale


# The report's questions, numbered as the course's report numbers them (Part 1: observing
# SIP and RTP; Part 2: the services), each with the title its page shows. A test marked
# ``@pytest.mark.question(number)`` is that question's check; conftest.py refuses a number
# that is not here, and a grading run (--lab-grading) may only ask for these.
QUESTIONS = {
    "1.1-register": "A phone registers with digest authentication: REGISTER, 401, REGISTER, 200",
    "1.1-trunk-a-to-b": "A user of vm-a calls a user of vm-b across the trunk, with caller ID and audio",
    "1.1-trunk-b-to-a": "A user of vm-b calls a user of vm-a across the trunk, with caller ID and audio",
    "1.2": "A call: INVITE, 100, 180, 200, ACK, BYE; PCMU each way, one SSRC a direction, RTCP",
    "1.3-busy": "A busy callee: 486 Busy Here",
    "1.3-decline": "A callee who declines: 603, heard as 403",
    "1.3-cancel": "The caller hangs up while it rings: CANCEL, 487 Request Terminated",
    "1.3-unknown": "An unknown number: 404 Not Found",
    "1.3-unregistered": "A user whose phone is not registered: 404 Not Found",
    "1.3-password": "A wrong password: 401 Unauthorized, again and again",
    "1.4-video": "A video call: H.264 in the answer, the video echoed back",
    "2.1-blind": "Blind transfer: the transfer keys and a number move the caller there",
    "2.1-attended": "Attended transfer: the keys, a word with the third party, then the call is theirs",
    "2.1-refer": "A phone's own transfer (REFER) moves the caller",
    "2.2-busy": "Voicemail on busy: the caller leaves a message",
    "2.2-no-answer": "Voicemail on no answer, after the ring time",
    "2.2-voicemailmain": "Listening to one's voicemail (VoiceMailMain): the right PIN opens it, a wrong one does not",
    "2.2-record": "A prompt recorded by phone (Record) is played back",
    "2.3-attendant": "The auto-attendant rings the extension dialled",
    "2.3-ivr": "The IVR rings the user of the key pressed",
    "2.3-ivr-timeout": "The IVR rings the operator when no key is pressed",
    "2.4-conference": "Three phones talk in the conference room",
    "2.5-park": "A parked call is taken from its slot",
    "2.5-park-timeout": "A parked call nobody takes rings whoever parked it",
    "2.5-pickup": "A group member picks up a ringing call",
    "2.5-follow-me": "Follow-me rings the next phone when the desk does not answer",
    "2.6-queue": "Queue calls go round the agents",
    "2.6-agents": "Agents log out and back in",
    "2.6-pause": "A paused agent takes no calls until resumed",
    "2.6-moh": "Music on hold plays to the caller",
}


def _lab_capture() -> Any:
    spec = importlib.util.spec_from_file_location(
        "lab_capture", REPO / "roles" / "lab_report" / "library" / "lab_capture.py")  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    sys.modules["lab_capture"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


@dataclass
class Question:
    """One question of the report in one pod: where it was captured, and how its check went."""

    pod: str
    number: str
    title: str
    folder: Path
    parties: list[dict[str, Any]]
    tester: str
    outcome: str = "not run"
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


class LabReport:
    """The pytest plugin: captures around each question's check, then writes the folders."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.questions: dict[tuple[str, str], Question] = {}
        self.answering: dict[str, bool] = {}  # PBX address -> whether it answered SIP

    # ---- around each check

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        """A PBX that does not answer SIP at all fails the question at once, saying so, rather
        than after every call's time-outs (or as a stack trace)."""
        yield
        lab = getattr(item, "funcargs", {}).get("lab")
        if item.get_closest_marker("question") is None or lab is None:
            return
        for part in lab.pbx_parts:
            address = lab.addresses[part]
            if address not in self.answering:
                self.answering[address] = sip_answers(address, lab.sip_port, lab.users[0]["name"])
            if not self.answering[address]:
                pytest.fail(f"no answer from {address} ({part}): nothing answers SIP on port {lab.sip_port}",
                            pytrace=False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        marker = item.get_closest_marker("question")
        lab = getattr(item, "funcargs", {}).get("lab")
        if marker is None or lab is None:
            yield
            return
        number = marker.args[0]
        # Where a student would capture: the PBX that runs the services (vm-a in the course).
        on = marker.kwargs.get("on") or lab.features.get("services_host") or "vm-a"
        folder = self.asked(lab, number).folder
        pbx = lab.containers[on]
        pcap = f"{CAPTURE_DIR}/{number}.pcap"
        # --immediate-mode: packets are written as they come, not when a buffer fills.
        docker("exec", pbx, "sh", "-c", f"mkdir -p {CAPTURE_DIR} && rm -f {shlex.quote(pcap)}")
        docker("exec", "-d", pbx, "tcpdump", "-i", "any", "-n", "-U", "--immediate-mode", "-w", pcap, "udp")
        wait_until(lambda: docker("exec", pbx, "test", "-s", pcap, check=False).returncode == 0, 5)
        try:
            yield
        finally:
            time.sleep(0.5)  # the last BYE's 200 OK and RTCP on their way
            docker("exec", pbx, "pkill", "-INT", "-f", f"tcpdump .*-w {pcap}", check=False)
            wait_until(lambda: docker("exec", pbx, "pgrep", "-f", f"-w {pcap}", check=False).returncode != 0, 5)
            docker("cp", f"{pbx}:{pcap}", str(folder / "capture.pcap"))
            self.read(self.questions[lab.pod, number])

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        marker = item.get_closest_marker("question")
        lab = getattr(item, "funcargs", {}).get("lab")
        if marker is None or lab is None or not (report.when == "call" or report.when == "setup" and report.failed):
            return
        # A question whose setup failed has no capture, but gets its verdict.
        question = self.questions.get((lab.pod, marker.args[0])) or self.asked(lab, marker.args[0])
        question.outcome = "pass" if report.passed else "fail"
        question.reason = "" if report.passed else first_line(report)
        (question.folder / "verdict.json").write_text(json.dumps(
            {"question": question.number, "title": question.title, "verdict": question.outcome,
             "reason": question.reason}, indent=1))  # fmt: skip
        asked = sorted((q for q in self.questions.values() if q.pod == question.pod),
                       key=lambda q: question_key(q.number))  # fmt: skip
        (self.folder / question.pod / "index.html").write_text(index_page(question.pod, asked))
        every = sorted(self.questions.values(), key=lambda q: (q.pod, question_key(q.number)))
        (self.folder / "summary.csv").write_text(summary_csv(every))
        (self.folder / "summary.xml").write_text(summary_junit(every))

    def asked(self, lab: Any, number: str) -> Question:
        """Question `number` asked of `lab`'s pod now: its folder made, its verdict yet to come."""
        folder = self.folder / lab.pod / number
        folder.mkdir(parents=True, exist_ok=True)
        question = Question(lab.pod, number, QUESTIONS[number], folder, parties(lab), lab.containers[lab.testers[0]])
        self.questions[lab.pod, number] = question
        return question

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """The checks of the report itself (test_lab_report.py) run after every question's."""
        items.sort(key=lambda item: item.module.__name__ == "test_lab_report" if item.module else False)

    def read(self, question: Question) -> None:
        """The question's evidence, from tshark's reads of its capture; as each check ends, so
        that the report's own checks, last in the run, find every question's."""
        question.evidence = read_capture(_lab_capture(), question, question.folder / "capture.pcap")
        (question.folder / "ladder.svg").write_text(question.evidence.pop("ladder_svg"))
        (question.folder / "evidence.json").write_text(json.dumps(question.evidence, indent=1))


def sip_answers(address: str, port: int, user: str, tries: int = 3) -> bool:
    """Whether anything answers a SIP OPTIONS at address:port (any answer will do: a PBX
    challenges a user it knows). From one of the lab's users, so the request is no failed
    log-in for fail2ban to count."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((address, port))
        here = probe.getsockname()
        request = (f"OPTIONS sip:{address}:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {here[0]}:{here[1]};branch=z9hG4bK-lab-report-{here[1]}\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:{user}@{address}>;tag=lab-report\r\n"
                   f"To: <sip:{address}:{port}>\r\nCall-ID: lab-report-{here[1]}@{here[0]}\r\n"
                   f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        probe.settimeout(1.0)
        for _ in range(tries):
            try:
                probe.send(request.encode())
                return probe.recv(4096).startswith(b"SIP/2.0 ")
            except (TimeoutError, ConnectionRefusedError, OSError):
                continue
    return False


def wait_until(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


def first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    line = text.strip().splitlines()[0] if text.strip() else "failed"
    # What was wrong, as the check says it; not Python's name for it.
    for prefix in ("AssertionError: ", "Failed: "):
        line = line.removeprefix(prefix)
    return line[:300]


def parties(lab: Any) -> list[dict[str, Any]]:
    """The ladder's columns: the phones (the tester), the PBXs, the provider, left to right."""
    order = [lab.testers[0], "vm-a", "vm-b", "provider"]
    names = {lab.testers[0]: "phones (tester)"}
    return [{"name": names.get(part, part), "address": lab.addresses[part]} for part in order if part in lab.addresses]


def read_capture(capture: Any, question: Question, pcap: Path) -> dict[str, Any]:
    """tshark's three reads of the capture, run in the tester, made into evidence."""
    inside = f"{CAPTURE_DIR}/{question.pod}-{question.number}.pcap"
    docker("exec", question.tester, "mkdir", "-p", CAPTURE_DIR)
    docker("cp", str(pcap), f"{question.tester}:{inside}")
    outputs = {}
    for read in capture.TSHARK_READS:
        argv = capture.tshark_argv("tshark", inside, read)
        outputs[read] = docker("exec", question.tester, "sh", "-c", f"{LOCALE} {shlex.join(argv)}").stdout
    title = f"{question.number} {question.title}"
    return capture.evidence(outputs["sip.json"], outputs["media.json"], outputs["rtp-streams.txt"],
                            question.parties, title)


def question_key(number: str) -> tuple[Any, ...]:
    """1.2 before 1.3-busy before 1.10: numbers compare as numbers."""
    head, _, tail = number.partition("-")
    return (*(int(part) if part.isdigit() else part for part in head.split(".")), tail)


def _streams_table(streams: list[dict[str, Any]]) -> str:
    if not streams:
        return "<p>No RTP.</p>"
    head = "".join(f"<th>{h}</th>" for h in ("From", "To", "SSRC", "Payload", "Packets", "Lost", "Max jitter (ms)"))
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            s["from"], s["to"], s["ssrc"], s.get("encoding") or s["payload"], s["packets"], s["lost"],
            s["max_jitter_ms"])) + "</tr>"  # fmt: skip
        for s in streams
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def summary_csv(questions: list[Question]) -> str:
    """One row per pod and question: what a spreadsheet of the class's grades starts from."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["pod", "question", "title", "verdict", "reason"])
    writer.writerows([q.pod, q.number, q.title, q.outcome, q.reason] for q in questions)
    return out.getvalue()


def summary_junit(questions: list[Question]) -> str:
    """JUnit XML: a test suite per pod, a test case per question, a failure with its reason
    (what CI servers and graders' dashboards read)."""
    suites = ET.Element("testsuites", name="lab report")
    for pod in sorted({q.pod for q in questions}):
        mine = [q for q in questions if q.pod == pod]
        failed = [q for q in mine if q.outcome != "pass"]
        suite = ET.SubElement(suites, "testsuite", name=pod, tests=str(len(mine)), failures=str(len(failed)))
        for q in mine:
            case = ET.SubElement(suite, "testcase", classname=pod, name=f"{q.number} {q.title}")
            if q.outcome != "pass":
                ET.SubElement(case, "failure", message=q.reason or q.outcome)
    return ET.tostring(suites, encoding="unicode") + "\n"


def index_page(pod: str, questions: list[Question]) -> str:
    """The pod's report: a section per question, readable offline (no script, no remote file)."""
    sections = []
    for q in questions:
        verdict = {"pass": "pass", "fail": "FAIL"}.get(q.outcome, q.outcome)
        evidence = ""
        if q.evidence:
            messages = "".join(f"<li>{html.escape(m['from'])} → {html.escape(m['to'])}: {html.escape(m['label'])}</li>"
                               for m in q.evidence["sip"])
            evidence = (f'<p><a href="{q.number}/capture.pcap">capture.pcap</a> · '
                        f'<a href="{q.number}/ladder.svg">ladder.svg</a></p>'
                        f'<img src="{q.number}/ladder.svg" alt="SIP ladder of {html.escape(q.number)}">'
                        f"<details><summary>SIP messages ({len(q.evidence['sip'])})</summary><ol>{messages}</ol>"
                        f"</details><h3>RTP streams</h3>{_streams_table(q.evidence['rtp_streams'])}")
        reason = f'<p class="reason">{html.escape(q.reason)}</p>' if q.reason else ""
        sections.append(
            f'<section id="q{html.escape(q.number)}" class="{html.escape(q.outcome)}">'
            f"<h2>{html.escape(q.number)} {html.escape(q.title)}: <span>{verdict}</span></h2>{reason}{evidence}</section>"
        )
    style = ("body{font-family:sans-serif;margin:2em}section{border-top:1px solid #999;padding:.5em 0}"
             ".pass span{color:#060}.fail span{color:#b00}img{max-width:100%;border:1px solid #ccc}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Lab report: {html.escape(pod)}'
            f"</title><style>{style}</style></head><body><h1>Lab report: {html.escape(pod)}</h1>"
            + "".join(sections) + "</body></html>\n")
