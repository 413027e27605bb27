"""The TLS wire view (fixtures/tlswire.py) and the TLS plug-in's validator, on crafted segments: no Docker."""
from __future__ import annotations

import dpkt

from fixtures.protocols.tls import IN_HANDSHAKE, PROTOCOL, UNSOLICITED
from fixtures.timeline import Segment
from fixtures.tlshello import hello_heartbeat_mode
from fixtures.tlswire import tls_records

IUT, TESTER = "10.0.0.2", "10.0.0.3"
ACK, PSH, SYN = dpkt.tcp.TH_ACK, dpkt.tcp.TH_PUSH, dpkt.tcp.TH_SYN


def extensions(*items: tuple[int, bytes]) -> bytes:
    body = b"".join(kind.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data for kind, data in items)
    return len(body).to_bytes(2, "big") + body


def client_hello(mode: int | None) -> bytes:
    exts = [(10, b"\x00\x02\x00\x1d")] + ([(15, bytes([mode]))] if mode is not None else [])
    return b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + extensions(*exts)


def server_hello(mode: int | None, tls13: bool = False) -> bytes:
    exts = ([(15, bytes([mode]))] if mode is not None else []) + ([(43, b"\x03\x04")] if tls13 else [])
    return b"\x03\x03" + bytes(32) + b"\x00" + b"\x13\x01" + b"\x00" + extensions(*exts)


def handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def record(content_type: int, body: bytes) -> bytes:
    return bytes([content_type, 3, 3]) + len(body).to_bytes(2, "big") + body


class Conn:
    """One TCP connection, tester port 40000 to IUT port 4433, carrying whatever records a test writes."""

    def __init__(self) -> None:
        self.nxt = {TESTER: 1000, IUT: 5000}
        self.segments: list[Segment] = []
        self.t = 100.0

    def syn(self) -> Conn:
        for src, dst, flags in ((TESTER, IUT, SYN), (IUT, TESTER, SYN | ACK)):
            self.segments.append(self._segment(src, dst, flags, b""))
            self.nxt[src] += 1
        return self

    def _segment(self, src: str, dst: str, flags: int, data: bytes) -> Segment:
        self.t += 0.001
        sport, dport = (40000, 4433) if src == TESTER else (4433, 40000)
        return Segment(self.t, src, sport, dst, dport, self.nxt[src], self.nxt[dst], flags, len(data), data, 64000, "tcp")

    def send(self, src: str, data: bytes, split: int | None = None) -> Conn:
        parts = [data] if split is None else [data[:split], data[split:]]
        for part in parts:
            dst = IUT if src == TESTER else TESTER
            self.segments.append(self._segment(src, dst, PSH | ACK, part))
            self.nxt[src] += len(part)
        return self


def tls12(client_mode: int | None, server_mode: int | None) -> Conn:
    return (Conn().syn()
            .send(TESTER, record(22, handshake(1, client_hello(client_mode))))
            .send(IUT, record(22, handshake(2, server_hello(server_mode)) + handshake(14, b"")), split=7))


def validate(conn: Conn, role: str = "server"):
    return PROTOCOL.validator(conn.segments, IUT, TESTER, role, {"knobs": None, "features": {"heartbeat"}})


def test_records_are_cut_from_the_stream_with_the_hellos_modes_even_across_segments():
    conn = tls12(1, 1).send(TESTER, record(20, b"\x01")).send(TESTER, record(22, bytes(40)))
    conn.send(IUT, record(20, b"\x01") + record(22, bytes(40))).send(IUT, record(24, bytes(50)))
    log = tls_records(conn.segments)
    kinds = [(r.src, r.name, r.encrypted) for r in log.records]
    assert kinds == [(TESTER, "Handshake", False), (IUT, "Handshake", False), (TESTER, "ChangeCipherSpec", False),
                     (TESTER, "Handshake", True), (IUT, "ChangeCipherSpec", False), (IUT, "Handshake", True),
                     (IUT, "Heartbeat", True)]
    assert log.records[0].heartbeat_mode == 1 and log.records[1].handshake_types == [2, 14]
    assert log.records[1].describe() == "ServerHello + ServerHelloDone (heartbeat mode 1)"
    assert log.records[-1].describe() == "Heartbeat 50 (encrypted)"
    result = validate(conn)
    assert result.violations == [] and result.checked == {IN_HANDSHAKE: 1, UNSOLICITED: 1}


def test_a_heartbeat_in_clear_before_change_cipher_spec_is_sent_during_the_handshake():
    conn = tls12(1, 1).send(IUT, record(24, bytes(19)))
    violations = validate(conn).violations
    assert [v.requirement for v in violations] == [IN_HANDSHAKE]
    assert "in clear, before its ChangeCipherSpec" in violations[0].message


def test_a_server_hello_with_an_extension_the_client_did_not_offer_is_unsolicited():
    assert [v.requirement for v in validate(tls12(None, 1)).violations] == [UNSOLICITED]
    assert validate(tls12(None, None)).violations == []
    assert validate(tls12(2, 1)).violations == []
    client = validate(tls12(None, 1), role="client")
    assert UNSOLICITED in client.not_applicable and client.violations == []


def test_after_a_tls13_server_hello_everything_but_ccs_and_alerts_is_encrypted():
    conn = (Conn().syn().send(TESTER, record(22, handshake(1, client_hello(1))))
            .send(IUT, record(22, handshake(2, server_hello(None, tls13=True))) + record(20, b"\x01") + record(23, bytes(80)))
            .send(TESTER, record(23, bytes(60))))
    log = tls_records(conn.segments)
    assert [(r.name, r.encrypted) for r in log.records] == [
        ("Handshake", False), ("Handshake", False), ("ChangeCipherSpec", True), ("ApplicationData", True),
        ("ApplicationData", True)]


def test_noise_stops_the_direction_and_a_truncated_hello_has_no_mode():
    conn = Conn().syn().send(IUT, b"\x7fgarbage that is no record at all")
    log = tls_records(conn.segments)
    assert log.records == [] and "no TLS record header" in log.problems[0]
    assert hello_heartbeat_mode(client_hello(1)[:40], client=True) is None
    assert hello_heartbeat_mode(client_hello(2), client=True) == 2


def test_dtls_records_are_read_from_datagrams_with_epoch_and_sequence():
    header = bytes([24, 254, 253]) + (1).to_bytes(2, "big") + (7).to_bytes(6, "big")
    body = bytes(40)
    datagram = header + len(body).to_bytes(2, "big") + body
    segment = Segment(1.0, IUT, 4433, TESTER, 40000, 0, 0, 0, len(datagram), datagram, 0, "udp")
    (rec,) = tls_records([segment]).records
    assert (rec.name, rec.epoch, rec.sequence, rec.length, rec.encrypted) == ("Heartbeat", 1, 7, 40, True)


def test_the_ladder_draws_each_record_and_the_ends():
    events = PROTOCOL.ladder(tls12(1, 1).segments, IUT, TESTER)
    assert [e.kind for e in events] == ["handshake", "handshake"]
    assert all(e.kind in PROTOCOL.ladder_kinds for e in events)
