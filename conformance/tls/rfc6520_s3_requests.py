"""RFC 6520 §2-§4 from the other side: the HeartbeatRequests the IUT sends, and what it does with the Responses.

A server sends Requests when something makes it: the manifest's ``request-trigger`` is application data
that does (gnutls-serv --echo pings on the line "**HEARTBEAT**"). Every case sends the trigger after a
handshake and reads the Requests that follow; an IUT without a trigger makes them not applicable. A
trigger that brings no Request leaves the case inconclusive: it shows nothing about the rule.
"""
from __future__ import annotations

import pytest

from conformance.tls.conftest import ANSWER_BOUND, VERSIONS, Session, TlsCase
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


def start(tls: TlsCase, version: str) -> None:
    tls.start(version, needs_heartbeat=True)
    if not tls.trigger:
        tls.world.verdicts.not_applicable(f"{tls.world.manifest.name} names no request-trigger: nothing makes it send"
                                          " a HeartbeatRequest")


def first_request(tls: TlsCase, session: Session):
    """Trigger the IUT and wait for its first HeartbeatRequest (the case is inconclusive without one)."""
    sent = session.trigger()
    found = session.tls.wait_for(lambda: session.requests(sent.t), ANSWER_BOUND + 1, what="the IUT's HeartbeatRequest")
    if not found:
        tls.world.verdicts.inconclusive_rest(
            f"the request trigger {tls.trigger!r} brought no HeartbeatRequest within {ANSWER_BOUND + 1:g} s "
            f"({session.ended_text()})")
    return sent, found[0]


@pytest.mark.requirement("RFC6520-2-no-request-to-not-allowed")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_no_request_to_a_peer_not_allowed(tls: TlsCase, verdict, version):
    """The trigger brings a Request under peer_allowed_to_send; under peer_not_allowed_to_send it must not."""
    start(tls, version)
    allowed = tls.open_session(version)
    _, (record, request) = first_request(tls, allowed)
    allowed.tls.send_heartbeat(RESPONSE, request.payload)  # answered, so the IUT is free for the next connection
    allowed.quiet_for(0.5, record.t)
    refused = tls.open_session(version, PEER_NOT_ALLOWED_TO_SEND)
    sent = refused.trigger()
    got = refused.quiet_for(WATCH, sent.t)
    requests = [r for r in got if (hb := r.heartbeat) is not None and hb.kind == 1]
    verdict.check(
        NO_REQUEST, not requests,
        (f"the tester said peer_not_allowed_to_send and the IUT sent a Request anyway: {requests[0].describe()}"
         if requests else f"under peer_allowed_to_send the trigger brought a Request; under peer_not_allowed_to_send "
                          f"none came in {WATCH:g} s"),
        measured={"requests": len(requests)}, tolerance=f"no Request within {WATCH:g} s of the trigger")


@pytest.mark.requirement("RFC6520-3-one-in-flight")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_one_request_in_flight(tls: TlsCase, verdict, version):
    """The IUT's Requests go unanswered: each new one must wait for the one before to time out."""
    start(tls, version)
    session = tls.open_session(version)
    _, (record, _) = first_request(tls, session)
    session.quiet_for(WATCH, record.t)
    requests = [r for r, _ in session.requests(record.t)]
    times = session.capture_times(requests)
    clock = "capture"
    if times is None:  # the capture's records could not be matched to the tester's: its own clock, said so
        times, clock = [r.t for r in requests], "tester's clock (the capture's records could not be matched)"
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    close = [g for g in gaps if g < MIN_TIMER - CLOCK_SLACK]
    spacing = f", {', '.join(f'{g:.3f}' for g in gaps)} s apart" if gaps else ""
    verdict.check(
        IN_FLIGHT, not close,
        (f"a Request followed the one before after {close[0]:.3f} s, unanswered: two in flight" if close else
         f"{len(times)} unanswered Request(s) in {WATCH:g} s{spacing}"),
        measured={"requests": len(times), "gaps_s": gaps, "clock": clock},
        tolerance=f"a new Request no sooner than {MIN_TIMER:g} s (- {CLOCK_SLACK:g} s) after the one before")


@pytest.mark.requirement("RFC6520-4-timer-stop")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_a_right_response_stops_the_timer(tls: TlsCase, verdict, version):
    """The tester answers the IUT's Request exactly: the Request must not come again."""
    start(tls, version)
    session = tls.open_session(version)
    _, (record, request) = first_request(tls, session)
    answer = session.tls.send_heartbeat(RESPONSE, request.payload)
    session.quiet_for(WATCH, answer.t)
    again = [r for r, hb in session.requests(answer.t) if hb.payload == request.payload]
    verdict.check(
        TIMER, not again,
        (f"the IUT sent the answered Request again {again[0].t - answer.t:.3f} s after its Response" if again
         else f"the answered Request was not sent again in {WATCH:g} s"),
        measured={"repeats": len(again)}, tolerance=f"no repeat within {WATCH:g} s of the Response")


@pytest.mark.requirement("RFC6520-4-response-check")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_a_wrong_response_is_discarded(tls: TlsCase, verdict, version):
    """The tester answers the IUT's Request with one octet of the payload changed: discarded, silently."""
    start(tls, version)
    session = tls.open_session(version)
    _, (record, request) = first_request(tls, session)
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
    verdict.check(WRONG, not alerts and not session.tls.ended, message, measured={"alerts": [a.describe() for a in alerts]})
