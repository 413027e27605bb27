"""RFC 9132 §4.7's last paragraph: DOTS over TCP, where a heartbeat's sender waits up to heartbeat-interval for its
reply, and a client that detects a failure recovers its session as over an unreliable transport.

Heartbeat-interval H = 2 s is agreed first; missing-hb-allowed 3 is the client's own threshold (its manifest's
knob: over TCP it is not negotiated).

- Reply wait: the tester holds each answer to the client's heartbeats back 0.6 H for (missing-hb-allowed + 2) H.
  Every reply then comes within H, so the client must keep its session: no new connection, its connection not
  ended, its heartbeats going on.
- Detection and recovery: the tester falls silent (its TLS layer still reads; nothing is answered or sent). The
  client must give the session up after missing-hb-allowed unanswered heartbeats, not before, and open a new one
  (a new TCP connection and TLS handshake); the tester then answers again, and the new session must work: its
  configuration and its first heartbeat answered. Time to detect (silence to the new SYN) and time to recover (the
  SYN to the tester's 2.04 of the first heartbeat on the new connection) are reported, and marked on the ladder.
"""
from __future__ import annotations

import time

import pytest

from conformance.dots.rfc9132_s4_7_heartbeat import MISSING, agreed
from conformance.dots_tls.conftest import DotsTlsCase
from fixtures.coapwire import CHANGED
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("dots-tls")

HOLD = 0.6  # of heartbeat-interval: how long the tester holds each answer back in the reply-wait case


def new_connections(dots: DotsTlsCase, after: float) -> list[float]:
    """Capture times of the connection attempts (SYNs) the IUT made after ``after``: from the capture itself, as the
    view in clear holds only the connections the tester took."""
    return sorted({s.t for s in dots.world.capture.segments()
                   if s.proto == "tcp" and s.is_syn and not s.has_ack and s.src == dots.iut and s.t > after})


@pytest.mark.roles("client")
@pytest.mark.requirement("RFC9132-4.7-tcp-reply-wait")
def test_a_heartbeat_reply_within_the_interval_keeps_the_session(dots: DotsTlsCase, verdict):
    interval = agreed(dots, verdict)
    dots.heartbeating = True
    wait_until(lambda: len(dots.heartbeats_from_iut()) >= 2, 4 * interval + 5, poll_max=0.1, what="the IUT's heartbeats")
    held = time.time()
    dots.answer_delay = HOLD * interval
    dots.world.mark(held, f"the tester's answers held back {HOLD * interval:g} s")
    spell = (MISSING + 2) * interval
    wait_until(lambda: time.time() > held + spell, spell + 2, poll_max=0.2, what="the spell to pass")
    conn = dots.conns[0]
    beats = dots.heartbeats_from_iut(held, conn=conn)
    tester_answers = [m for m in dots.wire().sent_by(dots.world.tester_address, after=held, conn=conn.key)
                      if m.msg.code == CHANGED]
    waits = sorted(round(a.t - b.t, 2) for b in beats for a in tester_answers if a.msg.token == b.msg.token)
    end = dots.wire().end_by(dots.iut, after=held, conn=conn.key)
    attempts = new_connections(dots, held)
    problems = []
    if end is not None:
        problems.append(f"it ended its connection ({end.kind.upper()} {end.t - held:.1f} s in)")
    if attempts:
        problems.append(f"it opened a new connection {attempts[0] - held:.1f} s in")
    if len(beats) < MISSING + 1:
        problems.append(f"only {len(beats)} heartbeats on its connection in the {spell:g} s")
    verdict.check("RFC9132-4.7-tcp-reply-wait", not problems,
                  "; ".join(problems) or f"{len(beats)} heartbeats in {spell:g} s, each answered "
                                         f"{', '.join(f'{w:g}' for w in waits[:3])}{'...' if len(waits) > 3 else ''} s "
                                         "after it: the session was kept",
                  measured={"heartbeats": len(beats), "reply_waits_s": waits, "new_connections": len(attempts)},
                  tolerance=f"replies {HOLD * interval:g} s late, within heartbeat-interval = {interval:g} s")


@pytest.mark.roles("client")
@pytest.mark.requirement("RFC9132-4.7-loss-after-missing", "RFC9132-4.7-client-reestablishes", "RFC9132-4.7-tcp-recovery")
def test_a_client_over_tls_detects_a_dead_server_and_recovers(dots: DotsTlsCase, verdict):
    interval = agreed(dots, verdict)
    dots.heartbeating = True
    wait_until(lambda: len(dots.heartbeats_from_iut()) >= 3, 5 * interval + 5, poll_max=0.1, what="the IUT's heartbeats")
    first = dots.current
    died = time.time()
    dots.answering = dots.heartbeating = False
    dots.world.mark(died, "the tester falls silent")
    bound = (MISSING + 2) * interval + 5
    try:
        syn = wait_until(lambda: next(iter(new_connections(dots, died)), None), bound + 2, poll_max=0.1,
                         what="a new connection")
    except TimedOut:
        syn = None
    unanswered = [b for b in dots.heartbeats_from_iut(died, conn=first) if syn is None or b.t < syn]
    tolerance = f"a new connection within (missing-hb-allowed + 2) x {interval:g} s + 5 s = {bound:g} s of the silence"
    if syn is None:
        verdict.check("RFC9132-4.7-client-reestablishes", False,
                      f"the tester fell silent: no new connection within {bound:g} s ({len(unanswered)} unanswered "
                      "heartbeats)", tolerance=tolerance)
        verdict.not_applicable_for("RFC9132-4.7-loss-after-missing", "the IUT never gave the session up")
        verdict.not_applicable_for("RFC9132-4.7-tcp-recovery", "the IUT made no new attempt")
        return
    detect = syn - died
    dots.world.mark(syn, f"detected: a new connection after {detect:.1f} s")
    verdict.check("RFC9132-4.7-client-reestablishes", True,
                  f"the tester fell silent: a new connection {detect:.1f} s later",
                  measured={"detect_s": round(detect, 3), "threshold_s": MISSING * interval}, tolerance=tolerance)
    verdict.check("RFC9132-4.7-loss-after-missing", len(unanswered) >= MISSING,
                  f"the new connection came after {len(unanswered)} unanswered heartbeats (missing-hb-allowed {MISSING})",
                  measured={"unanswered": len(unanswered)})
    dots.answering = True
    second = dots.accept_client()
    if not hasattr(second, "key"):
        verdict.check("RFC9132-4.7-tcp-recovery", False,
                      f"the new connection's TLS handshake failed: {second}" if second else "the tester could not take it")
        return
    dots.heartbeating = True

    def recovered():
        beats = dots.heartbeats_from_iut(syn, conn=second)
        answers = {m.msg.token: m.t for m in dots.wire().sent_by(dots.world.tester_address, after=syn, conn=second.key)
                   if m.msg.code == CHANGED}
        return next((answers[b.msg.token] for b in beats if b.msg.token in answers), None)

    try:
        back = wait_until(recovered, 3 * interval + 10, poll_max=0.1, what="a heartbeat answered on the new session")
    except TimedOut:
        back = None
    if back is not None:
        dots.world.mark(back, f"recovered: a heartbeat answered on the new session, {back - syn:.1f} s after its SYN")
    got = f"a heartbeat answered 2.04 {back - syn:.2f} s after its SYN" if back else "no heartbeat answered"
    verdict.check("RFC9132-4.7-tcp-recovery", back is not None,
                  f"on the new connection: {got}"
                  f" (time to detect {detect:.1f} s against missing-hb-allowed x heartbeat-interval = {MISSING * interval:g} s)",
                  measured={"detect_s": round(detect, 3), "recover_s": round(back - syn, 3) if back else None,
                            "threshold_s": MISSING * interval},
                  tolerance=f"a working session within 3 x {interval:g} s + 10 s of the new connection")
