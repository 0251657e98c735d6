"""The lab report's reading of a capture (roles/lab_report/library/lab_capture.py).

The captures in tests/unit/captures/ are real: two SIPp phones called each other and tcpdump
wrote them (captures/README.md says how). Next to each pcap lies what tshark printed for the
module's three reads of it, so these tests run the module's reading on real tshark output on a
machine without tshark, as CI's controller is.

What a capture holds is read here from tshark's JSON by a few lines of this file, never through
the module's helpers: the module's diagram is checked against tshark, not against itself.

Tests that run tshark itself (the module as Ansible runs it, end to end on the pcaps) are
defined only where `tshark` is on PATH; elsewhere they are not collected, so a run without
tshark does not list them as passed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "roles" / "lab_report" / "library" / "lab_capture.py"
CAPTURES = Path(__file__).resolve().parent / "captures"
_spec = importlib.util.spec_from_file_location("lab_capture", MODULE)
lab_capture = importlib.util.module_from_spec(_spec)
sys.modules["lab_capture"] = lab_capture  # dataclasses look their module up there
_spec.loader.exec_module(lab_capture)

SVG = "{http://www.w3.org/2000/svg}"
AMINE, CHHINY = "172.30.250.110", "172.30.250.111"  # the phones of captures/make_captures.py
PARTIES = [{"name": "amine", "address": AMINE}, {"name": "chhiny", "address": CHHINY}]
NAME_OF = {AMINE: "amine", CHHINY: "chhiny"}


# ---- Reading tshark's saved output the simple way (not with the module)

def saved(capture: str, read: str) -> str:
    return (CAPTURES / f"{capture}.{read}").read_text()


def tshark_sip(capture: str) -> list[dict[str, Any]]:
    """Each SIP packet tshark found: its frame, addresses, and method or status code."""
    packets = []
    for packet in json.loads(saved(capture, "sip.json")):
        layers = packet["_source"]["layers"]
        packets.append({
            "frame": int(layers["frame.number"][0]),
            "src": layers["ip.src"][0], "dst": layers["ip.dst"][0],
            "what": (layers.get("sip.Method") or layers.get("sip.Status-Code"))[0],
            "cseq": layers["sip.CSeq.method"][0],
        })
    return packets


def evidence(capture: str, parties: list[dict[str, Any]] = PARTIES, title: str = "") -> dict[str, Any]:
    return lab_capture.evidence(saved(capture, "sip.json"), saved(capture, "media.json"),
                                saved(capture, "rtp-streams.txt"), parties, title)


def ladder(result: dict[str, Any]) -> tuple[dict[str, float], list[ET.Element]]:
    """The diagram's columns (name -> x of its lifeline) and its arrows, in document order."""
    svg = ET.fromstring(result["ladder_svg"])
    columns = {}
    for party in svg.iter(f"{SVG}g"):
        if party.get("class") == "party":
            lifeline = party.find(f"{SVG}line")
            columns[party.get("data-name")] = float(lifeline.get("x1"))
    arrows = [g for g in svg.iter(f"{SVG}g") if "msg" in g.get("class", "").split()]
    return columns, arrows


def arrow_ends(arrow: ET.Element) -> tuple[float, float, float]:
    """Where an arrow starts, where its head points, and its height."""
    line = arrow.find(f"{SVG}line")
    tip = arrow.find(f"{SVG}polygon").get("points").split()[0].split(",")
    return float(line.get("x1")), float(tip[0]), float(line.get("y1"))


# ---- What the captures hold, read from tshark's JSON

def test_the_call_capture_holds_invite_100_180_200_ack_bye_200() -> None:
    assert [(p["what"], p["cseq"]) for p in tshark_sip("call")] == [
        ("INVITE", "INVITE"), ("100", "INVITE"), ("180", "INVITE"), ("200", "INVITE"),
        ("ACK", "ACK"), ("BYE", "BYE"), ("200", "BYE")]


def test_the_busy_capture_holds_invite_100_180_486_ack() -> None:
    assert [p["what"] for p in tshark_sip("busy")] == ["INVITE", "100", "180", "486", "ACK"]


def test_the_cancel_capture_holds_invite_180_cancel_200_487_ack_in_that_order() -> None:
    read = [(p["what"], p["cseq"]) for p in tshark_sip("cancel")]
    # The report's question names no 100 Trying: a capture may or may not show one.
    assert [m for m in read if m != ("100", "INVITE")] == [
        ("INVITE", "INVITE"), ("180", "INVITE"), ("CANCEL", "CANCEL"), ("200", "CANCEL"),
        ("487", "INVITE"), ("ACK", "ACK")]


# ---- The module's SIP messages

def test_the_module_lists_every_sip_message_of_the_call_labelled_as_wireshark_does() -> None:
    messages = evidence("call")["sip"]
    assert [m["label"] for m in messages] == [
        "INVITE", "100 Trying", "180 Ringing", "200 OK (INVITE)", "ACK", "BYE", "200 OK (BYE)"]
    assert [(m["frame"], m["from"], m["to"]) for m in messages] == [
        (p["frame"], NAME_OF[p["src"]], NAME_OF[p["dst"]]) for p in tshark_sip("call")]
    assert [m["time"] for m in messages] == sorted(m["time"] for m in messages)
    invite = messages[0]
    assert (invite["method"], invite["cseq_method"], invite["status"]) == ("INVITE", "INVITE", None)
    assert invite["sdp_media"] == ["audio 30000 RTP/AVP 0 101"]
    assert "rtpmap:0 PCMU/8000" in invite["sdp_attributes"]
    assert len({m["call_id"] for m in messages}) == 1
    assert not any(m["resent"] for m in messages)


def test_the_cancel_and_its_answers_are_labelled_by_their_request() -> None:
    labels = [m["label"] for m in evidence("cancel")["sip"]]
    assert labels == ["INVITE", "100 Trying", "180 Ringing", "CANCEL", "200 OK (CANCEL)",
                      "487 Request Terminated (INVITE)", "ACK"]


@pytest.mark.parametrize(("capture", "final"), [
    ("call", ["200 OK (INVITE)"]),
    ("busy", ["486 Busy Here (INVITE)"]),
    ("cancel", ["487 Request Terminated (INVITE)"]),  # the 200 answers the CANCEL, not the call
])
def test_only_the_final_answer_to_the_invite_is_final(capture: str, final: list[str]) -> None:
    assert [m["label"] for m in evidence(capture)["sip"] if m["final"]] == final


# ---- The ladder diagram, checked against tshark's JSON

@pytest.mark.parametrize("capture", ["call", "busy", "cancel"])
def test_the_ladder_has_one_arrow_per_sip_message_in_order_between_the_right_columns(capture: str) -> None:
    columns, arrows = ladder(evidence(capture))
    packets = tshark_sip(capture)
    assert list(columns) == ["amine", "chhiny"]
    assert len(arrows) == len(packets)
    heights = []
    for arrow, packet in zip(arrows, packets):
        start, tip, y = arrow_ends(arrow)
        assert int(arrow.get("data-frame")) == packet["frame"]
        assert start == columns[NAME_OF[packet["src"]]], f"frame {packet['frame']} starts off its sender"
        assert tip == columns[NAME_OF[packet["dst"]]], f"frame {packet['frame']} points off its receiver"
        assert (arrow.get("data-from"), arrow.get("data-to")) == (NAME_OF[packet["src"]], NAME_OF[packet["dst"]])
        assert arrow.get("data-label").split()[0] == packet["what"]
        heights.append(y)
    assert heights == sorted(heights) and len(set(heights)) == len(heights), "arrows not top to bottom"


@pytest.mark.parametrize(("capture", "answer", "kind"), [
    ("call", "200", "success"), ("busy", "486", "failure"), ("cancel", "487", "failure")])
def test_the_final_answer_stands_out_in_the_ladder(capture: str, answer: str, kind: str) -> None:
    _, arrows = ladder(evidence(capture))
    final = [a for a in arrows if "final" in a.get("class").split()]
    assert [a.get("data-label").split()[0] for a in final] == [answer]
    assert kind in final[0].get("class").split()
    colour = final[0].find(f"{SVG}line").get("stroke")
    others = {a.find(f"{SVG}line").get("stroke") for a in arrows if a not in final}
    assert colour not in others
    assert float(final[0].find(f"{SVG}line").get("stroke-width")) > max(
        float(a.find(f"{SVG}line").get("stroke-width")) for a in arrows if a not in final)


def test_the_ladder_names_each_column_with_its_address_and_prints_standalone() -> None:
    result = evidence("call", title='1.2 "A call" <INVITE & ACK>')
    svg = ET.fromstring(result["ladder_svg"])
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    for party in PARTIES:
        assert party["name"] in texts and party["address"] in texts
    assert '1.2 "A call" <INVITE & ACK>' in texts  # escaped in the SVG, read back as written
    times = [f"{float(p['_source']['layers']['frame.time_relative'][0]):.6f}"
             for p in json.loads(saved("call", "sip.json"))]
    assert [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "time"] == times  # tshark's, in order
    # Printable and safe to open anywhere: no script, nothing fetched, a white page.
    assert not list(svg.iter(f"{SVG}script"))
    assert "href" not in result["ladder_svg"] and "<style" not in result["ladder_svg"]
    assert svg.find(f"{SVG}rect").get("fill") == "white"


# ---- RTP and RTCP

def test_the_call_has_two_pcmu_streams_one_ssrc_each_way_and_no_loss() -> None:
    streams = evidence("call")["rtp_streams"]
    assert len(streams) == 2
    assert {(s["from"], s["to"]) for s in streams} == {("amine", "chhiny"), ("chhiny", "amine")}
    assert len({s["ssrc"] for s in streams}) == 2
    for stream in streams:
        assert (stream["payload"], stream["payload_type"], stream["encoding"]) == ("g711U", 0, "PCMU/8000")
        assert stream["payload_types"] == [0]
        assert (stream["packets"], stream["lost"], stream["problem"]) == (10, 0, False)
        assert 0 <= stream["max_jitter_ms"] < 5


def test_the_rtp_table_is_tsharks_own() -> None:
    # The same figures, read from tshark's table by splitting its rows on blanks.
    rows = [line.split() for line in saved("call", "rtp-streams.txt").splitlines() if line[:14].strip()[:1].isdigit()]
    by_ssrc = {row[6].lower(): row for row in rows}
    for stream in evidence("call")["rtp_streams"]:
        row = by_ssrc[stream["ssrc"]]
        assert (row[2], row[3], row[4], row[5]) == (*stream["src"].split(":"), *stream["dst"].split(":"))
        assert (row[7], int(row[8]), int(row[9])) == (stream["payload"], stream["packets"], stream["lost"])
        assert float(row[-1]) == stream["max_jitter_ms"]


@pytest.mark.parametrize("capture", ["busy", "cancel"])
def test_an_unanswered_call_has_no_media(capture: str) -> None:
    result = evidence(capture)
    assert result["rtp_streams"] == [] and result["rtcp"] == []


def test_sipp_sends_no_rtcp_and_the_module_invents_none() -> None:
    assert json.loads(saved("call", "media.json"))  # RTP packets are there...
    assert not any("rtcp.pt" in p["_source"]["layers"] for p in json.loads(saved("call", "media.json")))
    assert evidence("call")["rtcp"] == []  # ...and no RTCP, so none is reported


def test_rtcp_is_counted_per_direction_and_owned_like_its_rtp() -> None:
    # No capture of this folder has RTCP (SIPp sends none): tshark's JSON for two compound
    # packets, in the shape the module asks for, tells amine's and chhiny's reports apart.
    def rtcp(src: str, sport: str, dst: str, dport: str, types: list[str]) -> dict[str, Any]:
        return {"_source": {"layers": {"ip.src": [src], "udp.srcport": [sport], "ip.dst": [dst],
                                       "udp.dstport": [dport], "rtcp.pt": types}}}
    media = json.dumps([rtcp(AMINE, "30001", CHHINY, "30011", ["200", "202"]),
                        rtcp(AMINE, "30001", CHHINY, "30011", ["200", "202"]),
                        rtcp(CHHINY, "30011", AMINE, "30001", ["201", "202"])])
    result = lab_capture.evidence(saved("call", "sip.json"), media, saved("call", "rtp-streams.txt"), PARTIES)
    assert result["rtcp"] == [
        {"from": "amine", "to": "chhiny", "src": f"{AMINE}:30001", "dst": f"{CHHINY}:30011",
         "packets": 2, "sender_reports": 2, "receiver_reports": 0},
        {"from": "chhiny", "to": "amine", "src": f"{CHHINY}:30011", "dst": f"{AMINE}:30001",
         "packets": 1, "sender_reports": 0, "receiver_reports": 1}]


# ---- Parties

def test_parties_sharing_an_address_are_told_apart_by_their_sip_port() -> None:
    # Phones run by one SIPp host share its address: amine is the one on port 5060.
    parties = [{"name": "amine", "address": AMINE, "port": 5060},
               {"name": "makuba", "address": AMINE, "port": 5070},
               {"name": "chhiny", "address": CHHINY}]
    assert lab_capture.party_errors(parties) == []
    result = evidence("call", parties)
    assert {m["from"] for m in result["sip"]} == {"amine", "chhiny"}
    columns, _ = ladder(result)
    assert list(columns) == ["amine", "makuba", "chhiny"]
    # RTP comes from another port than SIP: it is amine's because amine's SDP announced it.
    assert {(s["from"], s["to"]) for s in result["rtp_streams"]} == {("amine", "chhiny"), ("chhiny", "amine")}


def test_an_address_that_is_no_party_gets_a_column_of_its_own_and_nothing_is_dropped() -> None:
    result = evidence("call", [{"name": "amine", "address": AMINE}])
    columns, arrows = ladder(result)
    assert list(columns) == ["amine", CHHINY]
    assert len(arrows) == len(tshark_sip("call"))
    assert result["parties"][1] == {"name": CHHINY, "address": CHHINY, "port": None, "known": False}
    assert {s["to"] for s in result["rtp_streams"]} == {"amine", CHHINY}


@pytest.mark.parametrize(("parties", "error"), [
    ([{"name": "a", "address": AMINE}, {"name": "a", "address": CHHINY}],
     "parties[1].name: 'a' is already parties[0]; give each party its own name"),
    ([{"name": "a", "address": AMINE}, {"name": "b", "address": AMINE, "port": 5070}],
     f"parties[0]: {AMINE} is the address of a, b; give each of them its SIP port"),
    ([{"name": "a", "address": AMINE, "port": 5060}, {"name": "b", "address": AMINE, "port": 5060}],
     f"parties: {AMINE}:5060 is given to several parties; give each its own port"),
])
def test_parties_that_cannot_be_told_apart_are_refused(parties: list[dict[str, Any]], error: str) -> None:
    assert lab_capture.party_errors(parties) == [error]


# ---- Output tshark might print that the module must not misread

def test_a_line_of_the_streams_table_that_is_not_a_row_is_an_error_not_a_missing_stream() -> None:
    text = saved("call", "rtp-streams.txt").replace(" 0 (0.0%)", " lost", 1)
    with pytest.raises(lab_capture.TsharkOutputError, match="not a row"):
        lab_capture.read_rtp_streams(text)


def test_a_stream_with_tones_and_dtmf_keeps_both_payload_names() -> None:
    # tshark 4.6.9's row for tests/sipp/make_pcap.py's dtmf_1hash.pcap (PCMU + telephone-event).
    row = ("     0.000000      1.760000        10.0.0.1  6000        10.0.0.2  6000 0x5EED0002  g711U, rtpevent"
           "    89     0 (0.0%)          20.000          20.000          20.000           0.000"
           "           4.678          18.972 ")
    [stream] = lab_capture.read_rtp_streams(row)
    assert (stream["payload"], stream["packets"], stream["lost"], stream["max_jitter_ms"]) == \
        ("g711U, rtpevent", 89, 0, 18.972)


def test_a_packet_with_several_sip_messages_is_refused_rather_than_half_read() -> None:
    packets = json.loads(saved("call", "sip.json"))
    layers = packets[0]["_source"]["layers"]
    layers["sip.CSeq.method"] = ["INVITE", "ACK"]
    with pytest.raises(lab_capture.TsharkOutputError, match="frame 1 holds 2 SIP messages"):
        lab_capture.read_sip(json.dumps(packets))


def test_an_empty_capture_gives_an_empty_ladder() -> None:
    result = lab_capture.evidence("", "[\n]\n", "", PARTIES)
    assert result["sip"] == [] and result["rtp_streams"] == []
    _, arrows = ladder(result)
    assert arrows == []


# ---- With tshark: the module end to end, as Ansible runs it

def run_module(tmp_path: Path, **args: Any) -> dict[str, Any]:
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True)
    return json.loads(done.stdout)


if shutil.which("tshark"):

    @pytest.mark.parametrize("capture", ["call", "busy", "cancel"])
    def test_the_module_reads_each_pcap_as_its_saved_tshark_output_says(tmp_path: Path, capture: str) -> None:
        result = run_module(tmp_path, pcap=str(CAPTURES / f"{capture}.pcap"), parties=PARTIES, title=capture)
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is False and result["tshark_version"].startswith("TShark")
        expected = evidence(capture, title=capture)
        for key in ("sip", "rtp_streams", "rtcp", "parties", "ladder_svg"):
            assert result[key] == expected[key], f"{key} differs: the saved outputs are stale (make_captures.py)"

    def test_the_module_refuses_parties_it_cannot_tell_apart(tmp_path: Path) -> None:
        result = run_module(tmp_path, pcap=str(CAPTURES / "call.pcap"),
                            parties=[{"name": "a", "address": AMINE}, {"name": "b", "address": AMINE}])
        assert result["failed"] and "give each of them its SIP port" in result["msg"]

    def test_the_module_says_which_capture_is_missing(tmp_path: Path) -> None:
        result = run_module(tmp_path, pcap=str(tmp_path / "none.pcap"), parties=PARTIES)
        assert result["failed"] and result["msg"] == f"{tmp_path / 'none.pcap'}: no such capture on this host"
