"""Unit tests for tests/sipp/make_pcap.py: pure Python, no network, no SIPp."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections import OrderedDict

import pytest

SIPP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "sipp")
sys.path.insert(0, SIPP_DIR)

import make_pcap  # noqa: E402


def rtp_of(path: str) -> list:
    return [make_pcap.parse_rtp(p.payload) for p in make_pcap.read_pcap(path)]


@pytest.fixture()
def tone(tmp_path) -> str:
    return make_pcap.make_tone(str(tmp_path), seconds=3.0)


# --------------------------------------------------------------------------- G.711


def test_ulaw_known_codes() -> None:
    assert make_pcap.linear_to_ulaw(0) == 0xFF
    assert make_pcap.linear_to_ulaw(32767) == 0x80
    assert make_pcap.linear_to_ulaw(-32768) == 0x00
    assert make_pcap.ulaw_to_linear(0xFF) == 0
    assert make_pcap.ulaw_to_linear(0x80) == 32124
    assert make_pcap.ulaw_to_linear(0x00) == -32124


def test_ulaw_round_trip_is_within_quantisation() -> None:
    for value in range(-32768, 32768, 97):
        decoded = make_pcap.ulaw_to_linear(make_pcap.linear_to_ulaw(value))
        clipped = max(-32124, min(32124, value))  # the largest µ-law magnitude
        assert abs(decoded - clipped) <= max(4, abs(clipped) // 32)
    for code in range(256):  # decoding then encoding gives the code back (but -0)
        if code != 0x7F:
            assert make_pcap.linear_to_ulaw(make_pcap.ulaw_to_linear(code)) == code


# --------------------------------------------------------------------------- tone


def test_tone_file_is_ethernet_pcap(tone: str) -> None:
    with open(tone, "rb") as f:
        header = f.read(24)
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", header)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)


def test_tone_packet_count_timing_and_headers(tone: str) -> None:
    udp = make_pcap.read_pcap(tone)
    assert len(udp) == 150  # 3 s of 20 ms packets
    assert [round(p.time, 3) for p in udp[:3]] == [0.0, 0.02, 0.04]
    rtp = [make_pcap.parse_rtp(p.payload) for p in udp]
    assert {r.payload_type for r in rtp} == {0}
    assert {len(r.payload) for r in rtp} == {160}
    assert [r.marker for r in rtp[:2]] == [True, False]
    assert all(b.seq == a.seq + 1 for a, b in zip(rtp, rtp[1:]))
    assert all(b.timestamp == a.timestamp + 160 for a, b in zip(rtp, rtp[1:]))
    assert len({r.ssrc for r in rtp}) == 1


def test_tone_payloads_are_distinct(tone: str) -> None:
    payloads = [r.payload for r in rtp_of(tone)]
    assert len(set(payloads)) == len(payloads)


def test_tone_is_loud(tone: str) -> None:
    samples = [make_pcap.ulaw_to_linear(b) for b in rtp_of(tone)[10].payload]
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert (
        rms > 10000
    )  # G.711 full scale is ~32124; SIPp's own g711a.pcap is near silence


def test_caller_and_answer_tones_differ(tmp_path) -> None:
    a = rtp_of(make_pcap.make_tone(str(tmp_path), 1.0, "tone_pcmu.pcap"))
    b = rtp_of(make_pcap.make_tone(str(tmp_path), 1.0, "tone2_pcmu.pcap"))
    assert not {r.payload for r in a} & {r.payload for r in b}


# --------------------------------------------------------------------------- DTMF


def events(path: str) -> "OrderedDict[int, list]":
    """RFC 2833 packets grouped by event (RTP timestamp)."""
    grouped: "OrderedDict[int, list]" = OrderedDict()
    for r in rtp_of(path):
        if r.payload_type == 101:
            grouped.setdefault(r.timestamp, []).append(r)
    return grouped


def test_dtmf_one_event_per_key_even_when_repeated(tmp_path) -> None:
    path = make_pcap.make_dtmf(str(tmp_path), "1009#*")
    assert os.path.basename(path) == "dtmf_1009hashstar.pcap"
    grouped = events(path)
    assert len(grouped) == 6  # "00" is two events: each key has its own timestamp
    codes = [pkts[0].payload[0] for pkts in grouped.values()]
    assert codes == [1, 0, 0, 9, 11, 10]


def test_dtmf_event_packets(tmp_path) -> None:
    path = make_pcap.make_dtmf(str(tmp_path), "55", key_ms=200)
    for pkts in events(path).values():
        assert pkts[0].marker and not any(p.marker for p in pkts[1:])
        ends = [p for p in pkts if p.payload[1] & 0x80]
        assert len(ends) == 3 and pkts[-3:] == ends  # three end packets, last
        durations = [struct.unpack("!H", p.payload[2:4])[0] for p in pkts]
        assert durations[:10] == [160 * n for n in range(1, 11)]
        assert durations[-3:] == [1600] * 3
        assert {p.payload[1] & 0x3F for p in pkts} == {10}  # volume


def test_dtmf_stream_is_continuous(tmp_path) -> None:
    rtp = rtp_of(
        make_pcap.make_dtmf(str(tmp_path), "12", lead_ms=500, gap_ms=300, tail_ms=500)
    )
    assert all(b.seq == a.seq + 1 for a, b in zip(rtp, rtp[1:]))
    assert (
        rtp[0].payload_type == 0 and rtp[-1].payload_type == 0
    )  # silence around the keys
    assert len({r.ssrc for r in rtp}) == 1
    first_event = next(r for r in rtp if r.payload_type == 101)
    assert first_event.timestamp == 25 * 160  # after 500 ms of lead-in


def test_dtmf_rejects_non_digits(tmp_path) -> None:
    with pytest.raises(ValueError):
        make_pcap.dtmf_packets("12x")
    with pytest.raises(ValueError):
        make_pcap.dtmf_packets("")


# --------------------------------------------------------------------------- reading


def test_read_pcap_linux_cooked_v2(tmp_path) -> None:
    """tcpdump -i any writes LINUX_SLL2 frames: the reader must understand them."""
    rtp = make_pcap.RtpPacket(0.0, 0, False, 7, 160, 1, b"\xff" * 160).to_bytes()
    udp = struct.pack("!HHHH", 40000, 10000, 8 + len(rtp), 0) + rtp
    ip = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            0,
            0,
            64,
            17,
            0,
            bytes([172, 30, 0, 110]),
            bytes([172, 30, 0, 153]),
        )
        + udp
    )
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 4, 6, b"\x02" * 8) + ip
    path = tmp_path / "sll2.pcap"
    path.write_bytes(
        struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 276)
        + struct.pack("<IIII", 5, 250000, len(sll2), len(sll2))
        + sll2
    )
    (pkt,) = make_pcap.read_pcap(str(path))
    assert (pkt.time, pkt.src, pkt.sport, pkt.dst, pkt.dport) == (
        5.25,
        "172.30.0.110",
        40000,
        "172.30.0.153",
        10000,
    )
    assert make_pcap.parse_rtp(pkt.payload).seq == 7


def test_parse_rtp_rejects_non_rtp() -> None:
    assert make_pcap.parse_rtp(b"\x00" * 20) is None
    assert make_pcap.parse_rtp(b"\x80") is None


# --------------------------------------------------------------------------- CLI


def test_cli_writes_tones_and_dtmf(tmp_path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(SIPP_DIR, "make_pcap.py"),
            str(tmp_path),
            "--seconds",
            "2",
            "--dtmf",
            "123",
            "--dtmf",
            "#0",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert [os.path.basename(p) for p in out] == [
        "tone_pcmu.pcap",
        "tone2_pcmu.pcap",
        "tone3_pcmu.pcap",
        "h264.pcap",
        "dtmf_123.pcap",
        "dtmf_hash0.pcap",
    ]
    assert len(make_pcap.read_pcap(str(tmp_path / "tone_pcmu.pcap"))) == 100
    assert len(events(str(tmp_path / "dtmf_hash0.pcap"))) == 2
