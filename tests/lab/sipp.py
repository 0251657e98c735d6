"""Drive SIPp phones in the tester container from pytest-testinfra tests.

The repository's ``tests/sipp/`` is mounted read-only at ``/sipp`` in the tester; every
SIPp run gets its own directory under ``workdir`` and its own SIP and RTP ports, so
several phones can run at once (e.g. a UAS in the background while a UAC calls it).

Scenarios (see the comment at the top of each for its parameters):

* ``register.xml`` - REGISTER with digest auth, logs ``FINAL_STATUS <code>``;
* ``call.xml``     - UAC: INVITE with auth, plays a pcap once answered, BYE after N s;
* ``provider.xml`` - the ITSP: registrar and far end of outbound calls, checks digests;
* ``video_call.xml`` - UAC like call.xml, offering H.264 video too;
* ``answer.xml``   - UAS: logs the caller ID, rings, answers (200) or refuses (486...),
  or rings until the caller cancels (0);
* ``refer.xml``    - UAS: answers, then transfers the caller with a SIP REFER.

Media is captured with tcpdump in the tester on the run's RTP ports and parsed here
(pure Python, via ``make_pcap.read_pcap``), so tests can check what was sent and what
came back: :meth:`CallResult.echoed_fraction`, :func:`dtmf_digits`.

Example::

    host = testinfra.get_host("docker://lab-tester")
    phones = SippRunner(host)
    assert phones.register("amine", secret, "172.30.0.153") == 200
    result = phones.call("amine", secret, "172.30.0.153", "600", seconds=30)
    assert result.completed and result.echoed_fraction(after=23.0) > 0.8
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "sipp")
)
import make_pcap  # noqa: E402  (tests/sipp/make_pcap.py: pcap reading and writing)

SCENARIO_DIR = "/sipp"
TONE_PCAP = "tone_pcmu.pcap"  # what callers send by default (1000 Hz)
ANSWER_TONE_PCAP = "tone2_pcmu.pcap"  # what answering phones send by default (600 Hz)

# Ports the tester's SIPp processes use (the PBXs' RTP range is elsewhere: 10000-10999).
SIP_PORT_BASE = 21000
RTP_PORT_BASE = 41000
PORT_SLOTS = 1000  # each run takes 4 SIP-side and 4 RTP ports from its slot

# Final answers answer.xml can give (-key answer_code); 0 rings until the CANCEL.
ANSWER_CODES = (200, 486, 480, 603, 404, 503, 0)

# RTCP packet types 200-204 seen through the RTP payload-type mask.
_RTCP_PTS = range(72, 77)


@dataclass(frozen=True)
class RtpInfo:
    """One captured RTP packet."""

    time: float
    src: str
    sport: int
    dst: str
    dport: int
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


@dataclass(frozen=True)
class CallerId:
    """The caller ID an INVITE carried."""

    from_user: str
    from_name: str
    pai_user: str  # P-Asserted-Identity user, "" if the header was absent


@dataclass
class _Run:
    """One SIPp process: its directory and ports."""

    name: str
    dir: str
    sip_port: int
    rtp_min: int
    rtp_max: int


@dataclass
class SippOutcome:
    """What every SIPp run reports."""

    exit_code: int
    log: str  # the <log> lines of the scenario
    rundir: str  # the run's directory in the tester (messages.log, errors.log, capture.pcap)
    sent: List[RtpInfo] = field(default_factory=list)  # RTP sent by SIPp (if captured)
    received: List[RtpInfo] = field(
        default_factory=list
    )  # RTP that reached SIPp (if captured)

    def log_values(self, key: str) -> List[str]:
        """The text after ``key`` on each log line that starts with it."""
        return [
            line[len(key) :].strip()
            for line in self.log.splitlines()
            if line.startswith(key)
        ]


@dataclass
class CallResult(SippOutcome):
    """The outcome of :meth:`SippRunner.call`."""

    statuses: List[int] = field(
        default_factory=list
    )  # final answers to INVITEs, in order
    answered: bool = False
    bye_status: Optional[int] = None
    bye_received: bool = False  # the PBX hung up (``hangup="pbx"``)

    @property
    def status(self) -> Optional[int]:
        """The final answer to the last INVITE (200, 404, 486...), None if none came."""
        return self.statuses[-1] if self.statuses else None

    @property
    def completed(self) -> bool:
        """SIPp completed the call: answered, media played, BYE answered with 200 (or,
        with ``hangup="pbx"``, the PBX's BYE received and answered)."""
        return self.exit_code == 0 and self.answered and (self.bye_status == 200 or self.bye_received)

    def echoed_fraction(self, after: float = 23.0, tail: float = 0.5) -> float:
        """Fraction of the audio packets sent that came back with the same payload.

        Only the packets sent from ``after`` seconds after the first one to ``tail``
        seconds before the last one count (Asterisk's echo test plays ``demo-echotest``
        for ~22 s before Echo() starts; the last packets' echoes may arrive after the BYE).
        Meaningful with a pcap whose payloads are all distinct (``tone_pcmu.pcap``).
        """
        return echoed_fraction(self.sent, self.received, after, tail)


@dataclass
class AnswerResult(SippOutcome):
    """The outcome of an :meth:`SippRunner.answer_in_background` phone."""

    caller: Optional[CallerId] = None
    answered: bool = False
    refused_code: Optional[int] = None
    bye_received: bool = False
    cancelled: bool = False  # the caller (or the PBX for it) sent CANCEL while it rang
    notify_statuses: List[int] = field(default_factory=list)  # refer.xml: progress of the REFER

    @property
    def completed(self) -> bool:
        """The UAS scenario ran to its end (call answered and hung up, or refusal ACKed)."""
        return self.exit_code == 0


def rtp_packets(
    pcap: bytes | str, rtp_min: int, rtp_max: int
) -> tuple[List[RtpInfo], List[RtpInfo]]:
    """Split a capture into (sent, received) RTP: from, or to, a port in [rtp_min, rtp_max].

    ``pcap`` is the file's content or a path.  RTCP and non-RTP datagrams are dropped.
    """
    if isinstance(pcap, bytes):
        with tempfile.NamedTemporaryFile(suffix=".pcap") as tmp:
            tmp.write(pcap)
            tmp.flush()
            udp = make_pcap.read_pcap(tmp.name)
    else:
        udp = make_pcap.read_pcap(pcap)
    sent: List[RtpInfo] = []
    received: List[RtpInfo] = []
    for pkt in udp:
        rtp = make_pcap.parse_rtp(pkt.payload)
        if rtp is None or rtp.payload_type in _RTCP_PTS:
            continue
        info = RtpInfo(pkt.time, pkt.src, pkt.sport, pkt.dst, pkt.dport, *rtp)
        if rtp_min <= pkt.sport <= rtp_max:
            sent.append(info)
        elif rtp_min <= pkt.dport <= rtp_max:
            received.append(info)
    return sent, received


def echoed_fraction(
    sent: Sequence[RtpInfo],
    received: Sequence[RtpInfo],
    after: float = 23.0,
    tail: float = 0.5,
    payload_type: int = 0,
) -> float:
    """Fraction of ``sent`` audio payloads (in the window, see CallResult) found in ``received``."""
    audio = [p for p in sent if p.payload_type == payload_type]
    if not audio:
        return 0.0
    start, end = audio[0].time + after, audio[-1].time - tail
    window = [p for p in audio if start <= p.time <= end]
    if not window:
        return 0.0
    back = {p.payload for p in received if p.payload_type == payload_type}
    return sum(p.payload in back for p in window) / len(window)


def dtmf_digits(packets: Sequence[RtpInfo], payload_type: int = 101) -> str:
    """The RFC 2833 key presses in ``packets``: one digit per (SSRC, event timestamp)."""
    names = {v: k for k, v in make_pcap.DTMF_EVENTS.items()}
    seen: Dict[tuple, str] = {}
    for p in packets:
        if p.payload_type == payload_type and len(p.payload) >= 4:
            seen.setdefault((p.ssrc, p.timestamp), names.get(p.payload[0], "?"))
    return "".join(seen.values())


def refer_notify_statuses(messages_log: str) -> List[int]:
    """The status in each refer NOTIFY's sipfrag that SIPp received, in order, a
    retransmission once, from its ``-trace_msg`` log. The log, not the scenario's own
    lines, because SIPp answers a NOTIFY that arrives out of step with ``-aa``, unlogged
    (refer.xml)."""
    statuses: Dict[str, int] = {}
    for block in re.split(r"^-{20,}.*$", messages_log.replace("\r\n", "\n"), flags=re.MULTILINE):
        head, _, message = block.strip().partition("\n")
        if "message received" not in head or not message.lstrip().startswith("NOTIFY "):
            continue
        headers, _, body = message.strip().partition("\n\n")
        event = re.search(r"^(?:Event|o)\s*:\s*refer\b", headers, re.MULTILINE | re.IGNORECASE)
        cseq = re.search(r"^CSeq\s*:\s*(\d+)", headers, re.MULTILINE | re.IGNORECASE)
        frag = re.match(r"SIP/2\.0 (\d{3})", body.strip())
        if event and cseq and frag:
            statuses.setdefault(cseq.group(1), int(frag.group(1)))
    return list(statuses.values())


class AnswerHandle:
    """A UAS phone running in the background; :meth:`wait` collects its result."""

    def __init__(
        self,
        runner: "SippRunner",
        run: _Run,
        capture: bool,
        timeout: float,
        register_status: Optional[int] = None,
    ) -> None:
        self._runner = runner
        self.run = run
        self.port = run.sip_port
        self.capture = capture
        self.timeout = timeout
        self.register_status = register_status
        self._result: Optional[AnswerResult] = None

    def done(self) -> bool:
        """True once the SIPp process has exited."""
        return self._runner._host.run(f"test -e {self.run.dir}/rc").rc == 0

    def wait(self, timeout: Optional[float] = None) -> AnswerResult:
        """Wait for the UAS to finish (at most ``timeout`` s) and return what it saw."""
        if self._result is not None:
            return self._result
        out = self._finish(timeout)
        caller = None
        for line in out.log_values("CALLER"):
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            caller = CallerId(
                fields.get("from", ""), fields.get("name", ""), fields.get("pai", "")
            )
        refused = out.log_values("REFUSED")
        self._result = AnswerResult(
            **vars(out),
            caller=caller,
            answered=bool(out.log_values("ANSWERED")),
            refused_code=int(refused[-1]) if refused else None,
            bye_received=bool(out.log_values("BYE_RECEIVED")),
            cancelled=bool(out.log_values("CANCEL_RECEIVED")),
            notify_statuses=(
                refer_notify_statuses(self._runner._host.run(f"cat {out.rundir}/messages.log").stdout)
                if out.log_values("REFER_STATUS") else []  # fmt: skip
            ),
        )
        return self._result

    def _finish(self, timeout: Optional[float]) -> SippOutcome:
        """Wait for SIPp to exit (killing it after ``timeout`` s) and collect its outcome."""
        deadline = time.monotonic() + (self.timeout + 15 if timeout is None else timeout)
        while not self.done():
            if time.monotonic() > deadline:
                self.stop()
                break
            time.sleep(0.5)
        return self._runner._collect(self.run, self.capture)

    def stop(self) -> None:
        """Kill the UAS (and its capture) if still running."""
        self._runner._host.run(
            f"for p in $(cat {self.run.dir}/pids 2>/dev/null); do kill $p 2>/dev/null; done; "
            f"sleep 1; test -e {self.run.dir}/rc || echo 124 > {self.run.dir}/rc"
        )


class CallHandle(AnswerHandle):
    """A UAC call running in the background; :meth:`wait` collects its CallResult."""

    def wait(self, timeout: Optional[float] = None) -> CallResult:  # type: ignore[override]
        if isinstance(self._result, CallResult):
            return self._result
        out = self._finish(timeout)
        bye = out.log_values("BYE_STATUS")
        self._result = CallResult(  # type: ignore[assignment]
            **vars(out),
            statuses=[int(c) for c in out.log_values("STATUS") if c.isdigit()],
            answered=bool(out.log_values("ANSWERED")),
            bye_status=int(bye[-1]) if bye and bye[-1].isdigit() else None,
            bye_received=bool(out.log_values("BYE_RECEIVED")),
        )
        return self._result  # type: ignore[return-value]


class SippRunner:
    """SIPp phones in the tester container, driven through a testinfra Host.

    :param host: ``testinfra.get_host("docker://<tester>")`` (anything with ``run``).
    :param workdir: writable directory in the tester; each run gets a sub-directory.
    :param scenarios: where ``tests/sipp`` is mounted in the tester.
    :param tone_seconds: length of the generated ``tone_pcmu.pcap``.
    """

    _slots = itertools.count((os.getpid() * 37) % PORT_SLOTS)

    def __init__(
        self,
        host: Any,
        workdir: str = "/tmp/sipp-run",
        scenarios: str = SCENARIO_DIR,
        tone_seconds: float = 40.0,
    ) -> None:
        self._host = host
        self.workdir = workdir
        self.scenarios = scenarios
        self.tone_seconds = tone_seconds
        self._local_ips: Dict[str, str] = {}
        self._prepared = False

    # ----------------------------------------------------------------- media files

    def prepare(self) -> None:
        """Create the work dir and generate ``tone_pcmu.pcap`` there (once)."""
        if self._prepared:
            return
        self._check(
            f"mkdir -p {self.workdir} && python3 {self.scenarios}/make_pcap.py "
            f"{self.workdir} --seconds {self.tone_seconds:g}"
        )
        self._prepared = True

    def tone_pcap(self) -> str:
        """Path (in the tester) of the loud µ-law tone with distinct payloads."""
        self.prepare()
        return f"{self.workdir}/{TONE_PCAP}"

    def h264_pcap(self) -> str:
        """Path of the dummy H.264 video (PT 99, distinct payloads) for video calls."""
        self.prepare()
        return f"{self.workdir}/h264.pcap"

    def tone_then_silence_pcap(self, tone_seconds: float, silence_seconds: float) -> str:
        """Path of a caller's tone of ``tone_seconds``, then µ-law silence (a pause in speech)."""
        self.prepare()
        path = f"{self.workdir}/tone{tone_seconds:g}-silence{silence_seconds:g}.pcap"
        self._check(
            f"cd {self.scenarios} && python3 -c "
            + shlex.quote(
                "import sys, make_pcap as m\n"
                "tone, quiet = float(sys.argv[2]), float(sys.argv[3])\n"
                "pkts = m.tone_packets(tone)\n"
                "n, last = len(pkts), pkts[-1]\n"
                "pkts += [m.RtpPacket(last.time + (i + 1) * m.PTIME_MS / 1000, m.PT_PCMU, False,"
                " last.seq + i + 1, last.timestamp + (i + 1) * m.SAMPLES_PER_PACKET, last.ssrc,"
                " bytes([m.ULAW_SILENCE]) * m.SAMPLES_PER_PACKET)"
                " for i in range(int(quiet * 1000 / m.PTIME_MS))]\n"
                "m.write_pcap(sys.argv[1], pkts)\n"
            )
            + f" {path} {tone_seconds:g} {silence_seconds:g}"
        )
        return path

    def answer_tone_pcap(self) -> str:
        """Path of the answering phones' tone (600 Hz: payloads unlike the caller's)."""
        self.prepare()
        return f"{self.workdir}/{ANSWER_TONE_PCAP}"

    def dtmf_pcap(
        self,
        digits: str,
        key_ms: int = 200,
        gap_ms: int = 300,
        lead_ms: int = 500,
        tail_ms: int = 500,
    ) -> str:
        """Path of an RFC 2833 pcap for ``digits`` (generated in the tester)."""
        self.prepare()
        outdir = f"{self.workdir}/dtmf-{key_ms}-{gap_ms}-{lead_ms}-{tail_ms}"
        name = make_pcap.dtmf_filename(digits)
        self._check(
            f"mkdir -p {outdir} && cd {self.scenarios} && python3 -c "
            + shlex.quote(
                "import sys, make_pcap; make_pcap.make_dtmf(sys.argv[1], sys.argv[2], "
                "key_ms=int(sys.argv[3]), gap_ms=int(sys.argv[4]), "
                "lead_ms=int(sys.argv[5]), tail_ms=int(sys.argv[6]))"
            )
            + f" {outdir} {shlex.quote(digits)} {key_ms} {gap_ms} {lead_ms} {tail_ms}"
        )
        return f"{outdir}/{name}"

    # ----------------------------------------------------------------- phones

    def register(
        self,
        user: str,
        secret: str,
        registrar: str,
        port: int = 5060,
        expires: int = 300,
        contact_port: Optional[int] = None,
        auth_user: Optional[str] = None,
        source_ip: Optional[str] = None,
    ) -> int:
        """REGISTER ``user``; return the final SIP status (200, 401, 403...).

        ``contact_port`` is the SIP port the registrar will send INVITEs to (the port of an
        :meth:`answer_in_background` phone); by default this run's own, short-lived port.
        ``expires=0`` removes the binding.  Raises if no final status came at all.
        """
        codes = self._registers(
            user, secret, registrar, port, expires, contact_port, auth_user, source_ip,
            count=1, rate=1, answer_timeout_ms=10000,
        )
        if codes[0] is None:
            raise AssertionError(f"REGISTER {user}@{registrar}: no final status")
        return codes[0]

    def unregister(
        self,
        user: str,
        secret: str,
        registrar: str,
        port: int = 5060,
        contact_port: Optional[int] = None,
    ) -> int:
        """Remove ``user``'s binding (REGISTER with Expires: 0); return the final status."""
        return self.register(
            user, secret, registrar, port, expires=0, contact_port=contact_port
        )

    def call(self, *args: Any, **kwargs: Any) -> CallResult:
        """Call ``extension`` as ``caller``; stay ``seconds`` after the answer, then hang up.

        Takes the arguments of :meth:`call_in_background` and waits for the call's end.

        ``pcap`` is the RTP to send once answered (default: the tone).  With ``capture``
        the RTP sent and received is captured and returned (``result.sent/received``).
        ``ring_timeout`` bounds each wait for an answer (SIPp's -recv_timeout).
        ``hangup="pbx"``: the PBX ends the call instead (its BYE within ``ring_timeout``
        of the answer; ``seconds`` is then unused).
        ``cancel_after`` hangs up that many seconds after the ringing starts (CANCEL; the
        PBX's 487 is ``result.status``). ``local_port`` is the SIP port to call from (the
        provider's, which the PBX knows it by). ``video_pcap`` offers H.264 video as well
        (``video_call.xml``) and sends that RTP once answered; the answer's video line is
        ``result.log_values("VIDEO")``.
        """
        return self.call_in_background(*args, **kwargs).wait()

    def call_in_background(
        self,
        caller: str,
        secret: str,
        registrar: str,
        extension: str,
        seconds: float,
        pcap: Optional[str] = None,
        capture: bool = True,
        port: int = 5060,
        auth_user: Optional[str] = None,
        ring_timeout: float = 30.0,
        hangup: str = "caller",
        cancel_after: Optional[float] = None,
        local_port: Optional[int] = None,
        video_pcap: Optional[str] = None,
    ) -> "CallHandle":
        """Start :meth:`call` and return at once; ``handle.wait()`` gives its CallResult.

        Several phones can so be in calls together (a conference, a call to pick up).
        """
        if hangup not in ("caller", "pbx"):
            raise ValueError(f"hangup is 'caller' or 'pbx', not {hangup!r}")
        run = self._new_run("call", sip_port=local_port)
        scenario = "video_call.xml" if video_pcap else "call.xml"
        args = [
            f"{registrar}:{port}",
            "-sf",
            f"{self.scenarios}/{scenario}",
            "-s",
            extension,
            "-key",
            "user",
            caller,
            "-au",
            auth_user or caller,
            "-ap",
            secret,
            "-key",
            "pcap",
            pcap or self.tone_pcap(),
            "-d",
            str(int(seconds * 1000)),
            "-recv_timeout",
            str(int(ring_timeout * 1000)),
            "-default_behaviors",
            "all,-bye",
            "-key",
            "hangup",
            hangup,
            "-key",
            "cancel",
            str(int((cancel_after or 0) * 1000)),
            *(["-key", "video_pcap", video_pcap] if video_pcap else []),
            *self._common_args(run, registrar),
        ]
        timeout = seconds + ring_timeout * 2 + 30
        self._check(self._script(run, args, capture, timeout=timeout, background=True))
        return CallHandle(self, run, capture, timeout)

    def provider_in_background(
        self,
        user: str,
        secret: str,
        port: int,
        pbx: str,
        answer_code: int = 200,
        ring_ms: int = 1000,
        capture: bool = False,
        timeout: float = 300.0,
    ) -> "AnswerHandle":
        """Play an ITSP on ``port`` (provider.xml) until stopped: challenge and verify the
        REGISTERs and INVITEs of ``user``/``secret``, answer calls with ``answer_code``.

        ``pbx`` is the address the PBX reaches the provider from. ``handle.stop()`` ends it.
        """
        run = self._new_run("provider", sip_port=port)
        args = [
            "-sf", f"{self.scenarios}/provider.xml", "-aa",
            "-key", "user", user,
            "-key", "secret", secret,
            "-key", "answer_code", str(answer_code),
            "-key", "pcap", self.answer_tone_pcap(),
            "-d", str(ring_ms),
            *self._common_args(run, pbx, calls=None),
        ]  # fmt: skip
        self._check(self._script(run, args, capture, timeout=timeout, background=True))
        self._wait_listening(run.sip_port)
        return AnswerHandle(self, run, capture, timeout=timeout)

    def answer_in_background(
        self,
        user: str,
        port: Optional[int] = None,
        *,
        secret: Optional[str] = None,
        registrar: Optional[str] = None,
        registrar_port: int = 5060,
        answer_code: int = 200,
        ring_ms: int = 1000,
        pcap: Optional[str] = None,
        capture: bool = False,
        timeout: float = 60.0,
        refer_to: Optional[str] = None,
    ) -> AnswerHandle:
        """Start a UAS phone for ``user`` that takes one call; return at once.

        It listens on ``port`` (default: its own free one, see ``handle.port``), rings
        ``ring_ms``, then answers with ``answer_code``: 200 (sends ``pcap``, default the
        600 Hz tone, and waits for the BYE) or a refusal such as 486 Busy Here.  With ``secret``
        and ``registrar`` it also registers ``user`` with this phone as Contact, and
        raises unless the registrar answers 200.  ``timeout`` bounds the whole call.
        ``answer_code=0`` rings until the call is cancelled (``result.cancelled``).
        With ``refer_to`` (an extension) the phone answers, talks ``ring_ms``, then
        transfers the caller there with a SIP REFER (refer.xml; ``result.notify_statuses``).
        """
        run = self._new_run(f"answer-{user}", sip_port=port)
        if answer_code not in ANSWER_CODES:
            raise ValueError(
                f"answer.xml answers with one of {ANSWER_CODES}, not {answer_code}"
            )
        local_ip_for = registrar or ""
        args = [
            "-sf",
            f"{self.scenarios}/{'refer.xml' if refer_to else 'answer.xml'}",
            *(["-key", "refer_to", refer_to] if refer_to else []),
            "-aa",
            "-key",
            "answer_code",
            str(answer_code),
            "-key",
            "pcap",
            pcap or self.answer_tone_pcap(),
            "-d",
            str(ring_ms),
            "-recv_timeout",
            str(int(timeout * 1000)),
            *self._common_args(run, local_ip_for),
        ]
        self._check(
            self._script(run, args, capture, timeout=timeout + 10, background=True)
        )
        self._wait_listening(run.sip_port)
        handle = AnswerHandle(self, run, capture, timeout)
        if secret is not None and registrar is not None:
            handle.register_status = self.register(
                user, secret, registrar, registrar_port, contact_port=run.sip_port
            )
            if handle.register_status != 200:
                handle.stop()
                raise AssertionError(
                    f"{user} could not register its answering phone: "
                    f"{handle.register_status}"
                )
        return handle

    # ----------------------------------------------------------------- internals

    def _new_run(self, kind: str, sip_port: Optional[int] = None) -> _Run:
        slot = next(self._slots) % PORT_SLOTS
        name = f"{kind}-{os.getpid()}-{slot}-{int(time.time() * 1000) % 100000}"
        return _Run(
            name,
            f"{self.workdir}/{name}",
            sip_port or SIP_PORT_BASE + slot * 4,
            RTP_PORT_BASE + slot * 4,
            RTP_PORT_BASE + slot * 4 + 3,
        )

    def _local_ip(self, dest: str) -> str:
        """The tester's source address towards ``dest`` (the tester may have several networks)."""
        if dest not in self._local_ips:
            probe = (
                "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                "s.connect((sys.argv[1], 5060)); print(s.getsockname()[0])"
            )
            self._local_ips[dest] = self._check(
                f"python3 -c {shlex.quote(probe)} {shlex.quote(dest)}"
            ).strip()
        return self._local_ips[dest]

    def register_many(
        self,
        user: str,
        secret: str,
        registrar: str,
        count: int,
        source_ip: Optional[str] = None,
        rate: int = 50,
        port: int = 5060,
        answer_timeout_ms: int = 2000,
    ) -> List[Optional[int]]:
        """Send ``count`` REGISTERs for ``user`` at ``rate`` per second, as fast as a scanner.

        Returns one entry per attempt: its final SIP status, or None when nothing answered
        within ``answer_timeout_ms`` (a refused or silently dropped request).
        """
        return self._registers(
            user, secret, registrar, port, 60, None, None, source_ip, count, rate, answer_timeout_ms
        )

    def _registers(
        self,
        user: str,
        secret: str,
        registrar: str,
        port: int,
        expires: int,
        contact_port: Optional[int],
        auth_user: Optional[str],
        source_ip: Optional[str],
        count: int,
        rate: int,
        answer_timeout_ms: int,
    ) -> List[Optional[int]]:
        """Run register.xml ``count`` times; the final status of each, None if unanswered."""
        run = self._new_run("register")
        args = [
            f"{registrar}:{port}",
            "-sf",
            f"{self.scenarios}/register.xml",
            "-s",
            user,
            "-au",
            auth_user or user,
            "-ap",
            secret,
            "-key",
            "expires",
            str(expires),
            "-key",
            "contact_port",
            str(contact_port or run.sip_port),
            *self._common_args(run, registrar, source_ip),
            "-m",
            str(count),
            "-r",
            str(rate),
            "-l",
            str(max(rate, 1)),
            "-recv_timeout",
            str(answer_timeout_ms),
        ]
        if count > 1:  # a burst: do not wait for retransmissions of unanswered requests
            args += ["-max_retrans", "1"]
        timeout = 30 + count / max(rate, 1) + answer_timeout_ms / 1000
        self._check(self._script(run, args, capture=False, timeout=timeout), ok_rcs=None)
        out = self._collect(run, capture=False)
        codes: List[Optional[int]] = [int(c) for c in out.log_values("FINAL_STATUS") if c.isdigit()]
        return codes + [None] * (count - len(codes))

    def _common_args(
        self, run: _Run, dest: str, source_ip: Optional[str] = None, calls: Optional[int] = 1
    ) -> List[str]:
        """Ports, logs and addresses of a run; ``calls=None`` serves dialogues until stopped."""
        args = ["-m", str(calls)] if calls is not None else []
        args += [
            "-p",
            str(run.sip_port),
            "-nostdin",
            "-min_rtp_port",
            str(run.rtp_min),
            "-max_rtp_port",
            str(run.rtp_max),
            "-trace_logs",
            "-log_file",
            f"{run.dir}/scenario.log",
            "-trace_msg",
            "-message_file",
            f"{run.dir}/messages.log",
            "-trace_err",
            "-error_file",
            f"{run.dir}/errors.log",
        ]
        if dest:
            ip = source_ip or self._local_ip(dest)
            args += ["-i", ip, "-mi", ip]
        return args

    def _script(
        self,
        run: _Run,
        sipp_args: Sequence[str],
        capture: bool,
        timeout: float,
        background: bool = False,
    ) -> str:
        """A shell script: [start tcpdump], run SIPp, [stop tcpdump], write rc."""
        d = run.dir
        sipp = "timeout {} sipp {} > {}/sipp.out 2>&1".format(
            int(timeout), " ".join(shlex.quote(a) for a in sipp_args), d
        )
        lines = [f"cd {d}"]
        if capture:
            lines += [
                f"tcpdump -i any -U -n -s 0 -Z root -w {d}/capture.pcap "
                f"'udp and portrange {run.rtp_min}-{run.rtp_max}' 2> {d}/tcpdump.err & T=$!",
                "echo $T >> pids",
                "for i in $(seq 50); do grep -q listening tcpdump.err && break; sleep 0.1; done",
            ]
        lines += [f"{sipp} & S=$!", "echo $S >> pids", "wait $S; rc=$?"]
        if capture:
            lines += ["sleep 0.5", "kill -INT $T", "wait $T"]
        lines += ["echo $rc > rc.tmp && mv rc.tmp rc"]
        body = "; ".join(lines)
        if background:
            return (
                f"mkdir -p {d} && cd {d} && nohup setsid bash -c {shlex.quote(body)} "
                f"> /dev/null 2>&1 < /dev/null &"
            )
        return f"mkdir -p {d} && bash -c {shlex.quote(body)}"

    def _wait_listening(self, sip_port: int, timeout: float = 10.0) -> None:
        hexport = f"{sip_port:04X}"
        deadline = time.monotonic() + timeout
        while (
            self._host.run(f"grep -q ':{hexport} ' /proc/net/udp /proc/net/udp6").rc
            != 0
        ):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"SIPp UAS did not start listening on UDP {sip_port}"
                )
            time.sleep(0.2)

    def _collect(self, run: _Run, capture: bool) -> SippOutcome:
        d = run.dir
        rc_text = self._host.run(f"cat {d}/rc").stdout.strip()
        log = self._host.run(f"cat {d}/scenario.log 2>/dev/null").stdout
        log = "\n".join(
            re.sub(r"^.*?\t.*?\t\d+\.\d+: ", "", line) if "\t" in line else line
            for line in log.splitlines()
        )
        out = SippOutcome(int(rc_text) if rc_text.lstrip("-").isdigit() else -1, log, d)
        if capture:
            b64 = self._host.run(f"base64 -w0 {d}/capture.pcap 2>/dev/null").stdout
            if b64.strip():
                out.sent, out.received = rtp_packets(
                    base64.b64decode(b64), run.rtp_min, run.rtp_max
                )
        return out

    def _check(self, cmd: str, ok_rcs: Optional[Sequence[int]] = (0,)) -> str:
        result = self._host.run(cmd)
        if ok_rcs is not None and result.rc not in ok_rcs:
            raise AssertionError(
                f"tester: {cmd!r} failed ({result.rc}): {result.stderr}"
            )
        return result.stdout
