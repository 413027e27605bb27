"""Unit tests for fixtures.datagrams and the udp-echo plug-in: crafted captures in, datagram events out.

Every capture is built with dpkt in memory (IPv4 and IPv6), so the tests need no Docker and no network.
The nftables match that drops "probe" datagrams cannot run here; its text is checked, and a small
reading of that text applied to the raw UDP octets is compared with the plug-in's Python predicate.
"""
from __future__ import annotations

import io
import re
import socket

import dpkt
import pytest

from conformance.requirements import catalogue
from fixtures.datagrams import Datagram, datagrams, endpoint_text, first, flow, octets, sent_by, sent_to, to_text
from fixtures.faults import Faults
from fixtures.peers import load_manifest
from fixtures.protocols import DATAGRAM, registry
from fixtures.protocols.udp_echo import LADDER_MAX, MATCH, PROBE_PREFIX, PROTOCOL, is_probe, ladder, matches
from fixtures.timeline import read_pcap
from tests.unit.test_fault_rules import pod

IUT, TESTER = "10.0.0.2", "10.0.0.3"
IUT6, TESTER6 = "fd00::2", "fd00::3"
ECHO, CLIENT = 7, 40000


def ip_packet(src: str, dst: str, l4: dpkt.Packet, proto: int = dpkt.ip.IP_PROTO_UDP) -> dpkt.Packet:
    if ":" in src:
        return dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
                            nxt=proto, hlim=64, plen=len(bytes(l4)), data=l4)
    return dpkt.ip.IP(src=socket.inet_pton(socket.AF_INET, src), dst=socket.inet_pton(socket.AF_INET, dst), p=proto, data=l4)


def udp(sport: int, dport: int, data: bytes) -> dpkt.udp.UDP:
    return dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(data), data=data)


def pcap(packets: list[tuple[float, dpkt.Packet]]) -> bytes:
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB)
    for t, ip in packets:
        ethtype = dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
        writer.writepkt(bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=ethtype, data=ip)), ts=t)
    return out.getvalue()


def exchange(iut: str = IUT, tester: str = TESTER) -> list[tuple[float, dpkt.Packet]]:
    """The tester sends three datagrams (1, 64 and 1200 octets); the IUT echoes them."""
    packets = []
    for i, data in enumerate([b"a", b"ping-64 " + b"x" * 56, bytes(range(256)) * 4 + b"y" * 176]):
        t = 100.0 + i
        packets.append((t, ip_packet(tester, iut, udp(CLIENT, ECHO, data))))
        packets.append((t + 0.001, ip_packet(iut, tester, udp(ECHO, CLIENT, data))))
    return packets


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize(("server", "client"), [(IUT, TESTER), (IUT6, TESTER6)], ids=["ipv4", "ipv6"])
def test_each_datagram_is_one_event_with_its_endpoints_size_and_head(server, client):
    events = datagrams(read_pcap(pcap(exchange(server, client)), keep=None))
    assert [(d.src, d.sport, d.dst, d.dport) for d in events] == [
        (client, CLIENT, server, ECHO), (server, ECHO, client, CLIENT)] * 3
    assert [d.size for d in events] == [1, 1, 64, 64, 1200, 1200]
    assert events[0].t == pytest.approx(100.0) and events[1].t == pytest.approx(100.001)
    assert events[0].head == b"a" and events[4].head[:4] == b"\x00\x01\x02\x03"
    assert all(d.complete for d in events)
    assert all(a.same_data(b) for a, b in zip(events[::2], events[1::2], strict=True))
    assert isinstance(events[0], Datagram)
    with pytest.raises(AttributeError):
        events[0].size = 2  # frozen


def test_a_capture_that_kept_64_octets_still_knows_each_size():
    events = datagrams(read_pcap(pcap(exchange())))  # the capture's default: 64 payload octets kept
    big = events[4]
    assert big.size == 1200 and len(big.head) == 64 and not big.complete
    assert events[0].complete and events[2].complete  # 1 and 64 octets fit
    # The same leading octets and length: as far as what was kept can tell, the same data.
    assert big.same_data(events[5])


def test_an_empty_datagram_is_an_event_of_size_zero():
    events = datagrams(read_pcap(pcap([(1.0, ip_packet(TESTER, IUT, udp(CLIENT, ECHO, b"")))])))
    assert [(d.size, d.head, d.complete) for d in events] == [(0, b"", True)]
    assert events[0].describe() == "0 octets (empty)"


def test_tcp_segments_are_left_out():
    tcp = dpkt.tcp.TCP(sport=CLIENT, dport=ECHO, seq=1, flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, data=b"ping")
    segments = read_pcap(pcap([(1.0, ip_packet(TESTER, IUT, tcp, dpkt.ip.IP_PROTO_TCP))] + exchange()[:1]))
    assert len(segments) == 2
    assert [d.size for d in datagrams(segments)] == [1]


# --------------------------------------------------------------------------- queries


def test_queries_by_direction_and_flow():
    other = [(99.0, ip_packet("10.0.0.9", IUT, udp(5000, ECHO, b"stranger")))]
    events = datagrams(read_pcap(pcap(other + exchange()), keep=None))
    assert [d.size for d in sent_by(events, TESTER)] == [1, 64, 1200]
    assert [d.size for d in sent_by(events, IUT, ECHO, after=100.5)] == [64, 1200]
    assert [d.src for d in sent_to(events, IUT)] == ["10.0.0.9", TESTER, TESTER, TESTER]
    assert sent_to(events, IUT, 9999) == []
    assert [d.size for d in flow(events, (IUT, ECHO), (TESTER, CLIENT))] == [1, 64, 1200]
    assert flow(events, (TESTER, CLIENT), (IUT, ECHO))[0].head == b"a"
    assert first(events, lambda d: d.size == 64).src == TESTER
    assert first([]) is None
    assert octets(sent_by(events, IUT)) == 1265


def test_same_data_compares_length_and_octets():
    def d(head: bytes, size: int | None = None) -> Datagram:
        return Datagram(0.0, TESTER, CLIENT, IUT, ECHO, len(head) if size is None else size, head)

    assert d(b"abc").same_data(d(b"abc"))
    assert not d(b"abc").same_data(d(b"ABC"))
    assert not d(b"abc").same_data(d(b"abcd"))
    assert not d(b"abc").same_data(d(b"ab"))
    assert d(b"abc", size=200).same_data(d(b"abcdef", size=200))  # cut heads: what both kept agrees


def test_text_describe_and_listing():
    events = datagrams(read_pcap(pcap(exchange(IUT6, TESTER6)), keep=None))
    assert events[0].describe() == "1 octet 'a'"
    assert events[2].text() == "ping-64 xxxxxxxx..."
    assert events[4].text(4) == "......."  # 4 non-printable octets, then the mark of a cut
    assert endpoint_text(IUT6, 7) == "[fd00::2]:7" and endpoint_text(IUT, 7) == "10.0.0.2:7"
    lines = to_text(events).splitlines()
    assert len(lines) == 6 and lines[0].startswith("   0.0000  [fd00::3]:40000 -> [fd00::2]:7  1 octet 'a'")


# --------------------------------------------------------------------------- the fault match


def nft_match(expr: str, ip_proto: int, transport: bytes) -> bool:
    """The one nftables form MATCH uses, read literally: ``meta l4proto udp @th,OFFSET,LENGTH == 0xVALUE``.

    @th is the transport header; OFFSET and LENGTH are in bits. A field past the end of the packet cannot be
    loaded, and nftables then does not match.
    """
    parsed = re.fullmatch(r"meta l4proto (udp|tcp) @th,(\d+),(\d+) == 0x([0-9a-f]+)", expr)
    assert parsed, f"not the form this reading knows: {expr!r}"
    proto, offset, length, value = parsed.groups()
    if ip_proto != {"udp": dpkt.ip.IP_PROTO_UDP, "tcp": dpkt.ip.IP_PROTO_TCP}[proto]:
        return False
    offset, length = int(offset), int(length)
    assert offset % 8 == 0 and length % 8 == 0
    field = transport[offset // 8: offset // 8 + length // 8]
    return len(field) == length // 8 and int.from_bytes(field, "big") == int(value, 16)


def test_the_nft_match_is_the_ping_prefix_as_a_raw_payload_match():
    assert PROBE_PREFIX == b"ping" and b"ping".hex() == "70696e67"
    assert MATCH == {4: "meta l4proto udp @th,64,32 == 0x70696e67", 6: "meta l4proto udp @th,64,32 == 0x70696e67"}


EXAMPLES = [b"ping", b"ping-1 lost on the way", b"pingpong", b"ping\x00", b"pin", b"p", b"", b"PING", b"xping",
            b"echo-64-0 abc", bytes(1200), b" ping"]


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("data", EXAMPLES, ids=[repr(e[:12]) for e in EXAMPLES])
def test_the_python_predicate_and_the_nft_match_agree(version, data):
    src, dst = (TESTER, IUT) if version == 4 else (TESTER6, IUT6)
    datagram = udp(CLIENT, ECHO, data)
    event = datagrams(read_pcap(pcap([(1.0, ip_packet(src, dst, datagram))])))[0]  # the capture keeps 64 octets
    assert matches(event) == is_probe(event.head) == nft_match(MATCH[version], dpkt.ip.IP_PROTO_UDP, bytes(datagram))
    assert is_probe(data) == data.startswith(b"ping")


def test_tcp_carrying_ping_matches_neither():
    segment = dpkt.tcp.TCP(sport=CLIENT, dport=ECHO, off=5, data=b"pingpingpingping")
    assert not nft_match(MATCH[4], dpkt.ip.IP_PROTO_TCP, bytes(segment))
    assert datagrams(read_pcap(pcap([(1.0, ip_packet(TESTER, IUT, segment, dpkt.ip.IP_PROTO_TCP))]))) == []


@pytest.mark.parametrize(("address", "family"), [("10.213.0.2", "ip"), ("fd00:a11e::2", "ip6")])
def test_dropping_the_first_ping_makes_one_counted_rule(address, family):
    box, sidecar = pod()
    Faults(box, address).drop("to-iut", MATCH, first=1)
    script = sidecar.ran[-1]
    assert "hook output" in script and "hook input" not in script
    assert f"{family} daddr {address} meta l4proto udp @th,64,32 == 0x70696e67 numgen inc mod 1000000 < 1 drop" in script


# --------------------------------------------------------------------------- the plug-in


def test_the_plugin_is_registered_as_a_datagram_protocol_keeping_whole_payloads():
    assert registry()["udp-echo"] is PROTOCOL
    assert PROTOCOL.transport == DATAGRAM and PROTOCOL.whole_payloads
    assert PROTOCOL.knobs == {} and PROTOCOL.features == {}
    assert 30 <= PROTOCOL.budget(None, "server") <= 120
    assert set(PROTOCOL.ladder_kinds) >= {"datagram", "echo", "reply"}


def test_a_manifest_with_a_udp_echo_section_loads(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "peer.toml"
    path.write_text('[image]\nbuild = "img"\n\n[udp-echo.server]\nport = 7\ncommand = "echo-server --port {port}"\n')
    manifest = load_manifest(path)
    spec = manifest.role("udp-echo", "server")
    assert spec.port == 7 and spec.command == ["echo-server", "--port", "{port}"] and spec.ready == "listen"
    assert manifest.protocols["udp-echo"].features == set()


def test_a_manifest_with_an_unknown_udp_echo_feature_is_refused(tmp_path):
    from fixtures.errors import ManifestError

    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "peer.toml"
    path.write_text('[image]\nbuild = "img"\n\n[udp-echo]\nfeatures = ["keepalive"]\n\n'
                    '[udp-echo.server]\nport = 7\ncommand = "x {port}"\n')
    with pytest.raises(ManifestError, match="unknown"):
        load_manifest(path)


def test_the_catalogue_file_belongs_to_the_plugin():
    rules = {i: r for i, r in catalogue().items() if r.protocol == "udp-echo"}
    assert {"RFC862-udp-echo-answer", "RFC862-udp-echo-data", "UDPECHO-echo-time", "UDPECHO-empty-datagram"} <= set(rules)
    assert rules["RFC862-udp-echo-data"].level == "MUST" and rules["UDPECHO-echo-time"].level == "INFO"
    assert not rules["RFC862-udp-port"].observable


def test_the_ladder_tells_echoes_from_other_replies():
    packets = exchange()
    packets.append((110.0, ip_packet(TESTER, IUT, udp(CLIENT, ECHO, b"hello"))))
    packets.append((110.001, ip_packet(IUT, TESTER, udp(ECHO, CLIENT, b"HELLO"))))
    events = ladder(read_pcap(pcap(packets), keep=None), IUT, TESTER)
    assert [e.kind for e in events] == ["datagram", "echo"] * 3 + ["datagram", "reply"]
    assert events[0].label == "1 octet 'a'" and events[0].src == TESTER and events[0].dst == IUT
    assert events[-1].label == "5 octets 'HELLO'"


def test_the_ladder_sums_up_a_flood():
    flood = [(1.0 + i / 1000, ip_packet(IUT, TESTER, udp(ECHO, CLIENT, bytes(100)))) for i in range(LADDER_MAX + 50)]
    events = ladder(read_pcap(pcap(flood), keep=None), IUT, TESTER)
    assert len(events) == LADDER_MAX + 1
    assert events[-1].kind == "more" and events[-1].label == "+50 more datagrams, 5000 octets (not drawn)"
    assert all(e.kind == "reply" for e in events[:-1])
