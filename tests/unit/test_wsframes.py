"""Unit tests for fixtures.testers.wsframes: frames and handshakes built and parsed in memory.

Where wsproto is installed, the codec is also checked against it in both directions, so a mistake
shared by the encoder and the reader here cannot hide.
"""
from __future__ import annotations

import base64

import pytest

from fixtures.testers.wsframes import (
    AUTO_MASK,
    BINARY,
    CLOSE,
    CONTINUATION,
    DEFINED_OPCODES,
    MAX_HEAD,
    PING,
    PONG,
    TEXT,
    Frame,
    FrameReader,
    FrameTooLarge,
    HeadTooLarge,
    ProtocolViolation,
    accept_value,
    client_handshake,
    close_payload,
    encode,
    head_end,
    is_control,
    parse_close,
    parse_http_head,
    server_handshake,
    split_for_trickle,
)

KEY = b"\x37\xfa\x21\x3d"
RESERVED_OPCODES = sorted(set(range(16)) - DEFINED_OPCODES)


def read_one(data: bytes, **reader_options) -> Frame:
    frames = FrameReader(**reader_options).feed(data)
    assert len(frames) == 1
    return frames[0]


def hand_masked(payload: bytes, key: bytes) -> bytes:
    return bytes(octet ^ key[i % 4] for i, octet in enumerate(payload))


# --- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [None, KEY], ids=["server", "client"])
@pytest.mark.parametrize("opcode", sorted(DEFINED_OPCODES))
def test_every_defined_opcode_round_trips(opcode, mask):
    payload = b"" if opcode == CONTINUATION else b"keepalive"
    frame = read_one(encode(opcode, payload, mask=mask), strict=True)
    assert (frame.opcode, frame.payload, frame.fin, frame.rsv) == (opcode, payload, True, 0)
    assert frame.masked is (mask is not None)
    assert frame.is_control is is_control(opcode) is (opcode >= 0x8)


@pytest.mark.parametrize(
    ("size", "header_size", "second_octet"),
    [(0, 2, 0), (125, 2, 125), (126, 4, 126), (65535, 4, 126), (65536, 10, 127)],
)
@pytest.mark.parametrize("mask", [None, KEY], ids=["server", "client"])
def test_the_three_length_forms(size, header_size, second_octet, mask):
    payload = bytes(i % 251 for i in range(size))
    data = encode(BINARY, payload, mask=mask)
    key_size = 4 if mask else 0
    assert len(data) == header_size + key_size + size
    assert data[1] & 0x7F == second_octet
    frame = read_one(data, strict=True)
    assert frame.payload == payload
    assert frame.declared_length == size
    assert len(frame.raw_header) == header_size + key_size


def test_masking_matches_a_hand_computed_xor():
    data = encode(TEXT, b"Hello", mask=KEY)
    assert data == bytes([0x81, 0x85]) + KEY + hand_masked(b"Hello", KEY)
    # The masked "Hello" of RFC 6455 section 5.7, octet for octet.
    assert data == bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    assert encode(TEXT, b"Hello") == b"\x81\x05Hello"
    frame = read_one(data)
    assert frame.raw_header[-4:] == KEY and frame.payload == b"Hello"


def test_auto_mask_draws_a_key_and_still_round_trips():
    data = encode(PING, b"abcdefgh", mask=AUTO_MASK)
    assert data[1] & 0x80 and len(data) == 2 + 4 + 8
    frame = read_one(data)
    assert frame.masked and frame.payload == b"abcdefgh"
    assert data[6:] == hand_masked(b"abcdefgh", frame.raw_header[2:6])


def test_fin_and_rsv_bits_are_placed_and_read_back():
    data = encode(TEXT, b"x", fin=False, rsv=0b101)
    assert data[0] == 0b0101_0001
    frame = read_one(data)
    assert (frame.fin, frame.rsv) == (False, 0b101)


# --- frames RFC 6455 forbids: encodable, recorded by default, refused when strict ---------------

def test_declared_length_of_2_to_the_63_minus_1_raises_once_the_header_is_in():
    data = encode(BINARY, b"short body", mask=KEY, length_override=2**63 - 1)
    header = data[: 2 + 8 + 4]
    assert header[1] == 0x80 | 127 and int.from_bytes(header[2:10], "big") == 2**63 - 1
    for strict in (False, True):
        reader = FrameReader(strict=strict)
        assert reader.feed(header[:-1]) == []
        with pytest.raises(FrameTooLarge):
            reader.feed(header[-1:])


def test_max_payload_is_inclusive():
    assert read_one(encode(BINARY, bytes(10)), max_payload=10).declared_length == 10
    with pytest.raises(FrameTooLarge):
        FrameReader(max_payload=9).feed(encode(BINARY, b"", length_override=10))


def test_fragmented_ping_is_encodable_recorded_and_rejected_when_strict():
    data = encode(PING, b"part", fin=False, mask=KEY)
    assert data[0] == PING
    frame = read_one(data)
    assert frame.opcode == PING and not frame.fin
    with pytest.raises(ProtocolViolation, match="fragmented"):
        FrameReader(strict=True).feed(data)


def test_ping_of_126_octets_is_encodable_recorded_and_rejected_when_strict():
    data = encode(PING, bytes(126), mask=KEY)
    assert data[1] == 0x80 | 126
    assert read_one(data).declared_length == 126
    reader = FrameReader(strict=True)
    with pytest.raises(ProtocolViolation, match="126 octets"):
        reader.feed(data[:4 + 4])  # refused on the header alone


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        *[(encode(op, b""), "reserved opcode") for op in RESERVED_OPCODES],
        (encode(TEXT, b"x", rsv=0b100), "reserved bits"),
        (encode(BINARY, b"x", length_bits=16), "not the shortest"),
        (encode(BINARY, bytes(200), length_bits=64), "not the shortest"),
        (encode(BINARY, b"", length_override=2**64 - 1), "most significant bit"),
        (encode(CLOSE, close_payload(1000, "x" * 124)), "at most 125"),
    ],
)
def test_strict_reader_rejects_what_a_receiver_must_refuse(data, problem):
    with pytest.raises(ProtocolViolation, match=problem):
        FrameReader(strict=True, max_payload=2**64).feed(data)


def test_lenient_reader_returns_reserved_opcodes_and_non_minimal_lengths():
    frames = FrameReader().feed(encode(0xB, b"?") + encode(PONG, b"hi", length_bits=64))
    assert [(f.opcode, f.payload, len(f.raw_header)) for f in frames] == [(0xB, b"?", 2), (PONG, b"hi", 10)]


def test_a_rejection_carries_the_frames_that_preceded_it():
    good = encode(PONG, b"1") + encode(PONG, b"2")
    with pytest.raises(ProtocolViolation) as caught:
        FrameReader(strict=True).feed(good + encode(PING, bytes(126)))
    assert [f.payload for f in caught.value.frames] == [b"1", b"2"]


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode(16),
        lambda: encode(PING, rsv=8),
        lambda: encode(PING, mask=b"abc"),
        lambda: encode(PING, bytes(126), length_bits=7),
        lambda: encode(PING, length_bits=32),
        lambda: encode(PING, length_override=-1),
        lambda: close_payload(65536),
        lambda: split_for_trickle(b"x", 0),
    ],
)
def test_impossible_requests_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


# --- Close bodies --------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [1000, 1001, 1002, 1009, 1011, 3000, 4999])
def test_close_payload_round_trips(code):
    payload = close_payload(code, "bye ✓")
    assert payload[:2] == code.to_bytes(2, "big")
    assert parse_close(payload) == (code, "bye ✓")


def test_close_codes_the_rfc_forbids_on_the_wire_can_still_be_sent():
    for code in (1005, 1006, 1015):
        assert parse_close(close_payload(code)) == (code, "")


def test_parse_close_edge_cases():
    assert parse_close(b"") == (None, "")
    with pytest.raises(ProtocolViolation, match="one octet"):
        parse_close(b"\x03")
    with pytest.raises(ProtocolViolation, match="UTF-8"):
        parse_close(b"\x03\xe8\xff")


# --- trickle ---------------------------------------------------------------------------------------

def conversation() -> bytes:
    """Fragmented text with a Ping between fragments, a Pong, an unsolicited Pong, then Close."""
    return b"".join(
        [
            encode(TEXT, b"frag", fin=False, mask=KEY),
            encode(PING, b"mid-message", mask=KEY),
            encode(CONTINUATION, bytes(300), mask=KEY),
            encode(PONG, b"", mask=KEY),
            encode(CLOSE, close_payload(1000), mask=KEY),
        ]
    )


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
def test_feeding_one_octet_at_a_time_gives_the_same_frames(strict):
    data = conversation()
    if not strict:
        # The 64-bit length form without a 64 KiB body: non-minimal, so only a lenient reader takes it.
        data += encode(BINARY, bytes(20), length_bits=64, mask=KEY)
    whole = FrameReader(strict=strict).feed(data)
    reader = FrameReader(strict=strict)
    trickled = [frame for chunk in split_for_trickle(data) for frame in reader.feed(chunk)]
    assert trickled == whole
    assert [f.opcode for f in whole] == [TEXT, PING, CONTINUATION, PONG, CLOSE] + ([] if strict else [BINARY])


def test_split_for_trickle_chunks():
    assert split_for_trickle(b"abcde", 2) == [b"ab", b"cd", b"e"]
    assert split_for_trickle(b"abc") == [b"a", b"b", b"c"]
    assert split_for_trickle(b"") == []


# --- opening handshake -------------------------------------------------------------------------------

def test_accept_value_of_the_rfc_sample_key():
    # RFC 6455 section 1.3's worked example (also what wsproto and MDN give for this key).
    assert accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_client_handshake_parses_back():
    request, key = client_handshake("iut.test:8080", "/chat", key="dGhlIHNhbXBsZSBub25jZQ==")
    assert key == "dGhlIHNhbXBsZSBub25jZQ=="
    start, headers = parse_http_head(request)
    assert start == "GET /chat HTTP/1.1"
    assert headers["host"] == "iut.test:8080"
    assert headers["upgrade"] == "websocket"
    assert headers["sec-websocket-key"] == key
    assert headers["sec-websocket-version"] == "13"


def test_client_handshake_draws_a_16_octet_key():
    _, key = client_handshake("h", "/")
    assert len(base64.b64decode(key, validate=True)) == 16


def test_server_handshake_carries_the_accept_value():
    start, headers = parse_http_head(server_handshake("dGhlIHNhbXBsZSBub25jZQ=="))
    assert start == "HTTP/1.1 101 Switching Protocols"
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_parse_http_head_waits_joins_and_leaves_what_follows():
    head = b"HTTP/1.1 101 Switching Protocols\r\nX-A: 1\r\nx-a:  2 \r\nUpgrade: websocket\r\n\r\n"
    ping = encode(PING, b"early")
    data = head + ping
    assert parse_http_head(data[: len(head) - 1]) is None
    start, headers = parse_http_head(data)
    assert headers == {"x-a": "1, 2", "upgrade": "websocket"}
    assert head_end(data) == len(head)
    assert read_one(data[head_end(data):]).payload == b"early"


def test_parse_http_head_is_bounded():
    assert parse_http_head(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 100) is None
    with pytest.raises(HeadTooLarge):
        parse_http_head(b"GET / HTTP/1.1\r\n" + b"X" * MAX_HEAD)


def test_parse_http_head_rejects_a_line_without_a_colon():
    with pytest.raises(ProtocolViolation, match="malformed"):
        parse_http_head(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")


# --- cross-checks with wsproto ---------------------------------------------------------------------

def wsproto_frames(data: bytes, *, from_client: bool):
    frame_protocol = pytest.importorskip("wsproto.frame_protocol")
    receiver = frame_protocol.FrameProtocol(client=not from_client, extensions=[])
    receiver.receive_bytes(data)
    return list(receiver.received_frames())


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
@pytest.mark.parametrize("from_client", [True, False], ids=["client", "server"])
def test_wsproto_parses_what_we_encode(size, from_client):
    mask = AUTO_MASK if from_client else None
    payload = bytes(i % 7 for i in range(size))
    data = encode(BINARY, payload, mask=mask) + encode(PING, b"p", mask=mask) + encode(PONG, b"", mask=mask)
    data += encode(CLOSE, close_payload(1001, "away"), mask=mask)
    frames = wsproto_frames(data, from_client=from_client)
    assert b"".join(f.payload for f in frames[:-3]) == payload
    assert [(int(f.opcode), f.payload) for f in frames[-3:-1]] == [(PING, b"p"), (PONG, b"")]
    assert frames[-1].payload == (1001, "away")


@pytest.mark.parametrize(
    "data",
    [encode(PING, bytes(126), mask=KEY), encode(PING, b"x", fin=False, mask=KEY), encode(BINARY, b"x", length_bits=16, mask=KEY)],
    ids=["126-octet-ping", "fragmented-ping", "non-minimal-length"],
)
def test_wsproto_agrees_these_frames_are_malformed(data):
    frame_protocol = pytest.importorskip("wsproto.frame_protocol")
    with pytest.raises(frame_protocol.ParseFailed):
        wsproto_frames(data, from_client=True)
    with pytest.raises(ProtocolViolation):
        FrameReader(strict=True).feed(data)


@pytest.mark.parametrize("client", [True, False], ids=["client", "server"])
def test_we_parse_what_wsproto_encodes(client):
    frame_protocol = pytest.importorskip("wsproto.frame_protocol")
    sender = frame_protocol.FrameProtocol(client=client, extensions=[])
    data = bytes(
        sender.send_data(b"first", fin=False)
        + sender.ping(b"between")
        + sender.send_data(bytes(70000), fin=True)
        + sender.pong(b"unsolicited")
        + sender.close(1000, "done")
    )
    frames = FrameReader(strict=True).feed(data)
    assert [(f.opcode, f.fin, f.masked) for f in frames] == [
        (BINARY, False, client),
        (PING, True, client),
        (CONTINUATION, True, client),
        (PONG, True, client),
        (CLOSE, True, client),
    ]
    assert frames[1].payload == b"between" and frames[2].payload == bytes(70000)
    assert parse_close(frames[4].payload) == (1000, "done")


def test_handshakes_interoperate_with_wsproto():
    wsproto = pytest.importorskip("wsproto")
    from wsproto.events import AcceptConnection, Request

    server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    request, key = client_handshake("iut.test", "/ws")
    server.receive_data(request)
    (event,) = server.events()
    assert isinstance(event, Request) and event.target == "/ws"
    _, headers = parse_http_head(server.send(AcceptConnection()))
    assert headers["sec-websocket-accept"] == accept_value(key)

    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    _, headers = parse_http_head(client.send(Request(host="iut.test", target="/ws")))
    client.receive_data(server_handshake(headers["sec-websocket-key"]))
    assert isinstance(next(client.events()), AcceptConnection)
