"""Unit tests for how tests/lab/sipp.py reads a SIPp run's message log: pure Python, no SIPp."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lab"))

from sipp import refer_notify_statuses  # noqa: E402


def logged(direction: str, *lines: str, at: str = "2026-11-30T05:08:11.556326Z") -> str:
    """One entry of SIPp's -trace_msg log, as SIPp writes it (CRLF inside the message)."""
    message = "\r\n".join(lines)
    return f"----------------------------------------------- {at}\nUDP message {direction} [{len(message)}] bytes:\n\n{message}\n\n"


def notify(cseq: int, event: str, body: str) -> str:
    return logged(
        "received",
        "NOTIFY sip:172.30.153.110:21640;transport=UDP SIP/2.0",
        f"CSeq: {cseq} NOTIFY",
        f"Event: {event}",
        "Content-Type: message/sipfrag;version=2.0",
        f"Content-Length: {len(body) + 2}",
        "",
        body,
        "",
    )


def test_every_refer_notify_counts_in_order_a_retransmission_once() -> None:
    log = "".join([
        logged("sent", "REFER sip:asterisk@172.30.153.153:5060 SIP/2.0", "CSeq: 1 REFER", "", ""),
        logged("received", "SIP/2.0 202 Accepted", "CSeq: 1 REFER", "", ""),
        notify(17598, "refer", "SIP/2.0 100 Trying"),
        # 180 and 200 arrived together: -aa answered one of them, which the scenario never logged.
        notify(17599, "refer", "SIP/2.0 180 Ringing"),
        notify(17600, "refer", "SIP/2.0 200 OK"),
        notify(17600, "refer", "SIP/2.0 200 OK"),  # a retransmission
        logged("sent", "SIP/2.0 200 OK", "CSeq: 17600 NOTIFY", "", ""),
    ])
    assert refer_notify_statuses(log) == [100, 180, 200]


def test_other_notifies_and_sent_messages_do_not_count() -> None:
    log = "".join([
        notify(4087, "message-summary", "Messages-Waiting: no"),
        logged("sent", "NOTIFY sip:asterisk@172.30.153.153 SIP/2.0", "CSeq: 3 NOTIFY", "Event: refer", "",
               "SIP/2.0 200 OK", ""),
        notify(17598, "refer", "SIP/2.0 503 Service Unavailable"),
    ])
    assert refer_notify_statuses(log) == [503]


def test_no_log_no_statuses() -> None:
    assert refer_notify_statuses("") == []
