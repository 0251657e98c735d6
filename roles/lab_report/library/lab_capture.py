#!/usr/bin/python
"""Turn one capture of the lab report into its evidence: SIP messages, ladder diagram, RTP streams."""

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_capture
short_description: Read a capture with tshark into a SIP ladder diagram and an RTP streams table
description:
  - Reads O(pcap) with C(tshark) on the host that holds it (the lab's tester) and returns
    what a student reads in Wireshark for one question of the lab report, the SIP messages
    in order, a SIP ladder diagram as SVG, the RTP streams table and the RTCP packets per
    direction.
  - Every value comes from tshark's own dissectors and its C(rtp,streams) statistics, the
    same ones Wireshark shows; the module decodes no packet itself.
  - RTP is found by tshark's RTP heuristic as well as from the SDP, so a capture started after
    the INVITE still shows its streams.
  - A packet is put on a party's column by its address, or by address and port where
    several parties share an address (phones run by one SIPp host). RTP and RTCP belong to
    the party whose SDP announced their address and port (RTCP, the port above), or else to the
    party at their address. An endpoint that is no party is named by its address, and gets
    a column of its own in the diagram. Nothing is left out.
  - Reads only; never changes the host. SIP over TCP with several messages in one segment
    is refused (the lab's SIP runs over UDP).
options:
  pcap:
    description: Path of the capture (pcap or pcapng) on the host.
    type: path
    required: true
  parties:
    description:
      - The columns of the ladder diagram, left to right. A party has a O(parties[].name), an
        O(parties[].address) and, only where several parties share an address, a
        O(parties[].port) (its SIP port) that tells them apart.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: What the diagram calls the party (a user, C(vm-a)).
        type: str
        required: true
      address:
        description: IPv4 or IPv6 address of the party, as tshark prints it.
        type: str
        required: true
      port:
        description: SIP port of the party; required when another party has the same address.
        type: int
  title:
    description: Heading of the diagram (the report's question).
    type: str
    default: ""
requirements:
  - tshark (Debian package C(tshark)) on the host
author: asterisk-lab
"""

EXAMPLES = r"""
- name: Read the capture of the call question
  lab_capture:
    pcap: /tmp/report/call.pcap
    title: "1.2 A call: INVITE, 100, 180, 200, ACK, BYE"
    parties:
      - {name: amine, address: 172.30.154.110, port: 5061}
      - {name: vm-a, address: 172.30.154.153}
      - {name: chhiny, address: 172.30.154.110, port: 5062}
  register: lab_report_call
"""

RETURN = r"""
sip:
  description: The SIP messages in capture order.
  returned: always
  type: list
  elements: dict
  sample:
    - {frame: 1, time: 0.0, from: amine, to: vm-a, src: "172.30.154.110:5061", dst: "172.30.154.153:5060",
       label: INVITE, method: INVITE, status: null, reason: null, cseq_method: INVITE,
       call_id: "1-683@172.30.154.110", resent: false, final: false, sdp_media: ["audio 30000 RTP/AVP 0 101"]}
    - {frame: 4, time: 0.307897, from: vm-a, to: amine, label: "200 OK (INVITE)", method: null, status: 200,
       reason: OK, cseq_method: INVITE, final: true}
ladder_svg:
  description:
    - The SIP ladder diagram, a standalone SVG document (no script, styles inline, white
      background, readable when printed).
    - One C(g class="party") per column (C(data-name), C(data-address), C(data-x)); one
      C(g class="msg") per SIP message in order (C(data-from), C(data-to), C(data-label),
      C(data-frame), C(data-time)); final answers to an INVITE also have the class C(final)
      and C(success) (2xx) or C(failure).
  returned: always
  type: str
rtp_streams:
  description:
    - tshark's RTP streams table (Wireshark's Telephony > RTP > RTP Streams), by start time,
      with each stream's parties and the payload type numbers its packets carry.
    - C(encoding) is the name the SDP that announced the stream gives its first payload type
      (C(PCMU/8000)), or null where no rtpmap names it.
  returned: always
  type: list
  elements: dict
  sample:
    - {ssrc: "0x5eed0001", payload: g711U, payload_type: 0, payload_types: [0], encoding: PCMU/8000,
       from: amine, to: chhiny, src: "172.30.250.110:30000", dst: "172.30.250.111:30010",
       packets: 10, lost: 0, lost_percent: 0.0, max_delta_ms: 20.024, max_jitter_ms: 0.009,
       mean_jitter_ms: 0.005, start: 0.316172, end: 0.496157, problem: false}
rtcp:
  description: RTCP packets per direction, with how many carry a sender report (type 200) and a receiver report (201).
  returned: always
  type: list
  elements: dict
  sample:
    - {from: amine, to: vm-a, src: "172.30.154.110:30001", dst: "172.30.154.153:10001", packets: 3,
       sender_reports: 3, receiver_reports: 0}
parties:
  description: The diagram's columns, the given parties then any other endpoint (C(known) false).
  returned: always
  type: list
  elements: dict
tshark_version:
  description: First line of C(tshark --version).
  returned: always
  type: str
"""

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.basic import AnsibleModule

# ---- What tshark is asked

# SIP (or RTP) quoted back inside an ICMP error would count twice and carries two address pairs.
NOT_ICMP = "not icmp and not icmpv6"

SIP_FIELDS = (
    "frame.number", "frame.time_relative",
    "ip.src", "ipv6.src", "udp.srcport", "tcp.srcport",
    "ip.dst", "ipv6.dst", "udp.dstport", "tcp.dstport",
    "sip.Method", "sip.Status-Code", "sip.Status-Line", "sip.CSeq.method", "sip.Call-ID", "sip.resend",
    "sdp.connection_info.address", "sdp.media.port", "sdp.media", "sdp.media_attr",
)

MEDIA_FIELDS = (
    "frame.number", "ip.src", "ipv6.src", "udp.srcport", "ip.dst", "ipv6.dst", "udp.dstport",
    "rtp.ssrc", "rtp.p_type", "rtcp.pt",
)

# Options of every tshark run: no name resolution (no DNS query leaves the host, addresses stay
# addresses), and RTP recognised by its header too, not only where an SDP announced it.
TSHARK_COMMON = ("-n", "--enable-heuristic", "rtp_udp")


def _fields(names: Iterable[str]) -> list[str]:
    return [argument for name in names for argument in ("-e", name)]


# Each read of a capture, by the suffix its saved output has in tests/unit/captures/.
TSHARK_READS: dict[str, list[str]] = {
    "sip.json": ["-Y", f"sip and {NOT_ICMP}", "-T", "json", *_fields(SIP_FIELDS)],
    "media.json": ["-Y", f"(rtp or rtcp) and {NOT_ICMP}", "-T", "json", *_fields(MEDIA_FIELDS)],
    "rtp-streams.txt": ["-q", "-z", "rtp,streams"],
}


def tshark_argv(tshark: str, pcap: str, read: str) -> list[str]:
    """The command line of one read of ``pcap`` (a key of TSHARK_READS)."""
    return [tshark, "-r", pcap, *TSHARK_COMMON, *TSHARK_READS[read]]


class TsharkOutputError(ValueError):
    """tshark printed something this module does not know how to read."""


# ---- Parties: who sent a packet

@dataclass(frozen=True)
class Party:
    name: str
    address: str
    port: int | None = None
    known: bool = True

    @property
    def shown_address(self) -> str:
        return self.address if self.port is None else endpoint(self.address, self.port)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "port": self.port, "known": self.known}


def endpoint(address: str, port: int | None) -> str:
    """``address:port`` the way Wireshark writes it (IPv6 in brackets)."""
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def party_errors(parties: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every reason the parties cannot be told apart, each naming the party and the fix."""
    errors: list[str] = []
    names: dict[str, int] = {}
    by_address: dict[str, list[int]] = {}
    for index, party in enumerate(parties):
        name, address = str(party.get("name") or ""), str(party.get("address") or "")
        if not name or not address:
            errors.append(f"parties[{index}]: give both a name and an address")
            continue
        if name in names:
            errors.append(f"parties[{index}].name: {name!r} is already parties[{names[name]}]; "
                          "give each party its own name")
        names.setdefault(name, index)
        by_address.setdefault(address, []).append(index)
    for address, indexes in by_address.items():
        if len(indexes) < 2:
            continue
        portless = [i for i in indexes if parties[i].get("port") is None]
        if portless:
            errors.append(
                f"parties[{', '.join(map(str, portless))}]: {address} is the address of "
                f"{', '.join(str(parties[i]['name']) for i in indexes)}; give each of them its SIP port")
        ports = [parties[i].get("port") for i in indexes if parties[i].get("port") is not None]
        for port in sorted({p for p in ports if ports.count(p) > 1}):
            errors.append(f"parties: {endpoint(address, port)} is given to several parties; give each its own port")
    return errors


class PartyFinder:
    """Which party an address and port belong to, learning the endpoints nobody named.

    The columns are the given parties in their order, then each unknown address in the order
    it first sends or receives SIP, so the diagram reads left to right as the caller chose.
    """

    def __init__(self, parties: Sequence[Mapping[str, Any]]) -> None:
        self.columns: list[Party] = [
            Party(str(p["name"]), str(p["address"]), None if p.get("port") is None else int(p["port"]))
            for p in parties
        ]
        self._exact = {(p.address, p.port): p for p in self.columns if p.port is not None}
        self._by_address = {p.address: p for p in self.columns if p.port is None}
        # (address, port) an SDP announced -> the party that sent that SDP.
        self._media_owners: dict[tuple[str, int], Party] = {}

    def find(self, address: str, port: int | None, add_column: bool = True) -> Party:
        known = self._exact.get((address, port)) or self._by_address.get(address)
        if known:
            return known
        stranger = Party(address, address, known=False)
        if add_column:
            self._by_address[address] = stranger
            self.columns.append(stranger)
        return stranger

    def learn_media(self, announced: Iterable[tuple[str, int]], owner: Party) -> None:
        for media_endpoint in announced:
            self._media_owners.setdefault(media_endpoint, owner)

    def find_media(self, address: str, port: int, rtcp: bool = False) -> Party:
        # RTCP uses the port above its RTP port unless the SDP says otherwise (RFC 3550, 11).
        owner = self._media_owners.get((address, port - 1 if rtcp else port))
        return owner or self.find(address, None, add_column=False)


# ---- Reading tshark's output

def _packets(json_text: str) -> list[dict[str, list[str]]]:
    """The ``layers`` of each packet of ``tshark -T json -e ...`` (every value a list of strings)."""
    if not json_text.strip():
        return []  # some tshark versions print nothing at all when no packet matched
    try:
        packets = json.loads(json_text)
    except ValueError as error:
        raise TsharkOutputError(f"tshark's JSON does not parse: {error}") from error
    return [packet["_source"]["layers"] for packet in packets]


def _one(layers: Mapping[str, list[str]], *names: str) -> str | None:
    """The first value of the first of ``names`` the packet has (IPv4 or IPv6, UDP or TCP)."""
    for name in names:
        if layers.get(name):
            return layers[name][0]
    return None


def _port(layers: Mapping[str, list[str]], *names: str) -> int | None:
    value = _one(layers, *names)
    return None if value is None else int(value)


@dataclass
class SipPacket:
    """One SIP message as tshark dissected it."""
    frame: int
    time: float
    src: str
    src_port: int | None
    dst: str
    dst_port: int | None
    method: str | None
    status: int | None
    reason: str | None
    cseq_method: str | None
    call_id: str | None
    resent: bool
    sdp_media: list[str] = field(default_factory=list)
    sdp_attributes: list[str] = field(default_factory=list)
    sdp_endpoints: list[tuple[str, int]] = field(default_factory=list)


def _sdp_endpoints(addresses: list[str], ports: list[str]) -> list[tuple[str, int]]:
    """Where the SDP asks for its media: each m= port with its c= address.

    tshark lists c= lines flat: one at session level for every m=, one per m=, or both
    (session first). A port of 0 is a refused stream.
    """
    if not addresses:
        return []
    if len(addresses) == len(ports) + 1:
        addresses = addresses[1:]
    if len(addresses) != len(ports):
        addresses = [addresses[0]] * len(ports)
    return [(address, int(port)) for address, port in zip(addresses, ports) if int(port)]


def read_sip(json_text: str) -> list[SipPacket]:
    """The SIP messages of tshark's ``sip.json`` read, in capture order."""
    messages: list[SipPacket] = []
    for layers in _packets(json_text):
        frame = int(layers["frame.number"][0])
        if len(layers.get("sip.CSeq.method", [])) > 1:
            raise TsharkOutputError(
                f"frame {frame} holds {len(layers['sip.CSeq.method'])} SIP messages (SIP over TCP?): "
                "this module reads one message per packet")
        status = _one(layers, "sip.Status-Code")
        status_line = _one(layers, "sip.Status-Line")
        # "SIP/2.0 180 Ringing": tshark has no field of its own for the reason phrase.
        reason = status_line.split(" ", 2)[2] if status_line and status_line.count(" ") >= 2 else None
        messages.append(SipPacket(
            frame=frame,
            time=float(layers["frame.time_relative"][0]),
            src=_one(layers, "ip.src", "ipv6.src") or "?",
            src_port=_port(layers, "udp.srcport", "tcp.srcport"),
            dst=_one(layers, "ip.dst", "ipv6.dst") or "?",
            dst_port=_port(layers, "udp.dstport", "tcp.dstport"),
            method=_one(layers, "sip.Method"),
            status=None if status is None else int(status),
            reason=reason,
            cseq_method=_one(layers, "sip.CSeq.method"),
            call_id=_one(layers, "sip.Call-ID"),
            # tshark 4 prints booleans as True/False in JSON, older ones as 1/0.
            resent=(_one(layers, "sip.resend") or "").lower() in ("true", "1"),
            sdp_media=list(layers.get("sdp.media", [])),
            sdp_attributes=list(layers.get("sdp.media_attr", [])),
            sdp_endpoints=_sdp_endpoints(layers.get("sdp.connection_info.address", []),
                                         layers.get("sdp.media.port", [])),
        ))
    return messages


# One row of `tshark -z rtp,streams`: start, end, source, port, destination, port, SSRC,
# payload (tshark's short name, e.g. g711U), packets, lost "N (P%)", min/mean/max delta,
# min/mean/max jitter (ms), then "X" when Wireshark flags a problem.
_NUMBER = r"-?\d+(?:\.\d+)?"
_STREAM_ROW = re.compile(
    rf"^\s*(?P<start>{_NUMBER})\s+(?P<end>{_NUMBER})\s+(?P<src>\S+)\s+(?P<src_port>\d+)\s+"
    rf"(?P<dst>\S+)\s+(?P<dst_port>\d+)\s+(?P<ssrc>0x[0-9A-Fa-f]+)\s+(?P<payload>\S.*?)\s+"
    rf"(?P<packets>\d+)\s+(?P<lost>-?\d+)\s+\((?P<lost_percent>{_NUMBER})%\)\s+"
    rf"(?P<min_delta>{_NUMBER})\s+(?P<mean_delta>{_NUMBER})\s+(?P<max_delta>{_NUMBER})\s+"
    rf"(?P<min_jitter>{_NUMBER})\s+(?P<mean_jitter>{_NUMBER})\s+(?P<max_jitter>{_NUMBER})"
    rf"(?:\s+(?P<problem>X))?\s*$"
)


def read_rtp_streams(text: str) -> list[dict[str, Any]]:
    """The rows of tshark's RTP streams table, as tshark wrote them.

    A line that is neither a row, the heading nor a rule is an error rather than skipped:
    a stream silently missing from the table would read as a stream that does not exist.
    """
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("=", "Start time")):
            continue
        match = _STREAM_ROW.match(line)
        if not match:
            raise TsharkOutputError(f"not a row of tshark's RTP streams table: {line.strip()!r}")
        row = match.groupdict()
        rows.append({
            "start": float(row["start"]), "end": float(row["end"]),
            "src_address": row["src"], "src_port": int(row["src_port"]),
            "dst_address": row["dst"], "dst_port": int(row["dst_port"]),
            "ssrc": f"0x{int(row['ssrc'], 16):08x}", "payload": row["payload"],
            "packets": int(row["packets"]), "lost": int(row["lost"]),
            "lost_percent": float(row["lost_percent"]),
            "max_delta_ms": float(row["max_delta"]),
            "mean_jitter_ms": float(row["mean_jitter"]), "max_jitter_ms": float(row["max_jitter"]),
            "problem": row["problem"] == "X",
        })
    return rows


_StreamKey = tuple[str, int, str, int, str]  # source, port, destination, port, SSRC


def read_media(json_text: str) -> tuple[dict[_StreamKey, list[int]], list[dict[str, Any]]]:
    """From tshark's ``media.json`` read: the payload types of each RTP stream in order of
    appearance, and each RTCP packet's addresses and report types."""
    payload_types: dict[_StreamKey, list[int]] = {}
    rtcp_packets: list[dict[str, Any]] = []
    for layers in _packets(json_text):
        src, dst = _one(layers, "ip.src", "ipv6.src") or "?", _one(layers, "ip.dst", "ipv6.dst") or "?"
        src_port, dst_port = _port(layers, "udp.srcport") or 0, _port(layers, "udp.dstport") or 0
        if layers.get("rtp.ssrc"):
            key = (src, src_port, dst, dst_port, f"0x{int(layers['rtp.ssrc'][0], 16):08x}")
            seen = payload_types.setdefault(key, [])
            for payload_type in layers.get("rtp.p_type", []):
                if int(payload_type) not in seen:
                    seen.append(int(payload_type))
        if layers.get("rtcp.pt"):
            rtcp_packets.append({"src": src, "src_port": src_port, "dst": dst, "dst_port": dst_port,
                                 "types": [int(t) for t in layers["rtcp.pt"]]})
    return payload_types, rtcp_packets


# ---- Evidence: tshark's reading, told with the parties' names

def message_label(packet: SipPacket) -> str:
    """What the arrow says: the method, or the status and reason.

    A final answer names its request, since "200 OK" answers an INVITE, a BYE and a CANCEL
    alike; a provisional answer (100, 180) is to the INVITE, and stays short as in Wireshark.
    """
    if packet.method:
        return packet.method
    label = f"{packet.status} {packet.reason}" if packet.reason else str(packet.status)
    if packet.status is not None and (packet.status >= 200 or packet.cseq_method != "INVITE"):
        label += f" ({packet.cseq_method})"
    return label


def is_final_answer(packet: SipPacket) -> bool:
    """A final answer to an INVITE: where the call was answered or refused."""
    return packet.method is None and packet.status is not None and packet.status >= 200 \
        and packet.cseq_method == "INVITE"


def sip_messages(packets: Sequence[SipPacket], finder: PartyFinder) -> list[dict[str, Any]]:
    messages = []
    for packet in packets:
        sender = finder.find(packet.src, packet.src_port)
        receiver = finder.find(packet.dst, packet.dst_port)
        finder.learn_media(packet.sdp_endpoints, sender)
        messages.append({
            "frame": packet.frame, "time": packet.time,
            "from": sender.name, "to": receiver.name,
            "src": endpoint(packet.src, packet.src_port), "dst": endpoint(packet.dst, packet.dst_port),
            "label": message_label(packet), "method": packet.method, "status": packet.status,
            "reason": packet.reason, "cseq_method": packet.cseq_method, "call_id": packet.call_id,
            "resent": packet.resent, "final": is_final_answer(packet),
            "sdp_media": packet.sdp_media, "sdp_attributes": packet.sdp_attributes,
        })
    return messages


def _rtpmaps(packets: Sequence[SipPacket]) -> dict[tuple[str, int], dict[int, str]]:
    """For each media endpoint an SDP announced, its payload type names (a=rtpmap:0 PCMU/8000)."""
    names: dict[tuple[str, int], dict[int, str]] = {}
    for packet in packets:
        rtpmap = {}
        for attribute in packet.sdp_attributes:
            match = re.match(r"rtpmap:(\d+)\s+(\S+)", attribute)
            if match:
                rtpmap[int(match[1])] = match[2]
        for media_endpoint in packet.sdp_endpoints:
            names.setdefault(media_endpoint, rtpmap)
    return names


def rtp_streams(rows: Sequence[Mapping[str, Any]], payload_types: Mapping[_StreamKey, list[int]],
                packets: Sequence[SipPacket], finder: PartyFinder) -> list[dict[str, Any]]:
    rtpmaps = _rtpmaps(packets)
    streams = []
    for row in sorted(rows, key=lambda r: r["start"]):
        key = (row["src_address"], row["src_port"], row["dst_address"], row["dst_port"], row["ssrc"])
        types = payload_types.get(key, [])
        # The receiver's SDP says what it accepts; the sender's, for a one-way capture.
        rtpmap = rtpmaps.get((row["dst_address"], row["dst_port"])) \
            or rtpmaps.get((row["src_address"], row["src_port"])) or {}
        streams.append({
            "ssrc": row["ssrc"], "payload": row["payload"],
            "payload_type": types[0] if types else None, "payload_types": types,
            "encoding": rtpmap.get(types[0]) if types else None,
            "from": finder.find_media(row["src_address"], row["src_port"]).name,
            "to": finder.find_media(row["dst_address"], row["dst_port"]).name,
            "src": endpoint(row["src_address"], row["src_port"]),
            "dst": endpoint(row["dst_address"], row["dst_port"]),
            **{name: row[name] for name in ("packets", "lost", "lost_percent", "max_delta_ms",
                                             "max_jitter_ms", "mean_jitter_ms", "start", "end", "problem")},
        })
    return streams


# RTCP packet types, RFC 3550 section 12.1.
RTCP_SENDER_REPORT = 200
RTCP_RECEIVER_REPORT = 201


def rtcp_directions(rtcp_packets: Sequence[Mapping[str, Any]], finder: PartyFinder) -> list[dict[str, Any]]:
    directions: dict[tuple[str, str], dict[str, Any]] = {}
    for packet in rtcp_packets:
        src, dst = endpoint(packet["src"], packet["src_port"]), endpoint(packet["dst"], packet["dst_port"])
        direction = directions.setdefault((src, dst), {
            "from": finder.find_media(packet["src"], packet["src_port"], rtcp=True).name,
            "to": finder.find_media(packet["dst"], packet["dst_port"], rtcp=True).name,
            "src": src, "dst": dst, "packets": 0, "sender_reports": 0, "receiver_reports": 0,
        })
        direction["packets"] += 1
        direction["sender_reports"] += RTCP_SENDER_REPORT in packet["types"]
        direction["receiver_reports"] += RTCP_RECEIVER_REPORT in packet["types"]
    return list(directions.values())


# ---- The ladder diagram

SVG_NS = "http://www.w3.org/2000/svg"
TIME_WIDTH = 90        # the time column, left of the first party
COLUMN_WIDTH = 230     # room for "487 Request Terminated (INVITE)" between two lifelines
HEADER_HEIGHT = 64     # a party's name and address
ROW_HEIGHT = 40        # a label above its arrow, the SDP's m= line below
MARGIN = 16
# Colours print as distinct greys too; final answers are also thicker and bold.
INK = "#1a1a1a"           # requests, names
ANSWER_INK = "#1f4e9c"    # responses, dashed
SUCCESS_INK = "#1b7f3a"   # a 2xx final answer to an INVITE
FAILURE_INK = "#c0281f"   # any other final answer to an INVITE (486, 487, 401...)
QUIET_INK = "#6b6b6b"     # addresses, times, SDP, lifelines
# A white outline under a label keeps it readable where it crosses the lifeline of a party
# the arrow passes over.
HALO = {"stroke": "white", "stroke_width": 4, "paint_order": "stroke", "stroke_linejoin": "round"}


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: Any) -> ET.Element:
    element = ET.SubElement(parent, tag, {name.rstrip("_").replace("_", "-"): str(value)
                                          for name, value in attributes.items()})
    if text is not None:
        element.text = text
    return element


def _arrow(group: ET.Element, x1: float, x2: float, y: float, colour: str, width: float, dashed: bool) -> None:
    """A horizontal arrow from x1 to x2, its head drawn as a triangle (no marker: every
    renderer and printer draws a polygon the same way)."""
    direction = 1 if x2 > x1 else -1
    head = 9
    line = {"x1": x1, "y1": y, "x2": x2 - direction * head, "y2": y, "stroke": colour, "stroke_width": width}
    if dashed:
        line["stroke_dasharray"] = "6 4"
    _sub(group, "line", **line)
    _sub(group, "polygon", fill=colour,
         points=f"{x2},{y} {x2 - direction * head},{y - 4.5} {x2 - direction * head},{y + 4.5}")


def ladder_svg(messages: Sequence[Mapping[str, Any]], columns: Sequence[Party], title: str = "") -> str:
    """The SIP ladder diagram: one lifeline per party, one arrow per message, top to bottom."""
    title_height = 28 if title else 0
    top = MARGIN + title_height + HEADER_HEIGHT
    width = TIME_WIDTH + COLUMN_WIDTH * max(len(columns), 1) + MARGIN
    height = top + ROW_HEIGHT * (len(messages) + 1) + MARGIN
    x_of = {party.name: TIME_WIDTH + COLUMN_WIDTH * index + COLUMN_WIDTH / 2 for index, party in enumerate(columns)}

    svg = ET.Element("svg", {
        "xmlns": SVG_NS, "version": "1.1", "width": str(width), "height": str(height),
        "viewBox": f"0 0 {width} {height}", "font-family": "DejaVu Sans, Arial, sans-serif",
        "font-size": "12", "role": "img",
    })
    _sub(svg, "title", title or "SIP ladder diagram")
    _sub(svg, "rect", width=width, height=height, fill="white")
    if title:
        _sub(svg, "text", title, x=MARGIN, y=MARGIN + 16, font_size=15, font_weight="bold", fill=INK)

    _sub(svg, "text", "time (s)", x=TIME_WIDTH - 10, y=top - 12, text_anchor="end", fill=QUIET_INK)
    for party in columns:
        x = x_of[party.name]
        group = _sub(svg, "g", class_="party", data_name=party.name, data_address=party.shown_address,
                     data_known=str(party.known).lower(), data_x=x)
        _sub(group, "text", party.name, x=x, y=MARGIN + title_height + 20, text_anchor="middle",
             font_size=14, font_weight="bold", fill=INK)
        _sub(group, "text", party.shown_address if party.known else f"{party.address} (not a party)",
             x=x, y=MARGIN + title_height + 38, text_anchor="middle", fill=QUIET_INK)
        _sub(group, "line", class_="lifeline", x1=x, y1=top - 6, x2=x, y2=height - MARGIN,
             stroke=QUIET_INK, stroke_width=1, stroke_dasharray="2 3")

    for index, message in enumerate(messages):
        y = top + ROW_HEIGHT * (index + 1) - 12
        classes = ["msg", "request" if message["method"] else "response"]
        colour, width_, weight = (INK if message["method"] else ANSWER_INK), 1.4, "normal"
        if message["final"]:
            success = 200 <= message["status"] < 300
            classes += ["final", "success" if success else "failure"]
            colour, width_, weight = (SUCCESS_INK if success else FAILURE_INK), 2.6, "bold"
        if message["resent"]:
            classes.append("resent")
        group = _sub(svg, "g", class_=" ".join(classes), data_from=message["from"], data_to=message["to"],
                     data_label=message["label"], data_frame=message["frame"], data_time=message["time"],
                     data_call_id=message["call_id"] or "")
        _sub(group, "title", f"frame {message['frame']}: {message['src']} -> {message['dst']}, "
                             f"Call-ID {message['call_id']}")
        # Microseconds, as Wireshark's time column: a 100 Trying often follows its INVITE
        # within the same millisecond.
        _sub(group, "text", f"{message['time']:.6f}", x=TIME_WIDTH - 10, y=y + 4, text_anchor="end",
             fill=QUIET_INK, class_="time")
        x1, x2 = x_of[message["from"]], x_of[message["to"]]
        shown = message["label"] + (" (resent)" if message["resent"] else "")
        if x1 == x2:
            # A party talking to itself (two processes behind one address): a loop to the right.
            _sub(group, "path", d=f"M {x1} {y - 8} h 30 v 14 h -24", fill="none", stroke=colour,
                 stroke_width=width_)
            _sub(group, "polygon", fill=colour, points=f"{x1},{y + 6} {x1 + 8},{y + 1.5} {x1 + 8},{y + 10.5}")
            _sub(group, "text", shown, x=x1 + 36, y=y + 2, fill=colour, font_weight=weight)
            continue
        _arrow(group, x1, x2, y, colour, width_, dashed=not message["method"])
        _sub(group, "text", shown, x=(x1 + x2) / 2, y=y - 6, text_anchor="middle", fill=colour,
             font_weight=weight, **HALO)
        if message["sdp_media"]:
            _sub(group, "text", "SDP " + " | ".join(message["sdp_media"]), x=(x1 + x2) / 2, y=y + 14,
                 text_anchor="middle", fill=QUIET_INK, font_size=10, **HALO)
    return ET.tostring(svg, encoding="unicode") + "\n"


def evidence(sip_json: str, media_json: str, rtp_streams_text: str,
             parties: Sequence[Mapping[str, Any]], title: str = "") -> dict[str, Any]:
    """Everything the module returns but tshark's version, from tshark's three outputs."""
    finder = PartyFinder(parties)
    packets = read_sip(sip_json)
    messages = sip_messages(packets, finder)
    payload_types, rtcp_packets = read_media(media_json)
    return {
        "sip": messages,
        "ladder_svg": ladder_svg(messages, finder.columns, title),
        "rtp_streams": rtp_streams(read_rtp_streams(rtp_streams_text), payload_types, packets, finder),
        "rtcp": rtcp_directions(rtcp_packets, finder),
        "parties": [party.as_dict() for party in finder.columns],
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "pcap": {"type": "path", "required": True},
            "parties": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "address": {"type": "str", "required": True},
                "port": {"type": "int"},
            }},
            "title": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    pcap, parties = module.params["pcap"], module.params["parties"]
    errors = party_errors(parties)
    if errors:
        module.fail_json(msg="; ".join(errors))
    if not os.path.isfile(pcap):
        module.fail_json(msg=f"{pcap}: no such capture on this host")
    tshark = module.get_bin_path("tshark", required=True)
    # The C locale keeps tshark's decimal points points: a French host would print 0,316.
    locale = {"LC_ALL": "C", "LANG": "C"}
    _, version, _ = module.run_command([tshark, "--version"], environ_update=locale)
    outputs: dict[str, str] = {}
    for read in TSHARK_READS:
        command = tshark_argv(tshark, pcap, read)
        rc, stdout, stderr = module.run_command(command, environ_update=locale)
        if rc != 0:
            module.fail_json(msg=f"tshark could not read {pcap}: {stderr.strip()}", cmd=command, rc=rc)
        outputs[read] = stdout
    try:
        result = evidence(outputs["sip.json"], outputs["media.json"], outputs["rtp-streams.txt"],
                          parties, module.params["title"])
    except (TsharkOutputError, KeyError, ValueError) as error:
        module.fail_json(msg=f"{pcap}: cannot read tshark's output: {error}")
    module.exit_json(changed=False, tshark_version=version.splitlines()[0] if version else "", **result)


if __name__ == "__main__":
    main()
