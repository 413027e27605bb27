"""The CoAP wire codec (fixtures/coapwire.py) on crafted messages, checked against aiocoap where it can read them."""
from __future__ import annotations

import pytest

from fixtures import coapwire as cw


def test_an_empty_confirmable_is_four_octets_and_reads_back():
    raw = cw.encode_udp(cw.CON, cw.EMPTY, 0x1234)
    assert raw == bytes([0x40, 0x00, 0x12, 0x34])
    msg = cw.decode_udp(raw)
    assert (msg.mtype, msg.code, msg.mid, msg.token, msg.error) == (cw.CON, cw.EMPTY, 0x1234, b"", "")
    assert msg.empty and msg.describe() == "CON 0.00 Empty mid=0x1234"


def test_a_request_with_options_and_payload_round_trips_and_aiocoap_agrees():
    aiocoap = pytest.importorskip("aiocoap")
    options = [(cw.OPTION_URI_PATH, b"a"), (cw.OPTION_URI_PATH, b"b" * 20), (300, b"x" * 300)]
    raw = cw.encode_udp(cw.CON, cw.GET, 7, token=b"\x01\x02", options=options, payload=b"hi")
    msg = cw.decode_udp(raw)
    assert msg.error == "" and msg.options == tuple(options) and msg.payload == b"hi" and msg.token == b"\x01\x02"
    theirs = aiocoap.Message.decode(raw)
    assert theirs.mid == 7 and theirs.token == b"\x01\x02" and theirs.payload == b"hi"
    assert list(theirs.opt.uri_path) == ["a", "b" * 20]


@pytest.mark.parametrize(("raw", "error"), [
    (b"\x40\x00\x12", "shorter than the 4-octet header"),
    (bytes([0x4F, 0x01, 0, 1]) + b"x" * 15, "token length 15"),
    (bytes([0x49, 0x01, 0, 1]) + b"x" * 9, "token length 9"),
    (bytes([0x4D, 0x01, 0, 1, 0x05]), "token cut short"),
    (bytes([0x80, 0x00, 0, 1]), "version 2"),
    (bytes([0x41, 0x00, 0, 1, 0xAA]), "an Empty message with octets after the header"),
    (bytes([0x40, 0x01, 0, 1, 0xFF]), "payload marker with no payload"),
    (bytes([0x40, 0x01, 0, 1, 0xF1, 0x00]), "option nibble 15"),
    (bytes([0x40, 0x01, 0, 1, 0xD1]), "option cut short"),
])
def test_format_errors_are_named_not_raised(raw, error):
    assert error in cw.decode_udp(raw).error


def test_tcp_framing_round_trips_every_length_form():
    reader = cw.StreamReader()
    sizes = [0, 5, 12, 13, 268, 269, 70000]
    stream = b"".join(cw.encode_tcp(cw.PING, token=bytes([n % 256]), payload=b"p" * n) for n in sizes)
    got = []
    for i in range(0, len(stream), 997):  # octets arrive in pieces
        got += reader.feed(stream[i:i + 997])
    assert [len(m.payload) for m in got] == sizes and reader.pending == 0 and not reader.error
    assert all(m.code == cw.PING and m.transport == "tcp" for m in got)


def test_a_csm_and_a_pong_with_custody_read_back():
    csm = cw.encode_tcp(cw.CSM, options=[(cw.OPTION_MAX_MESSAGE_SIZE, (1152).to_bytes(2, "big"))])
    pong = cw.encode_tcp(cw.PONG, token=b"\xab", options=[(cw.OPTION_CUSTODY, b"")])
    first, second = cw.decode_tcp(csm + pong)[0]
    assert first.describe() == "7.01 CSM options=2" and int.from_bytes(first.option(2)[0], "big") == 1152
    assert second.token == b"\xab" and second.option(cw.OPTION_CUSTODY) == [b""]


def test_a_length_that_never_completes_stays_pending_and_a_huge_one_is_refused():
    reader = cw.StreamReader(limit=1000)
    assert reader.feed(bytes([0xE0, 0x00, 0x10, cw.PING])) == [] and reader.pending > 0
    huge = cw.StreamReader(limit=1000)
    assert huge.feed(bytes([0xF0, 0xFF, 0xFF, 0xFF, 0xFF, cw.PING])) == [] and "length field" in huge.error
    bad = cw.StreamReader()
    (msg,) = bad.feed(bytes([0x0F, cw.PING]))
    assert "token length 15" in msg.error and bad.error


def test_rfc_8974_extended_token_lengths_read_back():
    token = bytes(range(20))
    raw = bytes([0x4D, cw.GET, 0, 9, len(token) - 13]) + token
    msg = cw.decode_udp(raw)
    assert msg.error == "" and msg.token == token


def test_the_empty_con_fault_match_names_exactly_the_coap_ping():
    from fixtures.protocols.coap import EMPTY_CON, is_empty_con

    assert is_empty_con(cw.encode_udp(cw.CON, cw.EMPTY, 0xBEEF))
    assert not is_empty_con(cw.encode_udp(cw.NON, cw.EMPTY, 1))
    assert not is_empty_con(cw.encode_udp(cw.CON, cw.EMPTY, 1, token=b"x"))
    assert not is_empty_con(cw.encode_udp(cw.CON, cw.GET, 1))
    # the nftables rule: UDP length 12 (8 of header, 4 of CoAP) and the first two CoAP octets 0x40 0x00
    assert "udp length 12" in EMPTY_CON[4] and "@th,64,16 == 0x4000" in EMPTY_CON[4] and EMPTY_CON[4] == EMPTY_CON[6]
