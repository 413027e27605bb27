"""RFC 9132 §4.7 (and §4.5.2's "use the negotiated values"): the DOTS heartbeat, with the IUT as server or client.

Both agents heartbeat: a Non-confirmable PUT to /.well-known/dots/hb whose body says, in peer-hb-status, whether
the sender heard its peer's heartbeats in the last two intervals; the peer answers 2.04. Against a server IUT the
tester first agrees a heartbeat-interval H with a configuration PUT (2 s, or the server's minimum if higher);
a client IUT is given H in its keepalive-command and negotiates it with the tester, which plays the DOTS server.
The tester heartbeats every H too and answers the IUT's heartbeats 2.04. Every interval and every answer is
timed on the capture, rebuilt in clear from the tester's keys. The form of each heartbeat (Non-confirmable,
Content-Format, body, no cuid/cdid/mid) is the DOTS wire validator's, in these cases and every other.
"""
from __future__ import annotations

import time

import pytest

from conformance.dots.conftest import CREATED, DotsCase
from fixtures.coapwire import CHANGED, CONTENT, GET, PUT, code_text
from fixtures.dotswire import CONFIG_PATH, config_values, decode, signal_config
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("dots")

INTERVAL = 2  # seconds: the heartbeat-interval the cases ask for
MISSING = 3  # missing-hb-allowed
GAPS = 4  # heartbeat gaps judged
SLACK_FRACTION, SLACK_FIXED = 0.10, 0.25  # a heartbeat may be off its interval by 10 % plus 250 ms


def slack(interval: float) -> float:
    return interval * SLACK_FRACTION + SLACK_FIXED


def agreed(dots: DotsCase, verdict) -> float:
    """Bring the IUT to a heartbeat-interval H the tester knows (and, over DTLS, missing-hb-allowed); returns H
    (the case is inconclusive if it cannot)."""
    if dots.world.role == "client":
        dots.start_client({"heartbeat-interval": INTERVAL, "missing-hb-allowed": MISSING})
        dots.launch()
        return float(INTERVAL)
    dots.start()
    seen = dots.request(GET, CONFIG_PATH)
    if seen is None or seen.msg.code != CONTENT:
        got = f"answered {code_text(seen.msg.code)}" if seen else "not answered"
        verdict.inconclusive_rest(f"the configuration GET was {got} "
                                  "(see RFC9132-4.5.1-config-ranges)")
    low = config_values(decode(seen.msg.payload), "min-value")
    interval = max([INTERVAL] + [int(v["heartbeat-interval"]) for v in low.values() if "heartbeat-interval" in v])
    missing = max([MISSING] + [int(v["missing-hb-allowed"]) for v in low.values() if "missing-hb-allowed" in v])
    values = {"heartbeat-interval": interval, "missing-hb-allowed": missing}
    if dots.reliable:  # over TCP missing-hb-allowed is not negotiated (RFC 9132 §4.5)
        del values["missing-hb-allowed"]
    put = dots.request(PUT, (*CONFIG_PATH, "sid=1"), signal_config({"mitigating-config": values, "idle-config": values}))
    if put is None or put.msg.code not in (CREATED, CHANGED):
        verdict.inconclusive_rest(f"the IUT did not accept heartbeat-interval {interval} within its own range: "
                                  f"{code_text(put.msg.code) if put else 'no answer'}")
    dots.interval = float(interval)
    dots.agreed_at = put.t
    return float(interval)


def wait_for_heartbeats(dots: DotsCase, after: float, count: int, interval: float) -> list:
    try:
        wait_until(lambda: len(dots.heartbeats_from_iut(after)) >= count, (count + 3) * (interval + slack(interval)) + 5,
                   poll_max=0.1, what="the IUT's heartbeats")
    except TimedOut:
        pass
    return dots.heartbeats_from_iut(after)


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("RFC9132-4.5.2-negotiated-interval", "RFC9132-4.7-heartbeat-answered",
                         "RFC9132-4.7-heartbeat-non-put", "RFC9132-4.7-heartbeat-no-ids")
def test_heartbeats_come_at_the_negotiated_interval_and_are_answered(dots: DotsCase, verdict):
    """With H agreed, the tester heartbeats every H; the IUT's own heartbeats must come H apart, and each of the
    tester's must be answered 2.04 within H. The form of the IUT's heartbeats is judged by the wire validator."""
    interval = agreed(dots, verdict)
    start = getattr(dots, "agreed_at", time.time())
    dots.heartbeating = True
    beats = wait_for_heartbeats(dots, start, GAPS + 1, interval)
    tolerance = f"heartbeat-interval = {interval:g} s between two heartbeats, +/- {slack(interval):.2f} s (10 % + 250 ms)"
    gaps = [round(b.t - a.t, 3) for a, b in zip(beats, beats[1:], strict=False)]
    off = [g for g in gaps if abs(g - interval) > slack(interval)]
    verdict.check("RFC9132-4.5.2-negotiated-interval", len(gaps) >= GAPS and not off,
                  f"{len(beats)} heartbeats in {time.time() - start:.1f} s, "
                  + (f"{', '.join(f'{g:.3f}' for g in gaps)} s apart" if gaps else "too few to time")
                  + f" (heartbeat-interval {interval:g} s)", measured={"heartbeats": len(beats), "gaps_s": gaps},
                  tolerance=tolerance)
    dots.heartbeating = False
    sent = [(t, token) for t, token in dots.tester_heartbeats if t < time.time() - interval]
    answers = {s.msg.token: s for s in dots.from_iut(start) if s.msg.cls in (2, 4, 5)}
    late = [f"{code_text(answers[tok].msg.code)} after {answers[tok].t - t:.2f} s" if tok in answers else "no answer"
            for t, tok in sent if tok not in answers or answers[tok].msg.code != CHANGED or answers[tok].t - t > interval]
    bodied = [tok for _, tok in sent if tok in answers and answers[tok].msg.payload]
    verdict.check("RFC9132-4.7-heartbeat-answered", bool(sent) and not late,
                  f"{len(sent)} heartbeats of the tester's: " + ("each answered 2.04" if not late else "; ".join(late[:4]))
                  + (f"; {len(bodied)} answers carried a body (RFC 9132's Figure 28 shows the 2.04 without one)"
                     if bodied else ""),
                  measured={"sent": len(sent), "wrong": len(late), "answers_with_body": len(bodied)})


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("RFC9132-4.7-peer-hb-status")
def test_peer_hb_status_follows_the_tester_s_heartbeats(dots: DotsCase, verdict):
    """The tester heartbeats for 4 H, then stops (it still answers): the IUT's peer-hb-status must be true while the
    tester's last heartbeat is under 2 H old (from its second on), and false once it is over 2 H old."""
    interval = agreed(dots, verdict)
    dots.heartbeating = True
    wait_until(lambda: len(dots.tester_heartbeats) >= 5, 6 * interval + 5, poll_max=0.1, what="the tester's heartbeats")
    dots.heartbeating = False
    stopped = dots.tester_heartbeats[-1][0]
    margin = slack(interval)
    until = stopped + 2 * interval + margin + 2.5 * interval
    wait_until(lambda: time.time() > until, until - time.time() + 2, poll_max=0.2, what="the watch to end")
    times = [t for t, _ in dots.tester_heartbeats]
    judged, wrong = [], []
    for beat in dots.heartbeats_from_iut(times[0]):
        before = [t for t in times if t <= beat.t]
        age = beat.t - before[-1] if before else None
        if len(before) >= 2 and age < 2 * interval - margin:
            expected = True
        elif beat.t > stopped + 2 * interval + margin:
            expected = False
        else:
            continue
        judged.append(f"{beat.t - times[0]:.1f} s: {beat.status}")
        if beat.status is not expected:
            wrong.append(f"the heartbeat {beat.t - times[0]:.1f} s in said {beat.status} with the tester's last heartbeat "
                         f"{age:.1f} s old (expected {str(expected).lower()})")
    expected_false = any(t.endswith("False") for t in judged) or any("expected false" in w for w in wrong)
    verdict.check("RFC9132-4.7-peer-hb-status", bool(judged) and expected_false and not wrong,
                  "; ".join(wrong[:3]) or (f"peer-hb-status of the IUT's heartbeats ({', '.join(judged)}); the tester "
                                           f"stopped {stopped - times[0]:.1f} s in" if judged else
                                           "no heartbeat of the IUT's could be judged"),
                  measured={"judged": judged, "wrong": wrong[:5]},
                  tolerance=f"true while the tester's last heartbeat is under 2 H - {margin:.2f} s old, false once it is "
                            f"over 2 H + {margin:.2f} s (H = {interval:g} s)")
