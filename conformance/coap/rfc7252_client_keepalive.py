"""RFC 7252 §4.2/§4.3 as a keepalive, with the IUT as a client: the CoAP ping it sends to its server.

An IUT that claims keepalive (its manifest's keepalive-command, with ``{keepalive-interval}``) observes a
resource on the tester and, after that many seconds of silence, checks that the tester is still there with an
Empty Confirmable message, which the tester answers with a Reset. The pings must come at the interval. Then
the tester stops answering (silent, frozen, or the path blackholed); RFC 7252 says nothing of what a client
should then do, so what the IUT does (how many pings go unanswered, whether it retransmits them, whether it
stops, sends something else, or exits) is reported. Everything is timed on the capture in the IUT's namespace.
"""
from __future__ import annotations

import time

import pytest

from conformance.coap.conftest import CoapCase
from fixtures.coapwire import CON
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("coap")

INTERVAL = 2  # seconds: the keepalive-interval the case configures
PINGS = 4  # answered pings before the verdict on the interval
SLACK_FRACTION, SLACK_FIXED = 0.10, 0.25  # a ping may be off its interval by 10 % plus 250 ms
WATCH_INTERVALS = 8  # how long the IUT is watched once the tester is dead
HOW = {
    "silent": "the tester stops answering (its socket still takes every datagram)",
    "frozen": "the tester's processes are frozen (cgroup freezer)",
    "blackholed": "every datagram between the IUT and the tester is dropped",
    "crashed": "the tester's process is killed (its port is closed: ICMP port unreachable from then on)",
}


def pings(coap: CoapCase, after: float):
    return [(d, m) for d, m in coap.from_iut(after) if m.mtype == CON and m.empty and not m.error]


def silences(coap: CoapCase, found) -> list[float]:
    """Each ping's time since the datagram before it between the IUT and the tester, either way."""
    times = sorted(d.t for d in coap.datagrams() if coap.iut in (d.src, d.dst))
    return [round(d.t - max((t for t in times if t < d.t), default=d.t), 3) for d, _ in found]


def started(coap: CoapCase, knobs: dict) -> float:
    coap.start_client(knobs, answer=True)
    coap.launch()
    return time.time()


@pytest.mark.roles("client")
@pytest.mark.requirement("COAP-keepalive-interval")
def test_keepalive_pings_come_at_the_interval(coap: CoapCase, verdict):
    """The tester answers every ping with a Reset: each must end a silence of keepalive-interval seconds."""
    start = started(coap, {"keepalive-interval": INTERVAL})
    slack = INTERVAL * SLACK_FRACTION + SLACK_FIXED
    try:
        wait_until(lambda: len(pings(coap, start)) >= PINGS, (PINGS + 2) * (INTERVAL + slack) + 5, poll_max=0.1,
                   what="the IUT's keepalive pings")
    except TimedOut:
        pass
    found = pings(coap, start)
    tolerance = f"keepalive-interval = {INTERVAL} s of silence before each ping, +/- {slack:.2f} s (10 % + 250 ms)"
    if not found:
        verdict.check("COAP-keepalive-interval", False, f"no Empty Confirmable in {time.time() - start:.1f} s",
                      tolerance=tolerance)
        return
    gaps = silences(coap, found)
    off = [g for g in gaps if abs(g - INTERVAL) > slack]
    verdict.check("COAP-keepalive-interval", not off and len(found) >= PINGS,
                  f"{len(found)} pings, after {', '.join(f'{g:.3f}' for g in gaps)} s of silence "
                  f"(keepalive-interval {INTERVAL} s)", measured={"pings": len(found), "silence_s": gaps},
                  tolerance=tolerance)


@pytest.mark.roles("client")
@pytest.mark.requirement("COAP-keepalive-dead-peer")
@pytest.mark.parametrize("how", HOW, ids=HOW)
def test_what_a_client_does_when_its_pings_go_unanswered(coap: CoapCase, verdict, how):
    """Two answered pings, then the tester dies: what the IUT sends in the next eight intervals is reported."""
    start = started(coap, {"keepalive-interval": INTERVAL})
    try:
        wait_until(lambda: len(pings(coap, start)) >= 2, 4 * INTERVAL + 5, poll_max=0.1, what="the IUT's pings")
    except TimedOut:
        verdict.inconclusive_rest("the IUT sent fewer than 2 pings, so it keeps no keepalive to watch "
                                  "(see COAP-keepalive-interval)")
    before = time.time()
    coap.world.tester_dies(how, mute=lambda: setattr(coap, "answering", False))
    until = before + WATCH_INTERVALS * INTERVAL
    wait_until(lambda: time.time() > until or coap.world.iut.container.exit_code() is not None,
               WATCH_INTERVALS * INTERVAL + 2, poll_max=0.2, what="the watch to end")
    sent = coap.from_iut(before)
    unanswered = [m for _, m in sent if m.mtype == CON and m.empty]
    mids = [m.mid for m in unanswered]
    retransmitted = len(mids) - len(set(mids))
    others = [m.describe() for _, m in sent if not (m.mtype == CON and m.empty)]
    exited = coap.world.iut.container.exit_code()
    last = f"{sent[-1][0].t - before:.1f} s in" if sent else "none"
    verdict.observe("COAP-keepalive-dead-peer",
                    f"{HOW[how]}: {len(unanswered)} unanswered pings ({retransmitted} of them retransmissions)"
                    + (f", then {', '.join(others[:3])}" if others else "")
                    + f"; its last CoAP message {last}" + coap.below_coap(before)
                    + (f"; it exited with status {exited}" if exited is not None else
                       f"; still running {time.time() - before:.0f} s after"),
                    measured={"pings": len(unanswered), "retransmitted": retransmitted, "others": others[:5],
                              "exit": exited})
