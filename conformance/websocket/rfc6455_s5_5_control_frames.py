"""RFC 6455 §5.5 limits on control frames, and §7.1.7 failing the connection when a peer breaks them.

A control frame carries at most 125 octets and is never fragmented. The tester breaks each rule once
(a 126-octet Ping; a Ping split into two fragments) and watches the IUT's side of the capture: a
conformant IUT fails the connection and does not answer the bad Ping with a Pong. Failing means
closing TCP; since the connection was open, the IUT SHOULD first send a Close whose code says what went
wrong (§7.1.7). 1002 (protocol error) says it exactly; 1009 (too big) fits the over-long frame and 1008
(policy) is the generic fallback of §7.4.1, so those pass too. A bare TCP close, a Close without a code,
or a code that blames something else is a warning. Every verdict here is taken from the capture alone, so
it stands even where the IUT's answer made the tester stop reading its stream.
"""
from __future__ import annotations

import pytest

from fixtures.testers import wsframes

# How long the IUT has to fail the connection. It only has to read one small frame: 2 s catches
# "never", with room for a loaded machine.
FAIL_BOUND = 2.0

# Status codes that describe a peer's broken framing (RFC 6455 §7.4.1).
FITTING_CODES = {1002: "protocol error", 1008: "policy violation", 1009: "message too big"}

pytestmark = [pytest.mark.protocol("websocket"), pytest.mark.roles("server", "client")]


def judge_failure(ws, verdict, rule: str, what: str, payload: bytes, sent_wall: float) -> None:
    """Grade ``rule`` (the bad frame was not taken as a Ping), RFC6455-7.1.7-fail-connection, and the Close
    that SHOULD come first (RFC6455-7.1.7-fail-close-frame)."""
    ending = ws.wait_ending(FAIL_BOUND, after=sent_wall)
    wire = ws.wire()
    pong = next((f for f in wire.sent_by(ws.iut, wsframes.PONG, after=sent_wall) if payload[:8] in f.payload), None)
    # Control frames the IUT itself sends over 125 octets are the wire validator's to judge, in every case.
    ok = pong is None
    verdict.check(
        rule,
        ok,
        f"the IUT did not take {what} as a Ping" if ok else f"the IUT answered {what} with a Pong of {pong.declared} octets",
        measured={"pong_octets": pong.declared if pong else None},
        wire_only=True,
    )
    delay = round(ending.t - sent_wall, 3) if ending else None
    verdict.check(
        "RFC6455-7.1.7-fail-connection",
        ending is not None,
        f"the IUT failed the connection {delay} s after {what}: {ending.describe()}" if ending
        else f"the connection was still open {FAIL_BOUND:g} s after {what}",
        measured={"fail_s": delay, "ending": ending.describe() if ending else None,
                  "close_code": ending.code if ending else None, "ending_label": ending.label if ending else None},
        tolerance=f"Close or TCP close within {FAIL_BOUND:g} s",
        wire_only=True,
    )
    if ending is None:
        verdict.not_applicable_for("RFC6455-7.1.7-fail-close-frame", "the IUT did not fail the connection")
        return
    fitting = ending.how == "close" and ending.code in FITTING_CODES
    verdict.check(
        "RFC6455-7.1.7-fail-close-frame",
        fitting,
        f"the IUT sent Close {ending.code} ({FITTING_CODES.get(ending.code)}) before closing" if fitting
        else f"the IUT closed without saying why: {ending.describe()}; §7.1.7 allows that only where the peer "
             "could not take a Close, and here its framing was intact" if ending.how != "close"
        else f"the IUT's Close ({ending.describe()}) does not name a protocol error "
             f"(fitting: {', '.join(map(str, FITTING_CODES))})",
        measured={"ending": ending.how, "close_code": ending.code},
        tolerance=f"Close with one of {sorted(FITTING_CODES)} before the TCP close",
        wire_only=True,
    )


def last_tester_frame_time(ws) -> float | None:
    """Wall time of the tester's latest frame in the IUT's capture (when the bad frame reached the IUT)."""
    frames = ws.wire().sent_by(ws.tester)
    return frames[-1].t if frames else None


@pytest.mark.requirement("RFC6455-5.5-control-length", "RFC6455-7.1.7-fail-connection", "RFC6455-7.1.7-fail-close-frame")
def test_ping_of_126_octets_fails_the_connection(ws, verdict):
    """A Ping with 126 octets of data (16-bit length form) is a protocol error: the IUT fails the connection."""
    peer = ws.start(needs_container=False)
    payload = b"oversized-" + bytes(116)
    peer.send_frame(wsframes.PING, payload)
    seen = ws.wait_wire(lambda w: w.first(ws.tester, wsframes.PING), 5)
    if seen is None:
        verdict.inconclusive_rest("the 126-octet Ping does not show in the IUT's capture")
    judge_failure(ws, verdict, "RFC6455-5.5-control-length", "a 126-octet Ping", payload, seen.t)


@pytest.mark.requirement(
    "RFC6455-5.5-control-fragmented", "RFC6455-7.1.7-fail-connection", "RFC6455-7.1.7-fail-close-frame"
)
def test_fragmented_ping_fails_the_connection(ws, verdict):
    """A Ping sent as two fragments (FIN clear, then a continuation) is a protocol error: the IUT fails the connection."""
    peer = ws.start(needs_container=False)
    payload = b"fragmented-ping"
    peer.send(peer.encode(wsframes.PING, payload[:8], fin=False) + peer.encode(wsframes.CONTINUATION, payload[8:]))
    seen = ws.wait_wire(lambda w: w.first(ws.tester, wsframes.CONTINUATION), 5)
    if seen is None:
        verdict.inconclusive_rest("the fragmented Ping does not show in the IUT's capture")
    judge_failure(ws, verdict, "RFC6455-5.5-control-fragmented", "a fragmented Ping", payload, seen.t)
