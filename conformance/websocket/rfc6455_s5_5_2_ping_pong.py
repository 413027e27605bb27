"""RFC 6455 §5.5.2 (Ping) and §5.5.3 (Pong): a Ping gets a Pong carrying the same application data;
several Pings may share one Pong; an unsolicited Pong is left unanswered; a Ping after Close is reported."""
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


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("RFC6455-5.5.2-pong-reply", "RFC6455-5.5.3-echo")
def test_ping_is_answered_with_the_same_data(ws, verdict):
    """Pings of each payload (empty, text, binary, 125 octets), sent whole and then one octet per segment,
    one after another on one connection: each gets a Pong carrying the Ping's application data.

    One verdict per Ping and requirement, each naming its payload and delivery."""
    peer = ws.start(needs_container=False)
    for delivery in ("whole", "trickled"):
        for name, payload in PAYLOADS.items():
            if peer.ended() or peer.problem:
                why = f"the connection ended ({peer.problem or peer.ended().ev}) before this Ping"
                verdict.inconclusive("RFC6455-5.5.2-pong-reply", f"{name}, {delivery}: {why}")
                verdict.inconclusive("RFC6455-5.5.3-echo", f"{name}, {delivery}: {why}")
                continue
            check_one_ping(peer, verdict, name, payload, delivery)


def check_one_ping(peer, verdict, name: str, payload: bytes, delivery: str) -> None:
    raw = peer.encode(wsframes.PING, payload)
    before = peer.now()
    peer.send_trickled(raw) if delivery == "trickled" else peer.send(raw)
    sent = peer.sent_time()
    pong = peer.wait_frame(lambda r: r.opcode == wsframes.PONG, REPLY_BOUND, after=before)
    delay = round(pong.t - sent, 4) if pong and sent else None
    label = f"{name} Ping ({len(payload)} octets), {delivery}"
    verdict.check(
        "RFC6455-5.5.2-pong-reply",
        pong is not None,
        f"{label}: Pong after {delay} s" if pong else f"{label}: no Pong within {REPLY_BOUND:g} s"
        + (f" ({peer.problem})" if peer.problem else ""),
        measured={"reply_s": delay, "ping_octets": len(payload), "delivery": delivery},
        tolerance=f"Pong within {REPLY_BOUND:g} s",
    )
    if pong is None:
        verdict.inconclusive("RFC6455-5.5.3-echo", f"{label}: no Pong arrived, so there is no payload to compare")
        return
    verdict.check(
        "RFC6455-5.5.3-echo",
        pong.payload == payload,
        f"{label}: the Pong carries the Ping's data" if pong.payload == payload
        else f"{label}: the Pong carries {pong.payload[:40]!r} ({len(pong.payload)} octets)",
        measured={"ping_octets": len(payload), "pong_octets": len(pong.payload), "delivery": delivery},
    )


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("RFC6455-5.5.3-latest-only", "RFC6455-5.5.2-pong-reply")
def test_burst_of_pings_gets_a_pong_for_the_latest(ws, verdict):
    """Three Pings in one segment: a Pong for each, or one for the most recent only (both allowed)."""
    peer = ws.start(needs_container=False)
    payloads = [b"burst-1", b"burst-2", b"burst-3"]
    peer.send(b"".join(peer.encode(wsframes.PING, p) for p in payloads))
    sent = peer.sent_time()
    latest = peer.wait_frame(lambda r: r.opcode == wsframes.PONG and r.payload == payloads[-1], REPLY_BOUND, after=sent)
    # Pongs for the earlier Pings, if any, may still follow the latest's: a fence Ping sent now is answered
    # after everything the IUT owed for the burst, so once its Pong is in, nothing more is to come.
    if latest is not None:
        peer.ping(b"fence")
        peer.wait_frame(lambda r: r.opcode == wsframes.PONG and r.payload == b"fence", REPLY_BOUND, after=sent)
    pongs = [r.payload for r in peer.frames if r.opcode == wsframes.PONG and r.t >= sent and r.payload != b"fence"]
    verdict.check(
        "RFC6455-5.5.2-pong-reply",
        latest is not None,
        f"the most recent Ping was answered ({len(pongs)} Pong(s) in all)" if latest
        else f"no Pong for the most recent Ping within {REPLY_BOUND:g} s (Pongs seen: {pongs})",
        measured={"pings": len(payloads), "pongs": len(pongs)},
        tolerance=f"Pong within {REPLY_BOUND:g} s",
    )
    if latest is None:
        verdict.inconclusive("RFC6455-5.5.3-latest-only", "the most recent Ping got no Pong, so there is nothing to judge")
        return
    answered = [p for p in payloads if p in pongs]
    stray = [p for p in pongs if p not in payloads]
    how = "one Pong per Ping" if answered == payloads else f"Pongs for {[p.decode() for p in answered]} only"
    verdict.check(
        "RFC6455-5.5.3-latest-only",
        not stray,
        f"{how}; either is allowed" if not stray else f"{how}, plus Pongs carrying data no Ping had: {stray}",
        measured={"pings": len(payloads), "pongs": len(pongs), "answered": [p.decode() for p in answered]},
    )


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("RFC6455-5.5.3-unsolicited-no-reply", "RFC6455-5.5.2-pong-reply")
def test_unsolicited_pong_is_left_unanswered(ws, verdict):
    """A Pong nobody asked for draws no reply and leaves the connection working (a Ping after it is answered)."""
    peer = ws.start(needs_container=False)
    peer.send_frame(wsframes.PONG, b"unsolicited")
    sent = peer.sent_time()
    reply = peer.wait_frame(lambda r: r.opcode != wsframes.PING, 1.0, after=sent)
    verdict.observe(
        "RFC6455-5.5.3-unsolicited-no-reply",
        "nothing answered the unsolicited Pong" if reply is None
        else f"the IUT answered the unsolicited Pong with a {wsframes_name(reply.opcode)} frame ({reply.payload[:40]!r})",
        measured={"reply": None if reply is None else wsframes_name(reply.opcode)},
    )
    if peer.ended() or (reply is not None and reply.opcode == wsframes.CLOSE):
        verdict.check("RFC6455-5.5.2-pong-reply", False, "the IUT closed the connection after an unsolicited Pong")
        return
    peer.ping(b"after-unsolicited")
    pong = peer.wait_frame(lambda r: r.opcode == wsframes.PONG and r.payload == b"after-unsolicited", REPLY_BOUND, after=sent)
    verdict.check(
        "RFC6455-5.5.2-pong-reply",
        pong is not None,
        "a Ping after the unsolicited Pong was answered" if pong
        else f"no Pong within {REPLY_BOUND:g} s after an unsolicited Pong",
        tolerance=f"Pong within {REPLY_BOUND:g} s",
    )


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("RFC6455-5.5.2-pong-after-close")
def test_ping_after_close_is_reported(ws, verdict):
    """Close, then a Ping at once: whether a Pong still comes is reported (the RFC allows either)."""
    peer = ws.start(needs_container=False)
    peer.send(peer.encode(wsframes.CLOSE, wsframes.close_payload(1000, "done")) + peer.encode(wsframes.PING, b"after-close"))
    sent = peer.sent_time()
    pong = peer.wait_frame(lambda r: r.opcode == wsframes.PONG, 1.0, after=sent)
    close = peer.find_frame(lambda r: r.opcode == wsframes.CLOSE, after=sent)
    verdict.observe(
        "RFC6455-5.5.2-pong-after-close",
        ("a Pong came after the Close" if pong else "no Pong after the Close")
        + (f"; the IUT answered the Close with code {close_code(close.payload)}" if close else "; no Close in reply"),
        measured={"pong_after_close": pong is not None, "close_reply": close is not None},
    )


def close_code(payload: bytes):
    try:
        return wsframes.parse_close(payload)[0]
    except wsframes.InputRejected:
        return f"<malformed body {payload[:10]!r}>"


def wsframes_name(opcode: int) -> str:
    return {0: "continuation", 1: "text", 2: "binary", 8: "Close", 9: "Ping", 10: "Pong"}.get(opcode, f"0x{opcode:X}")
