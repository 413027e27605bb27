"""fixtures/coaptls.py: a capture of TLS records plus the tester's plaintext log in, a capture in clear out."""
from __future__ import annotations

import os
from dataclasses import dataclass

from fixtures.coaptcp import CoapTcpReader, coap_tcp_messages
from fixtures.coaptls import ClearStreams, plaintext_datagrams, plaintext_segments
from fixtures.coapwire import CSM, PING, PONG, encode_tcp
from fixtures.protocols.coap_tcp import ladder
from tests.unit.test_coaptcp import FIN, IUT, TESTER, Conn


@dataclass
class Rec:
    direction: str
    content_type: int
    body: bytes


def record(content_type: int, length: int) -> bytes:
    return bytes([content_type, 3, 3]) + length.to_bytes(2, "big") + os.urandom(length)


def session():
    """A TLS 1.2 session on the wire (handshake records, then application data) and the tester's log of it."""
    c = Conn()
    c.seg(0.01, TESTER, payload=record(22, 200))  # ClientHello
    c.seg(0.02, IUT, payload=record(22, 900))  # ServerHello ... ServerHelloDone
    c.seg(0.03, TESTER, payload=record(22, 70) + record(20, 1) + record(22, 40))
    c.seg(0.04, IUT, payload=record(20, 1) + record(22, 40))
    c.seg(0.10, IUT, payload=record(23, 31))  # the IUT's CSM
    both = record(23, 26) + record(23, 30)
    c.seg(0.20, TESTER, payload=both[:20])  # the tester's CSM and a Ping, the second record split in two segments
    c.seg(0.21, TESTER, payload=both[20:])
    c.seg(0.30, IUT, payload=record(23, 29))  # the Pong
    c.seg(0.40, IUT, payload=record(23, 29))  # a record the tester has not read yet: left out
    c.seg(0.50, TESTER, FIN)
    log = [Rec("in", 23, encode_tcp(CSM, options=[(2, b"\x04\x00")])), Rec("out", 23, encode_tcp(CSM)),
           Rec("out", 23, encode_tcp(PING, token=b"\x01\x02")), Rec("in", 23, encode_tcp(PONG, token=b"\x01\x02")),
           Rec("in", 21, b"\x01\x00")]  # an alert the tester read: not application data
    return c, {c.segments[0].conn: (TESTER, log)}


def test_each_record_s_plaintext_takes_the_capture_time_of_its_record():
    c, sessions = session()
    clear = plaintext_segments(c.segments, sessions)
    log = coap_tcp_messages(clear)
    assert [(m.src, m.msg.code, m.t, m.index) for m in log.messages] == [
        (IUT, CSM, 0.10, 0), (TESTER, CSM, 0.21, 0), (TESTER, PING, 0.21, 1), (IUT, PONG, 0.30, 1)]
    assert log.sent_by(IUT, PONG)[0].msg.token == b"\x01\x02"
    assert log.end_by(TESTER).kind == "fin" and len(log.connects) == 1 and not log.problems


def test_the_ladder_reads_the_capture_in_clear():
    c, sessions = session()
    labels = [e.label for e in ladder(plaintext_segments(c.segments, sessions), IUT, TESTER)]
    assert labels[0] == "SYN" and "7.02 Ping token=0102" in labels and labels[-1] == "FIN"


def test_a_connection_the_tester_holds_no_keys_for_is_left_out():
    c, _ = session()
    assert plaintext_segments(c.segments, {}) == []


def test_the_view_kept_up_to_date_a_little_at_a_time_equals_the_one_built_at_once():
    """The capture and the tester's log grow in steps (the log behind the capture, then ahead of it): what
    ClearStreams and CoapTcpReader add at each step, together, is what the one-shot functions make of the end."""
    c, sessions = session()
    (conn, (tester, log)), = sessions.items()
    view, reader = ClearStreams(), CoapTcpReader()
    assert view.update(c.segments[:3], {}) == []  # no session for the connection yet: nothing shown
    for upto, logged in ((6, 0), (8, 1), (9, 5), (len(c.segments), 5)):
        reader.feed(view.update(c.segments[:upto], {conn: (tester, log[:logged])}))
    whole = plaintext_segments(c.segments, sessions)
    assert view.segments == whole
    once = coap_tcp_messages(whole)
    assert reader.log.messages == once.messages and reader.log.ends == once.ends
    assert reader.log.connects == once.connects and reader.log.snapshot() is not reader.log


# -- over DTLS ---------------------------------------------------------------------------------------------
def dtls_record(content_type: int, epoch: int, sequence: int, length: int) -> bytes:
    return (bytes([content_type, 0xFE, 0xFD]) + epoch.to_bytes(2, "big") + sequence.to_bytes(6, "big")
            + length.to_bytes(2, "big") + os.urandom(length))


def test_over_dtls_each_record_of_application_data_becomes_a_datagram_the_validator_reads():
    """The chain a coap-dtls case stands on: the capture in clear carries the IUT's wrong Reset to the coap
    wire validator, at the capture time of its record."""
    from fixtures.coapwire import CON, EMPTY, RST, encode_udp
    from fixtures.datagrams import datagrams
    from fixtures.protocols import coap
    from fixtures.timeline import read_pcap
    from tests.unit.test_datagrams import ip_packet, pcap, udp

    tester, iut = (TESTER, 40002), (IUT, 5684)
    wire = [(1.0, tester, iut, dtls_record(22, 0, 0, 150)),  # the handshake in clear: not in the view
            (1.1, iut, tester, dtls_record(22, 0, 0, 90)),
            (2.0, tester, iut, dtls_record(23, 1, 1, 28)),  # the ping
            (2.001, iut, tester, dtls_record(23, 1, 1, 28) + dtls_record(23, 1, 2, 28))]  # two records, one datagram
    segments = read_pcap(pcap([(t, ip_packet(s[0], d[0], udp(s[1], d[1], data))) for t, s, d, data in wire]), keep=None)
    log = [Rec("out", 23, encode_udp(CON, EMPTY, 0x77)), Rec("in", 23, encode_udp(RST, EMPTY, 0x78)),
           Rec("in", 23, encode_udp(RST, EMPTY, 0x77))]
    clear = plaintext_datagrams(segments, {(tester, iut): log})
    assert [(d.t, d.src, d.head) for d in datagrams(clear)] == [
        (2.0, TESTER, log[0].body), (2.001, IUT, log[1].body), (2.001, IUT, log[2].body)]
    found = coap.validate(clear, IUT, TESTER, "server", {})
    assert [v.requirement for v in found.violations] == [coap.RST_MID]


def test_over_dtls_the_iut_s_records_are_opened_from_the_capture_when_an_opener_is_given():
    """A frozen tester reads nothing: the IUT's pings are in the capture but not in its log. With an opener (the
    tester's read keys) they are in the view all the same; without one only pairs count."""
    from fixtures.coapwire import CON, EMPTY, RST, encode_udp
    from fixtures.datagrams import datagrams
    from fixtures.timeline import read_pcap
    from tests.unit.test_datagrams import ip_packet, pcap, udp

    tester, iut = (TESTER, 5683), (IUT, 40100)
    wire = [(1.0, iut, tester, dtls_record(23, 1, 1, 28)),  # a ping, answered
            (1.001, tester, iut, dtls_record(23, 1, 1, 28)),
            (3.0, iut, tester, dtls_record(23, 1, 2, 28)),  # pings the tester never read
            (5.0, iut, tester, dtls_record(23, 1, 3, 28)),
            (5.5, iut, tester, dtls_record(21, 1, 4, 26))]  # an encrypted alert: not application data
    segments = read_pcap(pcap([(t, ip_packet(s[0], d[0], udp(s[1], d[1], data))) for t, s, d, data in wire]), keep=None)
    pings = {1: encode_udp(CON, EMPTY, 0x10), 2: encode_udp(CON, EMPTY, 0x11), 3: encode_udp(CON, EMPTY, 0x12)}
    log = [Rec("in", 23, pings[1]), Rec("out", 23, encode_udp(RST, EMPTY, 0x10))]

    def opener(record):
        return pings.get(record.sequence) if record.epoch == 1 and record.content_type == 23 else None

    paired = plaintext_datagrams(segments, {(tester, iut): log})
    assert [d.head for d in datagrams(paired)] == [pings[1], log[1].body]
    opened = plaintext_datagrams(segments, {(tester, iut): log}, {(tester, iut): opener})
    assert [(d.t, d.src, d.head) for d in datagrams(opened)] == [
        (1.0, IUT, pings[1]), (1.001, TESTER, log[1].body), (3.0, IUT, pings[2]), (5.0, IUT, pings[3])]


def test_records_the_tester_has_not_read_are_counted_as_its_backlog():
    c, sessions = session()
    view = ClearStreams()
    view.update(c.segments, sessions)
    assert view.unread(IUT) == 1  # the record at 0.40: on the wire, not in the tester's log
    assert view.unread(TESTER) == 0
    (tester, log), = sessions.values()
    log.append(Rec("in", 23, encode_tcp(PONG, token=b"\x03")))
    view.update(c.segments, sessions)
    assert view.unread(IUT) == 0
