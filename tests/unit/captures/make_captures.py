#!/usr/bin/env python3
"""Make the captures of this folder again: three calls between two SIPp phones, and tshark's reads.

Two containers of the lab's tester image on a network of their own: amine calls chhiny with
caller.xml, chhiny answers with callee.xml (both in this folder). tcpdump on amine's side writes
each call's pcap; tshark (installed in amine's container if the image lacks it) then reads each
pcap exactly as roles/lab_report/library/lab_capture.py does, and its outputs are saved next to
the pcap, so the unit tests read real tshark output on a machine without tshark.

Needs Docker and the image asterisk-lab/tester (`make images`); the containers and the network
are removed at the end. Run from the repository root with the project's Python:

    .venv/bin/python tests/unit/captures/make_captures.py [--prefix captures-] [--subnet 172.30.250.0/24]
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
_spec = importlib.util.spec_from_file_location(
    "lab_capture", ROOT / "roles" / "lab_report" / "library" / "lab_capture.py")
lab_capture = importlib.util.module_from_spec(_spec)
sys.modules["lab_capture"] = lab_capture  # dataclasses look their module up there
_spec.loader.exec_module(lab_capture)

IMAGE = "asterisk-lab/tester:latest"
WORK = "/tmp/captures"
# Each call: what the called phone answers, and when the caller hangs up (-d: after the
# answer; cancel_ms: while it rings).
CALLS = {
    "call": {"answer_code": "200", "caller": ["-key", "cancel_ms", "0", "-d", "500"]},
    "busy": {"answer_code": "486", "caller": ["-key", "cancel_ms", "0"]},
    "cancel": {"answer_code": "0", "caller": ["-key", "cancel_ms", "300"]},
}
# Each phone's tone gets its own SSRC (make_pcap.py's tones share one): a PBX in between
# would send its own, and the tests want two streams told apart by SSRC.
TONES = {"caller": (1000.0, 0x5EED0001), "callee": (600.0, 0x5EED0600)}
TONE_SECONDS = 0.2  # ten packets each way keep each pcap a few KB


def docker(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, text=True, capture_output=True, **kwargs)


def in_container(container: str, script: str, check: bool = True) -> str:
    return docker("exec", "-e", "LC_ALL=C", container, "sh", "-c", script, check=check).stdout


def start(prefix: str, subnet: str, phones: dict[str, dict[str, str]]) -> None:
    """Start both phones' containers, recording each in ``phones`` at once so it is removed."""
    hosts = list(ipaddress.ip_network(subnet).hosts())
    docker("network", "create", "--subnet", subnet, f"{prefix}net")
    for side, name, address in (("caller", "amine", hosts[109]), ("callee", "chhiny", hosts[110])):
        phones[side] = {"name": name, "address": str(address), "container": f"{prefix}{name}"}
    for phone in phones.values():
        docker("run", "-d", "--name", phone["container"], "--hostname", phone["name"],
               "--network", f"{prefix}net", "--ip", phone["address"], IMAGE)
        in_container(phone["container"], f"mkdir -p {WORK}")
        for source in (HERE / "caller.xml", HERE / "callee.xml", ROOT / "tests" / "sipp" / "make_pcap.py"):
            docker("cp", str(source), f"{phone['container']}:{WORK}/{source.name}")
    for side, (frequency, ssrc) in TONES.items():
        tone = f"m.tone_packets({TONE_SECONDS}, frequency={frequency}, ssrc={ssrc})"
        in_container(phones[side]["container"],
                     f"cd {WORK} && python3 -c 'import make_pcap as m; m.write_pcap(\"tone.pcap\", {tone})'")


def capture(name: str, phones: dict[str, dict[str, str]]) -> Path:
    caller, callee = phones["caller"], phones["callee"]
    plan = CALLS[name]
    in_container(caller["container"], f"rm -f {WORK}/{name}.pcap")
    # --immediate-mode: libpcap otherwise hands packets over a block at a time, and the block
    # still open when tcpdump is stopped (the BYE and its 200) never reaches the file.
    docker("exec", "-d", caller["container"], "sh", "-c",
           f"tcpdump -i eth0 --immediate-mode -U -w {WORK}/{name}.pcap udp 2>{WORK}/tcpdump.err & "
           f"echo $! >{WORK}/tcpdump.pid; wait")
    answering = subprocess.Popen(
        ["docker", "exec", callee["container"], "sipp", "-sf", f"{WORK}/callee.xml", "-m", "1", "-p", "5060",
         "-nostdin", "-key", "answer_code", plan["answer_code"], "-key", "pcap", f"{WORK}/tone.pcap",
         "-min_rtp_port", "30010", "-max_rtp_port", "30019"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1)  # tcpdump listening, the called phone bound to its port
    calling = docker(
        "exec", caller["container"], "sipp", f"{callee['address']}:5060", "-sf", f"{WORK}/caller.xml",
        "-m", "1", "-p", "5060", "-nostdin", "-s", "6002", "-key", "user", caller["name"],
        "-key", "pcap", f"{WORK}/tone.pcap", *plan["caller"],
        "-min_rtp_port", "30000", "-max_rtp_port", "30009", "-recv_timeout", "5000",
        check=False)
    if calling.returncode != 0:
        raise SystemExit(f"{name}: the caller's SIPp failed ({calling.returncode}):\n"
                         f"{calling.stdout[-2000:]}{calling.stderr[-2000:]}")
    try:
        answered = answering.wait(timeout=15)
    except subprocess.TimeoutExpired:
        answering.kill()
        raise SystemExit(f"{name}: the called phone's SIPp did not end") from None
    if answered != 0:
        raise SystemExit(f"{name}: the called phone's SIPp failed: {answering.stderr.read()[-2000:]}")
    time.sleep(0.5)  # the last answer on the wire before tcpdump stops
    in_container(caller["container"],
                 f"pid=$(cat {WORK}/tcpdump.pid); kill -INT $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done")
    pcap = HERE / f"{name}.pcap"
    docker("cp", f"{caller['container']}:{WORK}/{name}.pcap", str(pcap))
    return pcap


def save_tshark_reads(name: str, container: str) -> None:
    for read in lab_capture.TSHARK_READS:
        argv = lab_capture.tshark_argv("tshark", f"{WORK}/{name}.pcap", read)
        done = docker("exec", "-e", "LC_ALL=C", container, *argv)
        (HERE / f"{name}.{read}").write_text(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="captures-", help="of the containers and the network")
    parser.add_argument("--subnet", default="172.30.250.0/24", help="of the network (a free one)")
    args = parser.parse_args()
    phones: dict[str, dict[str, str]] = {}
    try:
        start(args.prefix, args.subnet, phones)
        reader = phones["caller"]["container"]
        in_container(reader, "command -v tshark >/dev/null || (apt-get update -q && "
                             "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tshark)")
        print(in_container(reader, "tshark --version 2>/dev/null | head -n 1").strip())
        for name in CALLS:
            pcap = capture(name, phones)
            save_tshark_reads(name, reader)
            print(f"{pcap.relative_to(ROOT)}: {pcap.stat().st_size} bytes")
    finally:
        for phone in phones.values():
            docker("rm", "-f", phone["container"], check=False)
        docker("network", "rm", f"{args.prefix}net", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
