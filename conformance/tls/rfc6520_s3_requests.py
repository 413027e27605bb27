"""RFC 6520 §2-§4 from the other side: the HeartbeatRequests the IUT sends, and what it does with the Responses.

A server sends Requests when something makes it: the manifest's ``request-trigger`` is application data
that does (gnutls-serv --echo pings on the line "**HEARTBEAT**"). Every case sends the trigger after a
handshake and reads the Requests that follow, once per TLS version the IUT speaks; an IUT without a trigger
makes them not applicable. A trigger that brings no Request leaves that version inconclusive: it shows
nothing about the rule.
"""
from __future__ import annotations

import pytest

from conformance.tls.conftest import ANSWER_BOUND, PerVersion, Session, TlsCase
from fixtures.testers.tls import PEER_NOT_ALLOWED_TO_SEND, RESPONSE

pytestmark = pytest.mark.protocol("tls")

NO_REQUEST = "RFC6520-2-no-request-to-not-allowed"
IN_FLIGHT = "RFC6520-3-one-in-flight"
WRONG = "RFC6520-4-response-check"
TIMER = "RFC6520-4-timer-stop"
# RFC 6347 §4.2.4.1: the smallest initial retransmission timer; a Request sooner than this after the one
# before is in flight beside it.
MIN_TIMER = 1.0
CLOCK_SLACK = 0.05
WATCH = 3.0  # seconds a case watches for Requests that should (not) come


def start(tls: TlsCase) -> None:
    tls.start(needs_heartbeat=True)
    if not tls.trigger:
        tls.world.verdicts.not_applicable(f"{tls.world.manifest.name} names no request-trigger: nothing makes it send"
                                          " a HeartbeatRequest")


def first_request(tls: TlsCase, judge: PerVersion, version: str, session: Session):
    """Trigger the IUT and wait for its first HeartbeatRequest: (record, message), or None (the version inconclusive)."""
    sent = session.trigger()
    found = session.tls.wait_for(lambda: session.requests(sent.t), ANSWER_BOUND + 1, what="the IUT's HeartbeatRequest")
    if not found:
        judge.inconclusive(version, f"the request trigger {tls.trigger!r} brought no HeartbeatRequest within "
                                    f"{ANSWER_BOUND + 1:g} s ({session.ended_text()})")
        return None
    return found[0]


@pytest.mark.requirement("RFC6520-2-no-request-to-not-allowed")
@pytest.mark.roles("server")
def test_no_request_to_a_peer_not_allowed(tls: TlsCase, verdict):
    """The trigger brings a Request under peer_allowed_to_send; under peer_not_allowed_to_send it must not."""
    start(tls)
    judge = PerVersion(verdict, NO_REQUEST)
    for version, allowed in tls.each_version(judge):
        first = first_request(tls, judge, version, allowed)
        if first is None:
            continue
        record, request = first
        allowed.tls.send_heartbeat(RESPONSE, request.payload)  # answered, so the IUT is free for the next connection
        allowed.quiet_for(0.5, record.t)
        refused = tls.session(version, PEER_NOT_ALLOWED_TO_SEND)
        if not refused.handshake.ok:
            judge.inconclusive(version, f"the handshake under peer_not_allowed_to_send failed ({refused.handshake.describe()})")
            continue
        sent = refused.trigger()
        got = refused.quiet_for(WATCH, sent.t)
        requests = [r for r in got if (hb := r.heartbeat) is not None and hb.kind == 1]
        judge.check(
            version, not requests,
            (f"the tester said peer_not_allowed_to_send and the IUT sent a Request anyway: {requests[0].describe()}"
             if requests else f"under peer_allowed_to_send the trigger brought a Request; under peer_not_allowed_to_send "
                              f"none came in {WATCH:g} s"),
            requests=len(requests))
    judge.record(f"no Request within {WATCH:g} s of the trigger")


@pytest.mark.requirement("RFC6520-3-one-in-flight")
@pytest.mark.roles("server")
def test_one_request_in_flight(tls: TlsCase, verdict):
    """The IUT's Requests go unanswered: each new one must wait for the one before to time out."""
    start(tls)
    judge = PerVersion(verdict, IN_FLIGHT)
    for version, session in tls.each_version(judge):
        first = first_request(tls, judge, version, session)
        if first is None:
            continue
        record, _ = first
        session.quiet_for(WATCH, record.t)
        requests = [r for r, _ in session.requests(record.t)]
        times = session.capture_times(requests)
        clock = "capture"
        if times is None:  # the capture's records could not be matched to the tester's: its own clock, said so
            times, clock = [r.t for r in requests], "tester's clock (the capture's records could not be matched)"
        gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
        close = [g for g in gaps if g < MIN_TIMER - CLOCK_SLACK]
        spacing = f", {', '.join(f'{g:.3f}' for g in gaps)} s apart" if gaps else ""
        judge.check(
            version, not close,
            (f"a Request followed the one before after {close[0]:.3f} s, unanswered: two in flight" if close else
             f"{len(times)} unanswered Request(s) in {WATCH:g} s{spacing}"),
            requests=len(times), gaps_s=gaps, clock=clock)
    judge.record(f"a new Request no sooner than {MIN_TIMER:g} s (- {CLOCK_SLACK:g} s) after the one before, by the capture")


@pytest.mark.requirement("RFC6520-4-timer-stop")
@pytest.mark.roles("server")
def test_a_right_response_stops_the_timer(tls: TlsCase, verdict):
    """The tester answers the IUT's Request exactly: the Request must not come again."""
    start(tls)
    judge = PerVersion(verdict, TIMER)
    for version, session in tls.each_version(judge):
        first = first_request(tls, judge, version, session)
        if first is None:
            continue
        _, request = first
        answer = session.tls.send_heartbeat(RESPONSE, request.payload)
        session.quiet_for(WATCH, answer.t)
        again = [r for r, hb in session.requests(answer.t) if hb.payload == request.payload]
        judge.check(
            version, not again,
            (f"the IUT sent the answered Request again {again[0].t - answer.t:.3f} s after its Response" if again
             else f"the answered Request was not sent again in {WATCH:g} s"),
            repeats=len(again))
    judge.record(f"no repeat within {WATCH:g} s of the Response")


@pytest.mark.requirement("RFC6520-4-response-check")
@pytest.mark.roles("server")
def test_a_wrong_response_is_discarded(tls: TlsCase, verdict):
    """The tester answers the IUT's Request with one octet of the payload changed: discarded, silently."""
    start(tls)
    judge = PerVersion(verdict, WRONG)
    for version, session in tls.each_version(judge):
        first = first_request(tls, judge, version, session)
        if first is None:
            continue
        _, request = first
        wrong = bytearray(request.payload or b"\0")
        wrong[-1] ^= 0xFF
        answer = session.tls.send_heartbeat(RESPONSE, bytes(wrong))
        got = session.quiet_for(1.5, answer.t)
        alerts = [r for r in got if r.alert is not None]
        if alerts or session.tls.ended:
            message = "the IUT did not discard a Response with the wrong payload silently: " + (
                alerts[0].describe() if alerts else session.ended_text())
        else:
            message = "the IUT discarded a Response with the wrong payload silently (no alert, the connection open)"
        judge.check(version, not alerts and not session.tls.ended, message, alerts=[a.describe() for a in alerts])
    judge.record()
