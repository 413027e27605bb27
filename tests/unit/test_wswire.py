"""Unit tests for fixtures.wswire: TCP segments in, WebSocket frames with capture times out."""
from __future__ import annotations

import dpkt

from fixtures.testers import wsframes
from fixtures.timeline import Segment
from fixtures.wswire import ws_frames

IUT, TESTER = "10.0.0.2", "10.0.0.3"
IUT_PORT, TESTER_PORT = 8765, 40000
SYN, FIN, RST, ACK = dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST, dpkt.tcp.TH_ACK
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
RESPONSE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"


class Conn:
    """Builds the segments of one connection, tracking each side's sequence numbers."""

    def __init__(self, iut_isn: int = 1000, tester_isn: int = 2**32 - 10) -> None:
        self.seq = {IUT: iut_isn, TESTER: tester_isn}
        self.segments: list[Segment] = []

    def seg(self, t: float, src: str, flags: int = ACK, payload: bytes = b"", seq: int | None = None,
            truncate: int | None = None) -> None:
        dst = TESTER if src == IUT else IUT
        sport, dport = (IUT_PORT, TESTER_PORT) if src == IUT else (TESTER_PORT, IUT_PORT)
        start = self.seq[src] if seq is None else seq
        kept = payload if truncate is None else payload[:truncate]
        self.segments.append(Segment(t, src, sport, dst, dport, start, 0, flags, len(payload), kept, 65535, "tcp"))
        if seq is None:
            self.seq[src] = (start + len(payload) + (1 if flags & (SYN | FIN) else 0)) % 2**32

    def handshake(self) -> None:
        self.seg(0.0, TESTER, SYN)
        self.seg(0.001, IUT, SYN | ACK)
        self.seg(0.002, TESTER, ACK)
        self.seg(0.01, TESTER, payload=REQUEST)
        self.seg(0.02, IUT, payload=RESPONSE)


def test_frames_after_the_handshake_carry_the_time_of_their_last_octet():
    c = Conn()
    c.handshake()
    ping = wsframes.encode(wsframes.PING, b"hello", mask=b"abcd")
    c.seg(1.0, TESTER, payload=ping[:3])  # split across segments, and the tester's seq wraps around 2**32
    c.seg(1.5, TESTER, payload=ping[3:])
    c.seg(1.6, IUT, payload=wsframes.encode(wsframes.PONG, b"hello") + wsframes.encode(wsframes.TEXT, b"x"))
    log = ws_frames(c.segments)
    assert [(f.src, f.name, f.t) for f in log.frames] == [(TESTER, "ping", 1.5), (IUT, "pong", 1.6), (IUT, "text", 1.6)]
    assert log.frames[0].payload == b"hello" and log.frames[0].masked
    assert log.connects and not log.problems


def test_retransmissions_and_reordering_are_counted_once():
    c = Conn()
    c.handshake()
    first = wsframes.encode(wsframes.PING, b"one")
    second = wsframes.encode(wsframes.PING, b"two")
    base = c.seq[IUT]
    c.seg(1.0, IUT, payload=first, seq=base)
    c.seg(1.2, IUT, payload=second, seq=base + len(first))
    c.seg(1.4, IUT, payload=first, seq=base)  # a retransmission of the first
    log = ws_frames(c.segments)
    assert [f.payload for f in log.sent_by(IUT, wsframes.PING)] == [b"one", b"two"]


def test_out_of_order_data_waits_for_the_gap():
    c = Conn()
    c.handshake()
    first = wsframes.encode(wsframes.PING, b"one")
    second = wsframes.encode(wsframes.PING, b"two")
    base = c.seq[IUT]
    c.seg(1.0, IUT, payload=second, seq=base + len(first))
    c.seg(1.3, IUT, payload=first, seq=base)
    log = ws_frames(c.segments)
    assert [(f.payload, f.t) for f in log.sent_by(IUT)] == [(b"one", 1.3), (b"two", 1.3)]


def test_close_code_fin_and_rst_are_reported():
    c = Conn()
    c.handshake()
    c.seg(2.0, IUT, payload=wsframes.encode(wsframes.CLOSE, wsframes.close_payload(1011, "keepalive")))
    c.seg(2.1, IUT, FIN | ACK)
    c.seg(2.2, TESTER, RST)
    log = ws_frames(c.segments)
    close = log.first(IUT, wsframes.CLOSE)
    assert close.close == (1011, "keepalive")
    assert [(e.src, e.kind) for e in log.ends] == [(IUT, "fin"), (TESTER, "rst")]
    assert log.end_by(IUT).t == 2.1
    assert "code=1011" in log.to_text()


def test_a_hostile_length_and_a_truncated_capture_are_problems_not_crashes():
    c = Conn()
    c.handshake()
    c.seg(1.0, IUT, payload=wsframes.encode(wsframes.BINARY, b"", length_override=2**63 - 1))
    c.seg(1.1, TESTER, payload=wsframes.encode(wsframes.PING, b"x" * 100, mask=b"abcd"), truncate=20)
    log = ws_frames(c.segments)
    assert not log.frames
    assert len(log.problems) == 2
    assert any("declares" in p for p in log.problems) and any("truncated" in p for p in log.problems)


def test_past_a_frame_no_endpoint_may_accept_the_direction_is_read_no_further():
    c = Conn()
    c.handshake()
    noise = b"\x7f\x05" + bytes(5) + wsframes.encode(wsframes.CLOSE, wsframes.close_payload(1000))
    c.seg(1.0, IUT, payload=noise)
    c.seg(1.1, TESTER, payload=wsframes.encode(wsframes.PING, b"still read", mask=b"abcd"))
    log = ws_frames(c.segments)
    assert [(f.src, f.opcode) for f in log.frames] == [(IUT, 0xF), (TESTER, wsframes.PING)]  # no "Close" from the noise
    assert log.problems and "no endpoint may accept" in log.problems[0]


def test_the_kept_up_view_decodes_each_segment_once_and_matches_a_whole_decode(monkeypatch):
    import fixtures.wswire as wswire

    c = Conn()
    c.handshake()
    for i in range(40):
        frame = wsframes.encode(wsframes.PING, f"p{i}".encode())
        c.seg(1.0 + i / 100, IUT, payload=frame[:2])
        c.seg(1.0 + i / 100 + 0.001, IUT, payload=frame[2:])
    c.seg(2.0, IUT, FIN | ACK)
    fed = []
    real = wswire.delivered
    monkeypatch.setattr(wswire, "delivered", lambda segments, *a: real(fed.extend(segments) or segments, *a))
    view = wswire.WsWireView()
    snapshots = [view.update(c.segments[:n]) for n in range(0, len(c.segments) + 1, 7)] + [view.update(c.segments)]
    assert len(fed) == len(c.segments)  # however often it was asked
    whole = ws_frames(c.segments)
    assert [(f.t, f.payload) for f in snapshots[-1].frames] == [(f.t, f.payload) for f in whole.frames]
    assert snapshots[-1].ends == whole.ends and len(snapshots[-1].frames) == 40
    assert len(snapshots[1].frames) < 40  # an earlier snapshot is not changed by later updates
