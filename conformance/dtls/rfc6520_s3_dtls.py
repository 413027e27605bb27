"""RFC 6520 §3 rules that only DTLS has: an unanswered HeartbeatRequest is retransmitted on the DTLS timer of
RFC 6347 §4.2.4 and the association is given up after a bounded number of tries; a handshake that starts
stops that timer; Requests from an older epoch are discarded.

Over UDP every record header is in clear, so the capture in the IUT's namespace times each heartbeat record
(content type 24) the IUT sends; the tester decrypts them (tls.txt) to tell a retransmission (the same
payload) from a new Request.
"""
from __future__ import annotations

import time

import pytest

from conformance.tls.conftest import ANSWER_BOUND, PerVersion, TlsCase, payload
from conformance.tls.rfc6520_s3_requests import MIN_TIMER, first_request, start
from conformance.tls.rfc6520_s4_messages import _judge_discarded
from fixtures.protocols.dtls import RETRANSMIT_WATCH
from fixtures.testers.tls import HANDSHAKE, HEARTBEAT, REQUEST, heartbeat

pytestmark = pytest.mark.protocol("dtls")

RETRANSMIT = "RFC6520-3-dtls-retransmit"
TERMINATE = "RFC6520-3-dtls-terminate"
OLD_EPOCH = "RFC6520-3-dtls-old-epoch"
STOP_TIMER = "RFC6520-3-dtls-stop-timer"
STOP_WATCH = 4.0  # seconds watched after the ClientHello: the IUT's timer (1 s at first) would fire in them
CLOCK_SLACK = 0.05  # capture timestamps and the timers of a loaded machine
# After the last transmission the suite waits this many times its gap (and 1 s) for the next one before it
# takes the IUT to have stopped: a timer that doubles would have fired by then.
QUIET_FACTOR = 2.0


def _quiet_after(session, request_payload: bytes, until: float) -> list:
    """Wait, up to wall time ``until``, for the IUT to stop sending the Request with ``request_payload``
    (no copy for QUIET_FACTOR x the last gap + 1 s) or for the association to end; the copies seen."""

    def copies():
        return [r for r, hb in session.requests() if hb.payload == request_payload]

    def stopped():
        seen = copies()
        if session.tls.ended is not None:
            return True
        gap = seen[-1].t - seen[-2].t if len(seen) >= 2 else MIN_TIMER
        return time.time() > seen[-1].t + QUIET_FACTOR * gap + 1.0

    session.tls.wait_for(stopped, max(until - time.time(), 0), what="the IUT's retransmissions to stop")
    return copies()


@pytest.mark.requirement("RFC6520-3-dtls-retransmit", "RFC6520-3-dtls-terminate")
@pytest.mark.roles("server")
@pytest.mark.budget(RETRANSMIT_WATCH)
def test_an_unanswered_request_is_retransmitted_then_given_up(tls: TlsCase, verdict):
    """The trigger brings a HeartbeatRequest, which the tester never answers: it must come again on the DTLS
    timer (1 s at first, doubling), and after a number of tries the IUT should end the association. Once the
    copies stop, a well-formed Request from the tester tells whether the association still lives."""
    start(tls)
    retransmit, terminate = PerVersion(verdict, RETRANSMIT), PerVersion(verdict, TERMINATE)
    for version, session in tls.each_version(retransmit, terminate):
        first = first_request(tls, retransmit, version, session)
        if first is None:
            terminate.inconclusive(version, "no HeartbeatRequest came, so nothing was left unanswered")
            continue
        record, request = first
        copies = _quiet_after(session, request.payload, record.t + RETRANSMIT_WATCH)
        others = [r for r, hb in session.requests(record.t) if hb.payload != request.payload]
        times = session.capture_times(copies)
        clock = "capture"
        if times is None:
            times, clock = [r.t for r in copies], "tester's clock (the capture's records could not be matched)"
        gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
        early = [g for g in gaps if g < MIN_TIMER - CLOCK_SLACK]
        spacing = ", ".join(f"{g:.3f}" for g in gaps)
        if len(copies) < 2:
            message = (f"the unanswered Request was not sent again in {RETRANSMIT_WATCH:g} s"
                       + (f" ({len(others)} Request(s) with another payload came)" if others else "")
                       + (f"; {session.ended_text()}" if session.tls.ended else ""))
        elif early:
            message = f"the Request came again {early[0]:.3f} s after the one before: sooner than the DTLS timer's 1 s"
        else:
            doubling = all(b >= a * 1.5 for a, b in zip(gaps, gaps[1:], strict=False))
            message = (f"{len(copies)} transmissions of the unanswered Request, {spacing} s apart"
                       + (" (the timer doubling)" if doubling and len(gaps) > 1 else ""))
        retransmit.check(version, len(copies) >= 2 and not early, message, transmissions=len(copies), gaps_s=gaps,
                         clock=clock)
        if session.tls.ended is not None:
            terminate.check(version, True, f"after {len(copies)} unanswered transmission(s) the IUT ended the "
                                           f"association: {session.ended_text()}", transmissions=len(copies))
            continue
        if time.time() >= record.t + RETRANSMIT_WATCH:  # the copies had not stopped when the watch ran out
            terminate.check(version, False, f"the IUT still sent the Request {len(copies)} times over "
                                            f"{copies[-1].t - record.t:.1f} s and had not given up after "
                                            f"{RETRANSMIT_WATCH:g} s", transmissions=len(copies))
            continue
        probe = payload(16, "still-there")
        sent = session.request(probe)
        answer = session.answer_to(sent, probe)
        exited = not tls.world.external and tls.world.iut.container.status() == "exited"
        if answer is not None:
            terminate.check(version, False, f"the IUT stopped after {len(copies)} transmission(s) but kept the "
                                            "association: it answered the tester's next Request", transmissions=len(copies))
        else:
            how = "its process exited" if exited else "it answered no further Request"
            terminate.check(version, True, f"after {len(copies)} unanswered transmission(s) the IUT gave the "
                                           f"association up: {how}", transmissions=len(copies), exited=exited)
    retransmit.record(f"at least one retransmission within {RETRANSMIT_WATCH:g} s, none sooner than "
                      f"{MIN_TIMER:g} s (- {CLOCK_SLACK:g} s) after the one before, by the capture")
    terminate.record(f"the association ended within {RETRANSMIT_WATCH:g} s of the first transmission")


@pytest.mark.requirement("RFC6520-3-dtls-old-epoch")
@pytest.mark.roles("server", "client")
def test_requests_from_an_older_epoch_are_discarded(tls: TlsCase, verdict):
    """After the handshake, a HeartbeatRequest in epoch 0 (the handshake's, in clear) must not be answered;
    a well-formed Request in the current epoch still is."""
    tls.start(needs_heartbeat=True)
    judge = PerVersion(verdict, OLD_EPOCH)
    for version, session in tls.each_version(judge, send_requests=True):
        data = payload(20, "old-epoch")
        sent = session.tls.send_clear(HEARTBEAT, heartbeat(REQUEST, data))
        _judge_discarded(tls, judge, version, session, sent, "a HeartbeatRequest in epoch 0 (in clear)", data)
    judge.record(f"no Response within {ANSWER_BOUND:g} s")


@pytest.mark.requirement("RFC6520-3-dtls-stop-timer")
@pytest.mark.roles("server")
def test_a_handshake_stops_the_request_s_retransmission_timer(tls: TlsCase, verdict):
    """The trigger brings a HeartbeatRequest, which the tester leaves unanswered and at once starts a new
    handshake (a renegotiation ClientHello in the current epoch): the Request must not come again."""
    start(tls)
    judge = PerVersion(verdict, STOP_TIMER)
    for version, session in tls.each_version(judge):
        first = first_request(tls, judge, version, session)
        if first is None:
            continue
        record, request = first
        hello = session.tls.send_client_hello()
        session.quiet_for(STOP_WATCH, hello.t)
        # The capture's time for the ClientHello: the tester's only handshake record after its first Request.
        wire_hello = next((w.t for w in session.wire_from_tester() if w.content_type == HANDSHAKE and w.t >= record.t - 0.05),
                          hello.t)
        again = [w for w in session.iut_requests_on_wire() if w.t > wire_hello + CLOCK_SLACK]
        copies = [r for r, hb in session.requests(hello.t) if hb.payload == request.payload]
        if again or copies:
            late = (again[0].t - wire_hello) if again else (copies[0].t - hello.t)
            judge.check(version, False, f"the Request came again {late:.3f} s after the tester's ClientHello reached the IUT",
                        retransmissions=max(len(again), len(copies)))
        else:
            judge.check(version, True, f"no heartbeat record from the IUT in the {STOP_WATCH:g} s after the tester's "
                                       f"ClientHello ({session.ended_text()})")
    judge.record(f"no heartbeat record from the IUT from {CLOCK_SLACK:g} s to {STOP_WATCH:g} s after the ClientHello, "
                 "by the capture")
