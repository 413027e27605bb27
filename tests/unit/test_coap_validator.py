"""The coap wire validator (fixtures/protocols/coap.py) on crafted captures: every ACK, RST and NON the IUT
sends is judged against the Message IDs the tester had sent by then, from the capture and the tester's own
record, whatever the case was about."""
from __future__ import annotations

import pytest

from fixtures.coapwire import ACK, CON, CONTENT, CSM, EMPTY, GET, NON, PING, PONG, RST, encode_tcp, encode_udp
from fixtures.protocols import coap, coap_tcp
from fixtures.timeline import read_pcap
from tests.unit.test_coaptcp import IUT as TCP_IUT
from tests.unit.test_coaptcp import TESTER as TCP_TESTER
from tests.unit.test_coaptcp import Conn
from tests.unit.test_datagrams import IUT, IUT6, TESTER, TESTER6, ip_packet, pcap, udp

PORT, TPORT = 5683, 40001


def capture(*messages, iut=IUT, tester=TESTER):
    """``messages``: (time, "t" or "i" for who sent it, octets)."""
    packets = [(t, ip_packet(tester, iut, udp(TPORT, PORT, data)) if who == "t" else ip_packet(iut, tester, udp(PORT, TPORT, data)))
               for t, who, data in messages]
    return read_pcap(pcap(packets), keep=None)


def violations(segments, iut=IUT, tester=TESTER, **context):
    found = coap.validate(segments, iut, tester, "server", context)
    return [v.requirement for v in found.violations], found


@pytest.mark.parametrize(("server", "client"), [(IUT, TESTER), (IUT6, TESTER6)], ids=["ipv4", "ipv6"])
def test_a_conformant_conversation_has_no_violation_and_is_counted(server, client):
    segs = capture((1.0, "t", encode_udp(CON, EMPTY, 0x10)), (1.001, "i", encode_udp(RST, EMPTY, 0x10)),
                   (2.0, "t", encode_udp(CON, GET, 0x11, token=b"\x01")),
                   (2.001, "i", encode_udp(ACK, CONTENT, 0x11, token=b"\x01", payload=b"x")),
                   (3.0, "t", encode_udp(NON, GET, 0x12, token=b"\x02")),
                   (3.001, "i", encode_udp(NON, CONTENT, 0x9000, token=b"\x02", payload=b"x")),
                   iut=server, tester=client)
    found, validation = violations(segs, server, client)
    assert found == []
    assert validation.checked == {coap.RST_EMPTY: 1, coap.RST_MID: 1, coap.ACK_BODY: 1, coap.ACK_MID: 1, coap.NON_NOT_EMPTY: 1}


@pytest.mark.parametrize(("iut_sends", "rule"), [
    (encode_udp(ACK, CONTENT, 0x11, payload=b"x"), coap.ACK_MID),  # a Message ID the tester never used
    (encode_udp(RST, EMPTY, 0x11), coap.RST_MID),
    (encode_udp(RST, EMPTY, 0x10, token=b"\x99"), coap.RST_EMPTY),
    (encode_udp(ACK, GET, 0x10), coap.ACK_BODY),  # a request code in an ACK
    (encode_udp(ACK, 0xE1, 0x10), coap.ACK_BODY),  # a reserved class (7.01)
    (encode_udp(NON, EMPTY, 0x7000), coap.NON_NOT_EMPTY),  # an unprompted Empty NON
])
def test_each_broken_message_is_a_violation_of_its_rule(iut_sends, rule):
    found, _ = violations(capture((1.0, "t", encode_udp(CON, EMPTY, 0x10)), (1.5, "i", iut_sends)))
    assert found == [rule]


def test_an_answer_to_an_ack_or_a_non_is_blamed_on_that_rule():
    found, _ = violations(capture((1.0, "t", encode_udp(ACK, EMPTY, 0x20)), (1.1, "i", encode_udp(RST, EMPTY, 0x20)),
                                  (2.0, "t", encode_udp(NON, EMPTY, 0x21)), (2.1, "i", encode_udp(ACK, EMPTY, 0x21)),
                                  (3.0, "t", encode_udp(NON, EMPTY, 0x22)), (3.1, "i", encode_udp(RST, EMPTY, 0x22))))
    assert found == [coap.NO_ANSWER, coap.NON_NO_ACK]  # a Reset may answer a NON


def test_a_message_id_the_tester_used_only_later_does_not_count():
    found, _ = violations(capture((1.0, "i", encode_udp(RST, EMPTY, 0x30)), (2.0, "t", encode_udp(CON, EMPTY, 0x30))))
    assert found == [coap.RST_MID]


def test_a_malformed_message_of_the_testers_still_gives_its_message_id():
    found, _ = violations(capture((1.0, "t", encode_udp(CON, EMPTY, 0x40, payload=b"ping")),
                                  (1.1, "i", encode_udp(RST, EMPTY, 0x40))))
    assert found == []


def test_the_testers_own_record_covers_what_the_capture_missed():
    """A datagram IP fragmented (or one lost by the capture under a flood) is known from the tester's record."""
    segs = capture((1.1, "i", encode_udp(ACK, CONTENT, 0x50, payload=b"x")))
    assert violations(segs)[0] == [coap.ACK_MID]
    record = [(1.0, TPORT, encode_udp(CON, 2, 0x50, payload=b"\xa5" * 65000))]
    assert violations(segs, tester_sent=record)[0] == []
    assert violations(segs, tester_sent=[(1.0, TPORT + 1, record[0][2])])[0] == [coap.ACK_MID]  # another port


def test_the_validator_is_the_plugins_and_its_rules_are_catalogued():
    from conformance.requirements import catalogue

    assert coap.PROTOCOL.validator is coap.validate
    assert set(coap.PROTOCOL.validates) == set(coap.RULES)
    assert set(coap.RULES) <= set(catalogue())


# -- CoAP over TCP -----------------------------------------------------------------------------------------
def tcp_violations(conn):
    found = coap_tcp.validate(conn.segments, TCP_IUT, TCP_TESTER, "server", {})
    return [v.requirement for v in found.violations], found


def test_over_tcp_a_csm_first_and_pongs_with_their_pings_tokens_pass():
    c = Conn()
    c.seg(0.01, TCP_IUT, payload=encode_tcp(CSM))
    c.seg(0.02, TCP_TESTER, payload=encode_tcp(CSM) + encode_tcp(PING, token=b"\x01") + encode_tcp(PING, token=b"\x02"))
    c.seg(0.03, TCP_IUT, payload=encode_tcp(PONG, token=b"\x02") + encode_tcp(PONG, token=b"\x01"))  # any order
    found, validation = tcp_violations(c)
    assert found == []
    assert validation.checked == {coap_tcp.CSM_FIRST: 1, coap_tcp.PONG_TOKEN: 2}


def test_over_tcp_a_first_message_that_is_no_csm_and_a_pong_nobody_asked_for_are_violations():
    c = Conn()
    c.seg(0.01, TCP_IUT, payload=encode_tcp(CONTENT, token=b"\x01", payload=b"hi"))
    c.seg(0.02, TCP_TESTER, payload=encode_tcp(CSM) + encode_tcp(PING, token=b"\x07"))
    c.seg(0.03, TCP_IUT, payload=encode_tcp(PONG))  # libcoap 4.3.1's empty token
    c.seg(0.04, TCP_IUT, payload=encode_tcp(PONG, token=b"\x07") + encode_tcp(PONG, token=b"\x07"))  # one too many
    found, _ = tcp_violations(c)
    assert found == [coap_tcp.CSM_FIRST, coap_tcp.PONG_TOKEN, coap_tcp.PONG_TOKEN]
