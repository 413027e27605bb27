"""Unit tests for fixtures.coaptcp and the coap-tcp ladder: TCP segments in, CoAP messages with capture times out."""
from __future__ import annotations

import dpkt

from fixtures.coaptcp import MAX_MESSAGE, coap_tcp_messages
from fixtures.coapwire import CSM, PING, PONG, encode_tcp
from fixtures.protocols.coap_tcp import ladder
from fixtures.timeline import Segment

IUT, TESTER = "10.0.0.2", "10.0.0.3"
IUT_PORT, TESTER_PORT = 5683, 40000
SYN, FIN, RST, ACK = dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST, dpkt.tcp.TH_ACK


class Conn:
    """The segments of one connection, each side's sequence numbers tracked (the tester's wraps past 2**32)."""

    def __init__(self) -> None:
        self.seq = {IUT: 1000, TESTER: 2**32 - 3}
        self.segments: list[Segment] = []
        self.seg(0.0, TESTER, SYN)
        self.seg(0.001, IUT, SYN | ACK)
        self.seg(0.002, TESTER, ACK)

    def seg(self, t: float, src: str, flags: int = ACK, payload: bytes = b"", seq: int | None = None) -> None:
        dst = TESTER if src == IUT else IUT
        sport, dport = (IUT_PORT, TESTER_PORT) if src == IUT else (TESTER_PORT, IUT_PORT)
        start = self.seq[src] if seq is None else seq
        self.segments.append(Segment(t, src, sport, dst, dport, start, 0, flags, len(payload), payload, 65535, "tcp"))
        if seq is None:
            self.seq[src] = (start + len(payload) + (1 if flags & (SYN | FIN) else 0)) % 2**32


def test_messages_carry_the_time_of_their_last_octet_and_their_index():
    c = Conn()
    c.seg(0.01, IUT, payload=encode_tcp(CSM, options=[(2, b"\x04\x00")]))
    ping = encode_tcp(CSM) + encode_tcp(PING, token=b"\x01\x02\x03\x04")
    c.seg(0.02, TESTER, payload=ping[:3])  # the CSM whole, the Ping split across two segments, across the sequence wrap
    c.seg(0.03, TESTER, payload=ping[3:])
    c.seg(0.04, IUT, payload=encode_tcp(PONG, options=[(2, b"")]))
    c.seg(0.05, TESTER, FIN)
    log = coap_tcp_messages(c.segments)
    assert [(m.src, m.msg.code, m.t, m.index) for m in log.messages] == [
        (IUT, CSM, 0.01, 0), (TESTER, CSM, 0.02, 0), (TESTER, PING, 0.03, 1), (IUT, PONG, 0.04, 1)]
    assert log.sent_by(TESTER, PING)[0].msg.token == b"\x01\x02\x03\x04"
    assert log.sent_by(IUT, PONG)[0].msg.token == b""  # what libcoap 4.3.1 sends: the cases must see it as it is
    assert log.end_by(TESTER).kind == "fin" and log.end_by(IUT) is None
    assert len(log.connects) == 1 and not log.problems


def test_a_retransmission_is_read_once_and_a_gap_waits_for_its_fill():
    c = Conn()
    frame = encode_tcp(PING, token=b"\xaa")
    start = c.seq[TESTER]
    c.seg(0.1, TESTER, payload=frame[1:], seq=(start + 1) % 2**32)  # arrives before the octet it follows
    c.seg(0.2, TESTER, payload=frame, seq=start)  # the whole message again: the fill
    c.seg(0.3, TESTER, payload=frame, seq=start)  # a retransmission
    log = coap_tcp_messages(c.segments)
    assert [(m.msg.code, m.t) for m in log.messages] == [(PING, 0.2)]


def test_a_stream_that_cannot_be_framed_is_a_problem_and_an_unfinished_message_is_counted():
    c = Conn()
    c.seg(0.1, TESTER, payload=bytes([0x0F, PING]) + bytes(15))  # token length 15
    c.seg(0.2, IUT, payload=encode_tcp(PING, payload=b"x" * 1000)[:20])  # a 16-bit length never completed
    log = coap_tcp_messages(c.segments)
    assert log.messages[0].msg.error and "token length 15" in log.messages[0].msg.error
    assert len(log.problems) == 1 and "cannot be framed" in log.problems[0]
    assert log.incomplete == {(IUT, IUT_PORT): 4 + 1 + 1000 - 20}  # header 4 (16-bit length), marker, payload
    assert "still" in log.to_text()


def test_a_length_field_past_the_limit_is_not_buffered():
    c = Conn()
    huge = MAX_MESSAGE + 1 - 65805
    c.seg(0.1, TESTER, payload=bytes([0xF0]) + huge.to_bytes(4, "big") + bytes([PING]))
    log = coap_tcp_messages(c.segments)
    assert not log.messages and "length field" in log.problems[0]


def test_the_ladder_names_signalling_messages_and_the_ends():
    c = Conn()
    c.seg(0.01, IUT, payload=encode_tcp(CSM))
    c.seg(0.02, TESTER, payload=encode_tcp(CSM) + encode_tcp(PING, token=b"\x07"))
    c.seg(0.03, IUT, payload=encode_tcp(PONG, token=b"\x07"))
    c.seg(0.04, IUT, RST)
    kinds = [(e.kind, e.src) for e in ladder(c.segments, IUT, TESTER)]
    assert kinds == [("syn", TESTER), ("csm", IUT), ("csm", TESTER), ("ping", TESTER), ("pong", IUT), ("rst", IUT)]
