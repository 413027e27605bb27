"""RFC 6455 §5.5.2 (Ping) and §5.5.3 (Pong): a Ping gets a Pong carrying the same application data."""
from __future__ import annotations

import pytest

from fixtures.testers import wsframes

# How long a Pong may take before it counts as missing. "As soon as practical" has no number; on an
# idle connection a conformant endpoint answers within milliseconds, so 2 s only catches silence.
REPLY_BOUND = 2.0

PAYLOADS = {
    "empty": b"",
    "text": b"aliveness",
    "binary": bytes(range(256))[:64],
    "125-octets": bytes(range(125)),
}

pytestmark = pytest.mark.protocol("websocket")


@pytest.mark.requirement("RFC6455-5.5.2-pong-reply", "RFC6455-5.5.3-echo")
@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
@pytest.mark.parametrize("delivery", ["whole", "trickled"])
def test_ping_is_answered_with_the_same_data(ws, verdict, payload, delivery):
    """A Ping (whole, or one octet per segment) gets a Pong that carries the Ping's application data."""
    client = ws.start()
    raw = wsframes.encode(wsframes.PING, payload, mask=wsframes.AUTO_MASK)
    client.send_trickled(raw) if delivery == "trickled" else client.send(raw)
    pong = client.wait_frame(lambda r: r.opcode == wsframes.PONG, REPLY_BOUND)
    sent = client.sent_time()
    delay = round(pong.t - sent, 4) if pong and sent else None
    verdict.check(
        "RFC6455-5.5.2-pong-reply",
        pong is not None,
        f"Pong after {delay} s" if pong else f"no Pong within {REPLY_BOUND:g} s"
        + (f" ({client.problem})" if client.problem else ""),
        measured={"reply_s": delay, "ping_octets": len(payload), "delivery": delivery},
        tolerance=f"Pong within {REPLY_BOUND:g} s",
    )
    if pong is None:
        verdict.inconclusive("RFC6455-5.5.3-echo", "no Pong arrived, so there is no payload to compare")
        return
    verdict.check(
        "RFC6455-5.5.3-echo",
        pong.payload == payload,
        "the Pong carries the Ping's data" if pong.payload == payload
        else f"the Pong carries {pong.payload[:40]!r} ({len(pong.payload)} octets) for a Ping of {payload[:40]!r}",
        measured={"ping_octets": len(payload), "pong_octets": len(pong.payload)},
    )
