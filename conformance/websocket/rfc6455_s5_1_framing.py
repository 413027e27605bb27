"""RFC 6455 §5.1–§5.3 (and the frame rules of §5.5 and §7.4.1): every frame the IUT sends is well formed.

The tester holds an ordinary conversation: a text and a binary message (echoed where the IUT echoes), a
Ping, the IUT's own keepalive Pings where it claims them, and a Close. The WebSocket wire validator
(fixtures/wsvalidate.py) then judges every frame the IUT put on the wire in this case, and it judges the
same rules in every other WebSocket case too: a rule broken anywhere is failed where it was broken.
"""
from __future__ import annotations

import pytest

from conformance.websocket.conftest import KNOBS
from fixtures.testers import wsframes

REPLY_BOUND = 2.0  # an echo, a Pong or a Close reply on an idle connection
PINGS = 2  # keepalive Pings waited for, where the IUT claims them

pytestmark = [pytest.mark.protocol("websocket"), pytest.mark.roles("server", "client")]


@pytest.mark.requirement(
    "RFC6455-5.1-client-masks", "RFC6455-5.1-server-no-mask", "RFC6455-5.2-rsv-zero", "RFC6455-5.2-reserved-opcode",
    "RFC6455-5.2-minimal-length", "RFC6455-5.5-control-length", "RFC6455-5.5-control-fragmented",
    "RFC6455-7.4.1-reserved-codes",
)
def test_every_frame_the_iut_sends_is_well_formed(ws, verdict):
    """Echoes, Pongs, the IUT's own keepalive Pings and its Close: each frame is masked as its role requires,
    has no reserved bit or opcode, the shortest length form, and control frames and Close codes as §5.5 and
    §7.4.1 allow (judged from the capture by the wire validator)."""
    keepalive = ws.claims("keepalive-pings")
    peer = ws.start(knobs=KNOBS if keepalive else None, needs_container=keepalive)
    began = peer.now()
    peer.send_frame(wsframes.TEXT, b"aliveness framing check")
    peer.send_frame(wsframes.BINARY, bytes(range(200)))
    peer.ping(b"framing")
    peer.wait_frame(lambda r: r.opcode == wsframes.PONG and r.payload == b"framing", REPLY_BOUND, after=began)
    if keepalive:
        ws.wait_wire(lambda w: len(w.sent_by(ws.iut, wsframes.PING)) >= PINGS or ws.ending(w),
                     KNOBS["ping-interval"] * (PINGS + 1) + 2)
    if not peer.ended():
        peer.send_frame(wsframes.CLOSE, wsframes.close_payload(1000, "done"))
        ws.wait_ending(REPLY_BOUND)
