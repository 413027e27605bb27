"""RFC 6455 §5.4: a Ping may arrive between the fragments of a message; it is answered, promptly
(§5.5.2), and the message still completes intact.

The tester sends a large text message in three fragments with a Ping after the first (the large)
one. The Ping-to-Pong delay comes from the IUT's capture: the tester's Ping complete on the wire to
the IUT's Pong complete on the wire. Every reference peer here is an echo endpoint; where the IUT
echoes, the echoed message is compared octet for octet.
"""
from __future__ import annotations

import pytest

from fixtures.testers import wsframes

FIRST_FRAGMENT = 256 * 1024  # octets: the "large message" the Pong may have to wait behind
# The Pong must come at all: a generous bound, as the IUT may finish reading a large fragment first.
REPLY_BOUND = 5.0
# "As soon as practical" (SHOULD): beyond this, the Pong waited on something other than the wire.
PROMPT_BOUND = 1.0

pytestmark = [pytest.mark.protocol("websocket"), pytest.mark.roles("server", "client")]


@pytest.mark.requirement("RFC6455-5.4-interleaved-control", "RFC6455-5.5.2-pong-promptly")
def test_ping_between_fragments_is_answered(ws, verdict):
    """Fragment (256 KiB), Ping, fragment, last fragment: the Ping gets its Pong and the message arrives whole."""
    peer = ws.start(needs_container=False)
    parts = [b"a" * FIRST_FRAGMENT, b"b" * 100, b"c" * 100]
    message = b"".join(parts)
    ping = b"between-fragments"
    peer.send(peer.encode(wsframes.TEXT, parts[0], fin=False))
    peer.send(peer.encode(wsframes.PING, ping))
    peer.send(peer.encode(wsframes.CONTINUATION, parts[1], fin=False) + peer.encode(wsframes.CONTINUATION, parts[2]))
    pong = peer.wait_frame(lambda r: r.opcode == wsframes.PONG and r.payload == ping, REPLY_BOUND)
    echo = peer.wait_frame(lambda r: r.opcode in (wsframes.TEXT, wsframes.CONTINUATION) and r.frame.fin, REPLY_BOUND)
    echoed = b"".join(r.payload for r in peer.frames if r.opcode in (wsframes.TEXT, wsframes.CONTINUATION))
    # The capture can lag the tester's socket by a little: wait for the pair there (if the Pong came at all).
    wire = ws.wait_wire(lambda w: w if any(f.payload == ping for f in w.sent_by(ws.iut, wsframes.PONG)) else None,
                        3 if pong else 0.1) or ws.wire()
    wire_ping = wire.first(ws.tester, wsframes.PING)
    wire_pong = next((f for f in wire.sent_by(ws.iut, wsframes.PONG) if f.payload == ping), None)
    ended = ws.ending(wire)

    intact = echo is None or echoed == message
    ok = pong is not None and intact and (ended is None or (wire_pong is not None and ended.t > wire_pong.t))
    if pong is None:
        message_text = f"no Pong within {REPLY_BOUND:g} s for a Ping between fragments" + (
            f"; the IUT ended the connection: {ended.describe()}" if ended else "")
    elif not intact:
        message_text = f"the Ping was answered, but the message came back as {len(echoed)} octets, not {len(message)}"
    elif ended is not None:
        message_text = f"the Ping was answered, then the IUT ended the connection: {ended.describe()}"
    else:
        message_text = "the Ping was answered and " + (
            "the message came back intact" if echo else "the connection stayed open (the IUT echoed nothing to compare)")
    verdict.check(
        "RFC6455-5.4-interleaved-control",
        ok,
        message_text,
        measured={"message_octets": len(message), "echo_octets": len(echoed) if echo else None,
                  "ending": ended.describe() if ended else None},
        tolerance=f"Pong within {REPLY_BOUND:g} s",
    )
    if wire_ping is None or wire_pong is None:
        verdict.inconclusive("RFC6455-5.5.2-pong-promptly", "the capture holds no Ping/Pong pair to time")
        return
    delay = round(wire_pong.t - wire_ping.t, 4)
    measured = {"pong_delay_s": delay, "behind_octets": FIRST_FRAGMENT}
    tolerance = f"Pong within {PROMPT_BOUND:g} s of the Ping on the wire (capture)"
    if delay <= PROMPT_BOUND:
        verdict.observe("RFC6455-5.5.2-pong-promptly",
                        f"the Pong left {delay} s after the Ping reached the IUT, behind a {FIRST_FRAGMENT // 1024} KiB fragment",
                        measured=measured, tolerance=tolerance)
    else:
        verdict.check("RFC6455-5.5.2-pong-promptly", False,
                      f"the Pong left {delay} s after the Ping reached the IUT (bound {PROMPT_BOUND:g} s)",
                      measured=measured, tolerance=tolerance)
