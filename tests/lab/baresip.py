"""Real softphones (baresip) in the tester container, set up from the files the lab writes.

A student imports the `<pod>-<user>.baresip-accounts` file the lab wrote beside the card as
`~/.baresip/accounts`; a :class:`Softphone` does the same: its config directory in the
tester holds that file, copied byte for byte, as `accounts`. The `config` written here says
nothing about the account: only how to make and hear sound without a sound card (the
microphone is a sine tone, ``ausine``; the speaker writes a WAV file, ``aufile``) and which
local ports to use, so that several phones and SIPp share the tester.

The phone is driven the way its user drives it, through its console (the ``stdio`` module),
fed from a FIFO: ``/dial 600``, ``/accept``, ``/hangup``, and during a call the keys ``0``-``9``,
which baresip sends as RFC 4733 telephone events. What it prints goes to ``out.log``.

What a phone heard is measured with sox (``sox FILE -n stat``): the "Rough frequency" (from
zero crossings: exact enough for one pure tone) and the RMS amplitude (0 is silence, 1 full
scale). :func:`tone_of` measures RTP that a SIPp phone received the same way.
"""

from __future__ import annotations

import base64
import math
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any, Iterable

from sipp import RtpInfo

BARESIP_DIR = "/tmp/baresip"
MODULES = "/usr/lib/baresip/modules"
# Local ports: above SIPp's (SIP 21000-24999, RTP 41000-44999), below the PBXs' nothing.
SIP_PORT_BASE = 25000
RTP_PORT_BASE = 45000
RTP_PORTS_EACH = 20
# How long a key is held: stdio releases a key 250 ms after it is typed.
KEY_GAP = 0.6
# baresip's call status line ("[0:00:07] audio=64000/64000 (bit/s)"), printed over and over
# during a call; a line being written may show only its start. No other line starts so.
_STATUS = re.compile(r"^\[\d")


@dataclass(frozen=True)
class Tone:
    """What sox measured of some audio: its rough frequency (Hz) and RMS amplitude (0-1)."""

    frequency: float
    rms: float
    seconds: float

    def is_near(self, hz: float, tolerance: float = 0.025) -> bool:
        """The tone is `hz` within `tolerance` (G.711's noise and baresip's 48 kHz -> 8 kHz
        resampler move a pure tone by under a percent)."""
        return abs(self.frequency - hz) <= tolerance * hz

    @property
    def audible(self) -> bool:
        """Louder than line noise: G.711 silence measures below 0.001."""
        return self.rms > 0.05


def sox_stat(host: Any, path: str, start: float = 0.0, seconds: float | None = None, raw_ulaw: bool = False) -> Tone:
    """Measure `seconds` of the audio in `path` (in the tester) from `start`: a WAV file, or
    with `raw_ulaw` headerless 8 kHz µ-law (RTP payloads)."""
    kind = "-t ul -r 8000 -c 1 " if raw_ulaw else ""
    trim = f" trim {start:g}" + (f" {seconds:g}" if seconds is not None else "")
    rate = 8000 if raw_ulaw else int(host.check_output(f"soxi -r {shlex.quote(path)}"))
    result = host.run(f"sox {kind}{shlex.quote(path)} -n{trim} stat")
    found = dict(re.findall(r"^([A-Za-z ()]+?):\s+(-?[\d.]+)\s*$", result.stderr, re.MULTILINE))
    if result.rc != 0 or "Rough   frequency" not in found:
        raise AssertionError(f"sox could not measure {path}: {result.stderr}")
    # sox's rough frequency is rate/pi * (RMS of the sample-to-sample change / RMS): for a pure
    # tone of f Hz that is rate/pi * sin(pi*f/rate), 4 % under f at 1200 Hz in 8 kHz; undone here.
    rough = float(found["Rough   frequency"])
    ratio = min(max(math.pi * rough / rate, -1.0), 1.0)
    return Tone(rate / math.pi * math.asin(ratio), float(found["RMS     amplitude"]),
                float(found["Length (seconds)"]))


def tone_of(host: Any, packets: Iterable[RtpInfo], path: str, skip: float = 0.5) -> Tone:
    """What a SIPp phone heard, measured like a softphone's recording: the PCMU payloads it
    received, in order, written to `path` in the tester; the first `skip` seconds left out
    (ringing, the answer's first packets)."""
    audio = sorted((p for p in packets if p.payload_type == 0), key=lambda p: p.seq)
    if not audio:
        raise AssertionError("no PCMU audio was received")
    data = base64.b64encode(b"".join(p.payload for p in audio)).decode()
    host.check_output(f"echo {data} | base64 -d > {shlex.quote(path)}")
    return sox_stat(host, path, start=skip, raw_ulaw=True)


class Softphone:
    """One baresip process in the tester, registered from a lab-written accounts file.

    :param host: the tester (a testinfra Host).
    :param name: a name for its directory (the user's, usually).
    :param accounts: the content of the accounts file the lab wrote, as it is.
    :param slot: which local ports it takes (one slot per phone running at once).
    """

    def __init__(self, host: Any, name: str, accounts: str, slot: int) -> None:
        self.host = host
        self.name = name
        self.accounts = accounts
        self.dir = f"{BARESIP_DIR}/{name}-{slot}"
        self.sip_port = SIP_PORT_BASE + slot
        self.rtp_ports = (RTP_PORT_BASE + slot * RTP_PORTS_EACH, RTP_PORT_BASE + (slot + 1) * RTP_PORTS_EACH - 1)
        self._mark = 0  # where in the console's text the current step began

    def config(self, tone_hz: int, recording: str) -> str:
        """The `config` file: sound from and to files, this phone's ports, and the modules a
        console phone needs; no account setting (those come from the accounts file only)."""
        modules = ["stdio", "g711", "aufile", "ausine"]
        apps = ["account", "menu"]
        lines = [
            "poll_method epoll",
            f"sip_listen 0.0.0.0:{self.sip_port}",
            f"rtp_ports {self.rtp_ports[0]}-{self.rtp_ports[1]}",
            # ausine makes 48 kHz only: baresip resamples it to the codec's 8 kHz.
            f"audio_source ausine,{tone_hz}",
            "ausrc_srate 48000",
            "ausrc_channels 1",
            f"audio_player aufile,{recording}",
            f"audio_alert aufile,{self.dir}/alert.wav",
            f"module_path {MODULES}",
            *(f"module {m}.so" for m in modules),
            *(f"module_app {m}.so" for m in apps),
        ]
        return "\n".join(lines) + "\n"

    def start(self, tone_hz: int = 1000) -> None:
        """Write the config directory and start baresip, reading its console from a FIFO that
        a `sleep` holds open (so that each command written to it is not an end of input)."""
        self.stop()
        files = {"accounts": self.accounts, "config": self.config(tone_hz, self.recording("first"))}
        writes = " && ".join(
            f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {self.dir}/{name}"
            for name, text in files.items()
        )
        body = (f"sleep 3600 > {self.dir}/keys & echo $! > {self.dir}/holder.pid; "
                f"exec baresip -f {self.dir} < {self.dir}/keys > {self.dir}/out.log 2>&1")
        self.host.check_output(
            f"rm -rf {self.dir} && mkdir -p {self.dir} && {writes} && mkfifo {self.dir}/keys && "
            f"(nohup setsid bash -c {shlex.quote(body)} > /dev/null 2>&1 < /dev/null & echo $! > {self.dir}/baresip.pid)"
        )

    def stop(self) -> None:
        """Quit baresip (its console's /quit, then its process id), and the FIFO's holder."""
        self.host.run(
            f"if test -p {self.dir}/keys; then timeout 2 sh -c 'printf \"/quit\\n\" > {self.dir}/keys'; fi; "
            f"for f in baresip holder; do p=$(cat {self.dir}/$f.pid 2>/dev/null) && kill $p 2>/dev/null; done; true"
        )

    # --------------------------------------------------------------- the console

    def type(self, text: str) -> None:
        """Type `text` on the phone's console."""
        self.host.check_output(f"timeout 5 sh -c {shlex.quote(f'printf %s {shlex.quote(text)} > {self.dir}/keys')}")

    def command(self, command: str) -> None:
        """Type a console command (`/dial 600`) and Enter, marking where its output starts."""
        self._mark = len(self.log())
        self.type(f"/{command}\n")

    def log(self) -> str:
        """What the phone printed, without its repeated call status line."""
        raw = self.host.run(f"cat {self.dir}/out.log 2>/dev/null").stdout.replace("\x00", "")
        return "\n".join(part for part in re.split(r"[\r\n]+", raw) if part and not _STATUS.match(part))

    def wait_for(self, pattern: str, timeout: float, since_mark: bool = True) -> re.Match[str] | None:
        """The first line matching `pattern` printed since the last command (or ever),
        waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            found = re.search(pattern, text[self._mark:] if since_mark else text, re.MULTILINE)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    # --------------------------------------------------------------- what a user does

    def registered(self, timeout: float = 15.0) -> bool:
        """The phone says its registrar accepted it (200 OK, one binding)."""
        return self.wait_for(r"200 OK .*\[1 binding\]", timeout, since_mark=False) is not None

    def recording(self, label: str) -> str:
        """Where the phone's speaker writes during the call labelled `label`."""
        return f"{self.dir}/heard-{label}.wav"

    def prepare_call(self, tone_hz: int, label: str) -> str:
        """Set the microphone's tone and the speaker's file for the next call; return the file."""
        self.command(f"ausrc ausine,{tone_hz}")
        self.command(f"auplay aufile,{self.recording(label)}")
        return self.recording(label)

    def dial(self, number: str, tone_hz: int, label: str, timeout: float = 30.0) -> str:
        """Call `number` speaking a `tone_hz` tone; return the recording's path once answered."""
        path = self.prepare_call(tone_hz, label)
        self.command(f"dial {number}")
        if not self.wait_for(r"Call established", timeout):
            raise AssertionError(f"{self.name}: the call to {number} was not answered:\n{self.log()[-3000:]}")
        return path

    def answer(self, timeout: float = 30.0) -> None:
        """Wait for a call to ring (since the last command), then answer it (/accept)."""
        if not self.wait_for(r"Incoming call from", timeout):
            raise AssertionError(f"{self.name}: no call rang:\n{self.log()[-3000:]}")
        self.command("accept")
        if not self.wait_for(r"Call established", 10):
            raise AssertionError(f"{self.name}: the call could not be answered:\n{self.log()[-3000:]}")

    def press(self, keys: str) -> None:
        """Press keys during a call, one at a time, as a user would (RFC 4733 events)."""
        for key in keys:
            self.type(key)
            time.sleep(KEY_GAP)

    def hangup(self, timeout: float = 10.0) -> None:
        """Hang up and wait for the call's end, so that the recording is complete."""
        self.command("hangup")
        if not self.wait_for(r"terminated|no active call", timeout):
            raise AssertionError(f"{self.name}: the call did not end:\n{self.log()[-3000:]}")

    def heard(self, path: str, start: float = 0.0, seconds: float | None = None) -> Tone:
        """What the phone's speaker played from `start` s into the call (sox's measure)."""
        return sox_stat(self.host, path, start, seconds)
