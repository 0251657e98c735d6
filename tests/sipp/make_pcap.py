#!/usr/bin/env python3
"""Generate the RTP pcap files that SIPp's ``play_pcap_audio`` replays.

Standard library only (no ``audioop``: it is gone from Python 3.13), so it runs
both inside the tester container and on the controller.

Files
-----
``tone_pcmu.pcap``
    A loud ~1 kHz tone, G.711 µ-law (RTP payload type 0), one packet per 20 ms.
    Every payload is distinct: the packet counter is hidden in the least
    significant mantissa bit of the first 16 samples (inaudible), so an echo
    test can tell *which* packets came back.
``tone2_pcmu.pcap``
    The same at 600 Hz, for the answering side: its payloads differ from
    ``tone_pcmu.pcap``'s, so one phone never mistakes the other's tone for its echo.
``h264.pcap``
    Dummy H.264 video (RTP payload type 99, 25 packets a second, distinct payloads) for
    ``video_call.xml``: Asterisk relays video without decoding it.
``dtmf_<digits>.pcap`` (``*`` and ``#`` spelt ``star`` and ``hash``)
    RFC 2833/4733 telephone events (payload type 101) for a digit string, with
    µ-law silence before, between and after the keys.  Each key is its own
    event with a fresh RTP timestamp, a marker bit on its first packet and
    three end packets, so a repeated digit ("00") is received as two keys.

SIPp replays a pcap byte for byte (only addresses and ports are rewritten), so
whatever is written here is exactly what the PBX receives.

Usage::

    python3 make_pcap.py OUTDIR                      # tone_pcmu.pcap, tone2_pcmu.pcap, h264.pcap, 30 s
    python3 make_pcap.py OUTDIR --seconds 40         # longer tone
    python3 make_pcap.py OUTDIR --dtmf 1234 --dtmf '00#'  # + dtmf_1234.pcap, dtmf_00hash.pcap
"""

from __future__ import annotations

import argparse
import math
import os
import struct
import sys
from typing import Iterable, List, NamedTuple, Sequence

SAMPLE_RATE = 8000
PTIME_MS = 20
SAMPLES_PER_PACKET = SAMPLE_RATE * PTIME_MS // 1000  # 160
PT_PCMU = 0
PT_TELEPHONE_EVENT = 101
ULAW_SILENCE = 0xFF  # µ-law code for 0

# Addresses written into the pcap.  SIPp replaces them when it replays.
SRC_IP = "10.0.0.1"
DST_IP = "10.0.0.2"
SRC_PORT = 6000
DST_PORT = 6000

DTMF_EVENTS = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1


# --------------------------------------------------------------------------- G.711


def linear_to_ulaw(sample: int) -> int:
    """Encode one signed 16-bit linear sample as a G.711 µ-law byte."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, clip) + bias
    exponent = magnitude.bit_length() - 8  # 0..7 since 132 <= magnitude <= 32767
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_to_linear(code: int) -> int:
    """Decode one G.711 µ-law byte to a signed 16-bit linear sample."""
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if code & 0x80 else magnitude


# --------------------------------------------------------------------------- RTP / pcap


class RtpPacket(NamedTuple):
    """One RTP packet and the time (seconds from the start) it is sent."""

    time: float
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes

    def to_bytes(self) -> bytes:
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if self.marker else 0) | self.payload_type,
            self.seq & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc,
        )
        return header + self.payload


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(udp_payload: bytes) -> bytes:
    """Wrap a UDP payload in UDP, IPv4 and Ethernet headers."""
    udp = (
        struct.pack("!HHHH", SRC_PORT, DST_PORT, 8 + len(udp_payload), 0) + udp_payload
    )
    src = bytes(int(x) for x in SRC_IP.split("."))
    dst = bytes(int(x) for x in DST_IP.split("."))
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, dst
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    ether = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return ether + ip + udp


def write_pcap(path: str, packets: Iterable[RtpPacket]) -> int:
    """Write RTP packets to an Ethernet pcap file; return the number written."""
    count = 0
    with open(path, "wb") as out:
        out.write(
            struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)
        )
        for pkt in packets:
            frame = _frame(pkt.to_bytes())
            usec_total = int(round(pkt.time * 1_000_000))
            out.write(
                struct.pack(
                    "<IIII",
                    usec_total // 1_000_000,
                    usec_total % 1_000_000,
                    len(frame),
                    len(frame),
                )
            )
            out.write(frame)
            count += 1
    return count


# --------------------------------------------------------------------------- media


def tone_payload(
    index: int, frequency: float = 1000.0, amplitude: float = 0.7
) -> bytes:
    """The µ-law payload of packet ``index`` of a continuous tone, tagged with ``index``.

    Bit k of ``index`` (k < 16) is written into the lowest mantissa bit of sample k,
    which makes all payloads of a stream of up to 65536 packets (21 minutes) distinct.
    """
    start = index * SAMPLES_PER_PACKET
    peak = amplitude * 32767
    codes = bytearray(
        linear_to_ulaw(
            int(
                round(
                    peak * math.sin(2 * math.pi * frequency * (start + n) / SAMPLE_RATE)
                )
            )
        )
        for n in range(SAMPLES_PER_PACKET)
    )
    for bit in range(16):
        codes[bit] = (codes[bit] & 0xFE) | ((index >> bit) & 1)
    return bytes(codes)


def tone_packets(
    seconds: float,
    frequency: float = 1000.0,
    amplitude: float = 0.7,
    ssrc: int = 0x5EED0001,
    first_seq: int = 1000,
) -> List[RtpPacket]:
    """RTP packets of a tone lasting ``seconds`` (20 ms each, PT 0)."""
    count = int(round(seconds * 1000 / PTIME_MS))
    return [
        RtpPacket(
            i * PTIME_MS / 1000,
            PT_PCMU,
            i == 0,
            first_seq + i,
            i * SAMPLES_PER_PACKET,
            ssrc,
            tone_payload(i, frequency, amplitude),
        )
        for i in range(count)
    ]


def dtmf_packets(
    digits: str,
    key_ms: int = 200,
    gap_ms: int = 300,
    lead_ms: int = 500,
    tail_ms: int = 500,
    volume: int = 10,
    ssrc: int = 0x5EED0002,
    first_seq: int = 2000,
) -> List[RtpPacket]:
    """RFC 2833 events for ``digits``, with µ-law silence before, between and after.

    Each key starts a new event: marker bit set, RTP timestamp = the media clock
    at its start, duration growing by 160 per packet, and three end packets
    (E bit) carrying the final duration.
    """
    bad = [d for d in digits.upper() if d not in DTMF_EVENTS]
    if bad or not digits:
        raise ValueError(f"not DTMF digits: {digits!r}")
    packets: List[RtpPacket] = []
    slot = 0  # 20 ms media-clock slot

    def emit(pt: int, marker: bool, timestamp: int, payload: bytes) -> None:
        packets.append(
            RtpPacket(
                slot * PTIME_MS / 1000,
                pt,
                marker,
                first_seq + len(packets),
                timestamp,
                ssrc,
                payload,
            )
        )

    def silence(ms: int) -> None:
        nonlocal slot
        for _ in range(ms // PTIME_MS):
            emit(
                PT_PCMU,
                not packets,
                slot * SAMPLES_PER_PACKET,
                bytes([ULAW_SILENCE]) * SAMPLES_PER_PACKET,
            )
            slot += 1

    silence(lead_ms)
    key_packets = max(1, key_ms // PTIME_MS)
    for i, digit in enumerate(digits.upper()):
        if i:
            silence(gap_ms)
        event = DTMF_EVENTS[digit]
        start_ts = slot * SAMPLES_PER_PACKET
        for n in range(1, key_packets + 1):
            end = n == key_packets
            duration = n * SAMPLES_PER_PACKET
            payload = struct.pack(
                "!BBH", event, (0x80 if end else 0) | (volume & 0x3F), duration
            )
            emit(PT_TELEPHONE_EVENT, n == 1, start_ts, payload)
            slot += 1
        for _ in range(2):  # end packet sent three times in all (RFC 4733 2.5.1.4)
            emit(PT_TELEPHONE_EVENT, False, start_ts, packets[-1].payload)
            slot += 1
    silence(tail_ms)
    return packets


def dtmf_filename(digits: str) -> str:
    """File name for a digit string, shell-safe: "1*#" -> dtmf_1starhash.pcap."""
    return "dtmf_" + digits.upper().replace("*", "star").replace("#", "hash") + ".pcap"


# --------------------------------------------------------------------------- reading


class UdpPacket(NamedTuple):
    """One captured IPv4/UDP datagram."""

    time: float
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def read_pcap(path: str) -> List[UdpPacket]:
    """Return the IPv4/UDP datagrams of a pcap file, in file order.

    Understands Ethernet, Linux cooked v1/v2 (``tcpdump -i any``) and raw IP link
    types, 802.1Q tags, and micro- or nanosecond timestamps.  Other packets are skipped.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []  # empty, or tcpdump killed before it wrote its header
    for endian in ("<", ">"):
        magic = struct.unpack(endian + "I", data[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        raise ValueError(f"{path}: not a pcap file")
    scale = 1e9 if magic == 0xA1B23C4D else 1e6
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    out: List[UdpPacket] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        udp = _decode_udp(frame, linktype)
        if udp is not None:
            out.append(UdpPacket(sec + frac / scale, *udp))
    return out


def _decode_udp(frame: bytes, linktype: int):
    """(src, sport, dst, dport, payload) of an IPv4/UDP frame, else None."""
    if linktype == 1 and len(frame) >= 14:  # Ethernet
        offset, ethertype = 14, struct.unpack("!H", frame[12:14])[0]
    elif linktype == 113 and len(frame) >= 16:  # Linux cooked v1
        offset, ethertype = 16, struct.unpack("!H", frame[14:16])[0]
    elif linktype == 276 and len(frame) >= 20:  # Linux cooked v2
        offset, ethertype = 20, struct.unpack("!H", frame[0:2])[0]
    elif linktype in (101, 228):  # raw IPv4
        offset, ethertype = 0, 0x0800
    else:
        return None
    while ethertype == 0x8100 and len(frame) >= offset + 4:  # 802.1Q tag
        ethertype = struct.unpack("!H", frame[offset + 2 : offset + 4])[0]
        offset += 4
    ip = frame[offset:]
    if ethertype != 0x0800 or len(ip) < 20 or ip[9] != 17:
        return None
    ihl = (ip[0] & 0x0F) * 4
    if len(ip) < ihl + 8:
        return None
    total = struct.unpack("!H", ip[2:4])[0]
    sport, dport, ulen = struct.unpack("!HHH", ip[ihl : ihl + 6])
    src = ".".join(str(b) for b in ip[12:16])
    dst = ".".join(str(b) for b in ip[16:20])
    return src, sport, dst, dport, ip[ihl + 8 : min(len(ip), total, ihl + ulen)]


class Rtp(NamedTuple):
    """A parsed RTP header and payload."""

    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> "Rtp | None":
    """Parse an RTP packet (version 2); return None if it is not one."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10 and len(data) >= offset + 4:  # header extension
        offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
    end = len(data)
    if b0 & 0x20 and end > offset:  # padding
        end -= data[-1]
    return Rtp(b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, data[offset:end])


# --------------------------------------------------------------------------- CLI


TONES = {
    "tone_pcmu.pcap": 1000.0,
    "tone2_pcmu.pcap": 600.0,
    "tone3_pcmu.pcap": 1400.0,  # a third phone (a conference's third participant)
}  # file name: frequency (Hz)


PT_H264 = 99  # dynamic payload type offered for H.264 by video_call.xml
VIDEO_CLOCK = 90000  # RTP clock of every video codec
H264_NAME = "h264.pcap"


def h264_packets(
    seconds: float, fps: int = 25, ssrc: int = 0x5EED0264, first_seq: int = 2000
) -> List[RtpPacket]:
    """Dummy H.264 video: one single-NAL-unit packet per frame (RFC 6184), PT 99.

    Each NAL unit is a non-IDR slice header (0x41) followed by the frame counter and
    filler, so every payload is distinct and an echo can be matched packet by packet. No
    decoder could show it; Asterisk does not decode video, it only relays it.
    """
    count = int(round(seconds * fps))
    return [
        RtpPacket(
            i / fps,
            PT_H264,
            True,  # each packet is a whole frame
            first_seq + i,
            i * VIDEO_CLOCK // fps,
            ssrc,
            b"\x41" + struct.pack("!I", i) + bytes((i + n) & 0xFF for n in range(200)),
        )
        for i in range(count)
    ]


def make_h264(outdir: str, seconds: float = 30.0) -> str:
    """Write ``h264.pcap`` (see h264_packets) to ``outdir``; return its path."""
    path = os.path.join(outdir, H264_NAME)
    write_pcap(path, h264_packets(seconds))
    return path


def make_tone(outdir: str, seconds: float = 30.0, name: str = "tone_pcmu.pcap") -> str:
    """Write one of TONES to ``outdir``; return its path."""
    path = os.path.join(outdir, name)
    write_pcap(path, tone_packets(seconds, frequency=TONES[name]))
    return path


def make_dtmf(outdir: str, digits: str, **kwargs) -> str:
    path = os.path.join(outdir, dtmf_filename(digits))
    write_pcap(path, dtmf_packets(digits, **kwargs))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", help="directory to write the pcap files to (created)")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="tone length (default 30)"
    )
    parser.add_argument(
        "--dtmf",
        action="append",
        default=[],
        metavar="DIGITS",
        help="also write dtmf_DIGITS.pcap (repeatable)",
    )
    parser.add_argument(
        "--key-ms", type=int, default=200, help="length of one key press"
    )
    parser.add_argument("--gap-ms", type=int, default=300, help="silence between keys")
    parser.add_argument(
        "--lead-ms", type=int, default=500, help="silence before the first key"
    )
    parser.add_argument(
        "--tail-ms", type=int, default=500, help="silence after the last key"
    )
    args = parser.parse_args(argv)
    os.makedirs(args.outdir, exist_ok=True)
    for name in TONES:
        print(make_tone(args.outdir, args.seconds, name))
    print(make_h264(args.outdir, args.seconds))
    for digits in args.dtmf:
        print(
            make_dtmf(
                args.outdir,
                digits,
                key_ms=args.key_ms,
                gap_ms=args.gap_ms,
                lead_ms=args.lead_ms,
                tail_ms=args.tail_ms,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
