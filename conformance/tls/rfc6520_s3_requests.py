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


@pytest.mark.requirement("RFC6520-3-one-in-flight", "RFC6520-4-timer-stop", "RFC6520-4-response-check")
@pytest.mark.roles("server")
def test_the_iut_s_own_requests(tls: TlsCase, verdict):
    """Per version, three sessions, each starting with a triggered Request: left unanswered (each new Request
    must wait for the one before to time out); answered exactly (it must not come again); answered with one
    octet of the payload changed (discarded, silently)."""
    start(tls)
    in_flight, timer, wrong = PerVersion(verdict, IN_FLIGHT), PerVersion(verdict, TIMER), PerVersion(verdict, WRONG)
    for version in tls.versions:
        for _, session in tls.each_version(in_flight, only=version):
            first = first_request(tls, in_flight, version, session)
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
            in_flight.check(
                version, not close,
                (f"a Request followed the one before after {close[0]:.3f} s, unanswered: two in flight" if close else
                 f"{len(times)} unanswered Request(s) in {WATCH:g} s{spacing}"),
                requests=len(times), gaps_s=gaps, clock=clock)
        for _, session in tls.each_version(timer, only=version):
            first = first_request(tls, timer, version, session)
            if first is None:
                continue
            _, request = first
            answer = session.tls.send_heartbeat(RESPONSE, request.payload)
            session.quiet_for(WATCH, answer.t)
            # A copy within half the smallest retransmission timer was on its way before the Response arrived.
            again = [r for r, hb in session.requests(answer.t + MIN_TIMER / 2) if hb.payload == request.payload]
            timer.check(
                version, not again,
                (f"the IUT sent the answered Request again {again[0].t - answer.t:.3f} s after its Response" if again
                 else f"the answered Request was not sent again in {WATCH:g} s"),
                repeats=len(again))
        for _, session in tls.each_version(wrong, only=version):
            first = first_request(tls, wrong, version, session)
            if first is None:
                continue
            _, request = first
            altered = bytearray(request.payload or b"\0")
            altered[-1] ^= 0xFF
            answer = session.tls.send_heartbeat(RESPONSE, bytes(altered))
            got = session.quiet_for(1.5, answer.t)
            alerts = [r for r in got if r.alert is not None]
            if alerts or session.tls.ended:
                message = "the IUT did not discard a Response with the wrong payload silently: " + (
                    alerts[0].describe() if alerts else session.ended_text())
            else:
                message = "the IUT discarded a Response with the wrong payload silently (no alert, the connection open)"
            wrong.check(version, not alerts and not session.tls.ended, message, alerts=[a.describe() for a in alerts])
    in_flight.record(f"a new Request no sooner than {MIN_TIMER:g} s (- {CLOCK_SLACK:g} s) after the one before, by the capture")
    timer.record(f"no repeat from {MIN_TIMER / 2:g} s to {WATCH:g} s after the Response")
    wrong.record()
