"""Unit tests for fixtures.timeline: crafted captures in, keepalive events and pictures out.

Every capture here is built with dpkt in memory, so the tests need no Docker and no network.
"""
from __future__ import annotations

import io
import json
import socket
import xml.etree.ElementTree as ET

import dpkt
import pytest

from fixtures.timeline import PcapStream, build_timeline, read_pcap, timeline_svg

IUT = "10.0.0.2"
TESTER = "10.0.0.3"
IUT6 = "fd00::2"
TESTER6 = "fd00::3"
SYN, FIN, RST, ACK, PSH = dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST, dpkt.tcp.TH_ACK, dpkt.tcp.TH_PUSH
SVG_NS = "{http://www.w3.org/2000/svg}"


def ip_packet(src: str, dst: str, l4: dpkt.Packet) -> dpkt.Packet:
    """An IPv4 or IPv6 packet (by the address family of ``src``) carrying ``l4``."""
    proto = dpkt.ip.IP_PROTO_TCP if isinstance(l4, dpkt.tcp.TCP) else dpkt.ip.IP_PROTO_UDP
    if ":" in src:
        return dpkt.ip6.IP6(
            src=socket.inet_pton(socket.AF_INET6, src), dst=socket.inet_pton(socket.AF_INET6, dst),
            nxt=proto, hlim=64, plen=len(bytes(l4)), data=l4,
        )
    return dpkt.ip.IP(src=socket.inet_pton(socket.AF_INET, src), dst=socket.inet_pton(socket.AF_INET, dst), p=proto, data=l4)


def link_frame(ip: dpkt.Packet, linktype: int) -> bytes:
    ethtype = dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        return bytes(dpkt.sll.SLL(ethtype=ethtype, data=ip))
    if linktype == dpkt.pcap.DLT_LINUX_SLL2:
        return bytes(dpkt.sll2.SLL2(ethtype=ethtype, data=ip))
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=ethtype, data=ip))


class Flow:
    """One TCP connection between the IUT (client) and the tester, crafted segment by segment.

    Tracks each side's next sequence number so a test states only what differs from normal.
    """

    def __init__(self, iut: str = IUT, tester: str = TESTER, isn: tuple[int, int] = (1000, 50000), port: int = 40000):
        self.ends = {iut: (iut, port), tester: (tester, 8080)}
        self.nxt = {iut: isn[0], tester: isn[1]}
        self.peer = {iut: tester, tester: iut}
        self.packets: list[tuple[float, dpkt.Packet]] = []

    def send(self, t: float, src: str, flags: int, payload: bytes = b"", seq: int | None = None, window: int = 64240) -> Flow:
        dst = self.peer[src]
        seq = self.nxt[src] if seq is None else seq
        tcp = dpkt.tcp.TCP(
            sport=self.ends[src][1], dport=self.ends[dst][1], seq=seq,
            ack=self.nxt[dst] if flags & ACK else 0, flags=flags, win=window, data=payload,
        )
        self.packets.append((t, ip_packet(src, dst, tcp)))
        if seq == self.nxt[src]:  # only new sequence space advances, not retransmissions or probes
            self.nxt[src] = (seq + len(payload) + bool(flags & SYN) + bool(flags & FIN)) % 2**32
        return self

    def handshake(self, t: float) -> Flow:
        client, server = list(self.ends)
        return self.send(t, client, SYN).send(t + 0.0002, server, SYN | ACK).send(t + 0.0004, client, ACK)

    def probe(self, t: float, src: str, garbage: bytes = b"") -> Flow:
        return self.send(t, src, ACK, garbage, seq=(self.nxt[src] - 1) % 2**32)

    def pcap(self, linktype: int = dpkt.pcap.DLT_EN10MB, nano: bool = False) -> bytes:
        return write_pcap(self.packets, linktype, nano)


def write_pcap(packets: list[tuple[float, dpkt.Packet]], linktype: int = dpkt.pcap.DLT_EN10MB, nano: bool = False) -> bytes:
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, snaplen=65535, linktype=linktype, nano=nano)
    for t, ip in sorted(packets, key=lambda p: p[0]):
        writer.writepkt(link_frame(ip, linktype), ts=t)
    return out.getvalue()


def big_endian_pcap(packets: list[tuple[float, dpkt.Packet]], snaplen: int = 65535) -> bytes:
    """A nanosecond, big-endian capture cut at ``snaplen``: what a big-endian tcpdump -s would write."""
    parts = [bytes(dpkt.pcap.FileHdr(magic=dpkt.pcap.TCPDUMP_MAGIC_NANO, snaplen=snaplen, linktype=dpkt.pcap.DLT_EN10MB))]
    for t, ip in packets:
        frame = link_frame(ip, dpkt.pcap.DLT_EN10MB)
        kept = frame[:snaplen]
        sec, nsec = int(t), round(t % 1 * 1e9)
        parts.append(bytes(dpkt.pcap.PktHdr(tv_sec=sec, tv_usec=nsec, caplen=len(kept), len=len(frame))) + kept)
    return b"".join(parts)


def keepalive_flow(iut: str = IUT, tester: str = TESTER, isn: tuple[int, int] = (1000, 50000)) -> Flow:
    """Handshake, a request and a response, then three probes from the IUT 1 s apart, each acked."""
    flow = Flow(iut, tester, isn).handshake(100.0)
    flow.send(100.01, iut, PSH | ACK, b"hello").send(100.0102, tester, ACK)
    flow.send(100.02, tester, PSH | ACK, b"world!").send(100.0202, iut, ACK)
    for t in (102.02, 103.02, 104.02):
        flow.probe(t, iut).send(t + 0.0003, tester, ACK)
    return flow


def kinds(pcap: bytes) -> list[str]:
    return [e.kind for e in build_timeline(read_pcap(pcap)).events]


KEEPALIVE_KINDS = ["syn", "syn-ack", "ack", "data", "ack", "data", "ack"] + ["probe", "probe-ack"] * 3


def test_idle_connection_probes_are_found_with_their_acks():
    timeline = build_timeline(read_pcap(keepalive_flow().pcap()))

    assert [e.kind for e in timeline.events] == KEEPALIVE_KINDS
    assert len(timeline.probes(IUT)) == 3
    assert timeline.probes(TESTER) == []
    assert timeline.probe_intervals(IUT) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert timeline.count("probe-ack", TESTER) == 3
    assert timeline.last_data_time() == pytest.approx(100.02)
    assert timeline.last_data_time(IUT) == pytest.approx(100.01)
    assert timeline.first("probe", IUT, after=102.5).t == pytest.approx(103.02)
    assert timeline.first("rst") is None
    probe, answer = timeline.events[7], timeline.events[8]
    assert (probe.src, probe.seq, probe.length, probe.note) == (IUT, 1000 + 1 + 5 - 1, 0, "")
    assert (answer.src, answer.ack) == (TESTER, 1000 + 1 + 5)


def test_one_octet_garbage_probe_is_a_probe():
    flow = Flow().handshake(0.0)
    flow.send(0.1, IUT, PSH | ACK, b"ping").send(0.1002, TESTER, ACK)
    flow.probe(2.1, IUT, garbage=b"\x00").send(2.1003, TESTER, ACK)
    timeline = build_timeline(read_pcap(flow.pcap()))

    [probe] = timeline.probes(IUT)
    assert (probe.length, probe.note) == (1, "garbage-octet")
    assert timeline.events[-1].kind == "probe-ack"


def test_data_and_plain_acks_are_not_probes():
    flow = Flow().handshake(0.0)
    for i in range(5):  # one-octet keystrokes: new data at SND.NXT, not SND.NXT-1
        flow.send(1.0 + i, IUT, PSH | ACK, b"k").send(1.0002 + i, TESTER, ACK)
    flow.send(7.0, TESTER, ACK)  # a window update: pure ACK with no probe before it
    timeline = build_timeline(read_pcap(flow.pcap()))

    assert timeline.probes() == []
    assert timeline.count("data", IUT) == 5
    assert timeline.count("probe-ack") == 0
    assert timeline.events[-1].kind == "ack"


def test_retransmitted_data_is_not_a_probe():
    flow = Flow().handshake(0.0)
    first = flow.nxt[IUT]
    flow.send(0.1, IUT, PSH | ACK, b"x" * 100)
    flow.send(0.3, IUT, PSH | ACK, b"x" * 100, seq=first)  # RTO retransmission, nothing acked yet
    flow.send(0.31, TESTER, ACK)
    flow.send(0.4, IUT, PSH | ACK, b"y")
    flow.send(0.6, IUT, PSH | ACK, b"y", seq=flow.nxt[IUT] - 1)  # unacked last octet resent: same shape as a probe
    timeline = build_timeline(read_pcap(flow.pcap()))

    assert timeline.probes() == []
    assert [(e.kind, e.length, e.note) for e in timeline.events if e.src == IUT and e.length] == [
        ("data", 100, ""),
        ("data", 100, "retransmission"),
        ("data", 1, ""),
        ("data", 1, "retransmission"),
    ]


def test_probe_of_a_closed_window_is_noted():
    flow = Flow().handshake(0.0)
    flow.send(0.1, IUT, PSH | ACK, b"x" * 1000).send(0.1002, TESTER, ACK, window=0)
    flow.probe(0.4, IUT).send(0.4003, TESTER, ACK, window=0)
    flow.send(0.5, TESTER, ACK)  # the window opens again
    flow.probe(2.5, IUT)
    timeline = build_timeline(read_pcap(flow.pcap()))

    assert [p.note for p in timeline.probes(IUT)] == ["zero-window", ""]


def test_fin_and_rst_are_recognised():
    flow = Flow().handshake(0.0)
    flow.send(1.0, IUT, FIN | ACK).send(1.001, TESTER, FIN | ACK).send(1.002, IUT, ACK)
    other = Flow(port=40001).handshake(2.0)
    other.send(3.0, TESTER, RST | ACK)
    timeline = build_timeline(read_pcap(write_pcap(flow.packets + other.packets)))

    assert [e.kind for e in timeline.events][3:6] == ["fin", "fin", "ack"]
    assert timeline.first("rst").src == TESTER
    assert timeline.count("syn") == 2


def test_sequence_numbers_wrap_around_2_32():
    # Ten octets of data after the SYN end exactly at 2**32, so SND.NXT is 0 and the probe's seq is 2**32-1.
    flow = Flow(isn=(2**32 - 11, 2**32 - 1)).handshake(0.0)
    flow.send(0.1, IUT, PSH | ACK, b"0123456789").send(0.1002, TESTER, ACK)
    flow.probe(1.1, IUT).send(1.1003, TESTER, ACK)
    flow.probe(2.1, IUT).send(2.1003, TESTER, ACK)
    timeline = build_timeline(read_pcap(flow.pcap()))

    assert [p.seq for p in timeline.probes(IUT)] == [2**32 - 1, 2**32 - 1]
    assert [e.ack for e in timeline.events if e.kind == "probe-ack"] == [0, 0]


@pytest.mark.parametrize("linktype", [dpkt.pcap.DLT_LINUX_SLL, dpkt.pcap.DLT_LINUX_SLL2], ids=["sll", "sll2"])
def test_linux_cooked_capture_reads_like_ethernet(linktype):
    flow = keepalive_flow()
    assert read_pcap(flow.pcap(linktype)) == read_pcap(flow.pcap())
    assert kinds(flow.pcap(linktype)) == KEEPALIVE_KINDS


def test_ipv6_connection():
    pcap = keepalive_flow(IUT6, TESTER6).pcap()
    timeline = build_timeline(read_pcap(pcap))

    assert [e.kind for e in timeline.events] == KEEPALIVE_KINDS
    assert timeline.probe_intervals(IUT6) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert timeline.events[0].src == IUT6


def test_stream_fed_in_small_chunks_matches_the_file():
    pcap = keepalive_flow().pcap()
    stream = PcapStream()
    segments = []
    for i in range(0, len(pcap), 7):
        segments += stream.feed(pcap[i : i + 7])

    assert segments == read_pcap(pcap)
    assert len(segments) == len(KEEPALIVE_KINDS)


@pytest.mark.parametrize("keep", [3, 16, 16 + 53], ids=["in-record-header", "header-only", "frame-short-by-one"])
def test_truncated_capture_yields_the_complete_records(keep):
    flow = keepalive_flow()
    pcap = flow.pcap()
    last_record = 16 + len(link_frame(flow.packets[-1][1], dpkt.pcap.DLT_EN10MB))

    segments = read_pcap(pcap[: len(pcap) - last_record + keep])

    assert segments == read_pcap(pcap)[:-1]


def test_big_endian_nanosecond_capture_with_short_snap_length():
    # A 96-octet snap length cuts the 500-octet response; its length must still come from the IP header,
    # or the IUT's SND.NXT would be wrong and its probes missed.
    flow = Flow().handshake(10.0)
    flow.send(10.1, TESTER, PSH | ACK, b"r" * 500).send(10.1002, IUT, ACK)
    flow.probe(11.123456789, TESTER).send(11.1235, IUT, ACK)
    segments = read_pcap(big_endian_pcap(flow.packets, snaplen=96))

    assert segments[3].payload_len == 500
    assert len(segments[3].payload) == 96 - 14 - 20 - 20
    assert segments[5].t == pytest.approx(11.123456789, abs=1e-7)
    assert [p.t for p in build_timeline(segments).probes(TESTER)] == [segments[5].t]


def test_nanosecond_little_endian_capture_matches_microsecond_one():
    flow = keepalive_flow()
    nano = read_pcap(flow.pcap(nano=True))
    assert [(s.seq, s.flags) for s in nano] == [(s.seq, s.flags) for s in read_pcap(flow.pcap())]
    assert nano[-1].t == pytest.approx(104.0203)


def test_probes_found_in_a_capture_started_mid_connection():
    # Only the idle part is captured: the first probe cannot be told apart, its ACK reveals SND.NXT.
    flow = keepalive_flow()
    timeline = build_timeline(read_pcap(write_pcap(flow.packets[7:])))

    assert [e.kind for e in timeline.events] == ["ack", "ack", "probe", "probe-ack", "probe", "probe-ack"]


def test_one_connection_selected_in_either_direction_and_udp_kept():
    ka = keepalive_flow()
    other = Flow(port=40001).handshake(100.5)
    other.send(100.6, TESTER, PSH | ACK, b"unrelated")
    udp = dpkt.udp.UDP(sport=5683, dport=5683, data=b"\x40\x00\x12\x34")
    udp.ulen = len(bytes(udp))
    packets = ka.packets + other.packets + [(101.0, ip_packet(TESTER, IUT, udp))]
    segments = read_pcap(write_pcap(packets))

    only = build_timeline(segments, conn=((TESTER, 8080), (IUT, 40000)))
    assert [e.kind for e in only.events] == KEEPALIVE_KINDS
    everything = build_timeline(segments)
    assert everything.count("syn") == 2
    assert [(e.src, e.length) for e in everything.events if e.kind == "udp"] == [(TESTER, 4)]
    assert build_timeline(segments, conn=((IUT, 5683), (TESTER, 5683))).count("udp") == 1


def test_other_link_payloads_are_skipped_and_other_formats_refused():
    arp = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\xff" * 6, type=dpkt.ethernet.ETH_TYPE_ARP, data=dpkt.arp.ARP())
    out = io.BytesIO()
    dpkt.pcap.Writer(out).writepkt(bytes(arp), ts=1.0)
    assert read_pcap(out.getvalue()) == []
    with pytest.raises(ValueError, match="not a pcap"):
        read_pcap(b"\x0a\x0d\x0d\x0a" + bytes(20))


def test_reads_a_file_path(tmp_path):
    path = tmp_path / "capture.pcap"
    path.write_bytes(keepalive_flow().pcap())
    assert read_pcap(path) == read_pcap(str(path)) == read_pcap(path.read_bytes())


def test_text_and_dicts():
    timeline = build_timeline(read_pcap(keepalive_flow().pcap()))
    lines = timeline.to_text().splitlines()

    assert lines[0] == f"  0.000  {IUT} -> {TESTER}  syn seq=1000 ack=0"
    assert lines[7].startswith(f"  2.020  {IUT} -> {TESTER}  probe seq=1005 ack=")
    assert json.loads(json.dumps(timeline.to_dicts()))[7]["kind"] == "probe"


def test_svg_is_well_formed_and_draws_every_event_between_the_lanes():
    timeline = build_timeline(read_pcap(keepalive_flow().pcap()))
    svg = timeline_svg(timeline, "keepalive <idle=2s> & 3 probes", IUT, TESTER, marks=[(103.5, "blackhole on")])

    assert svg.startswith("<svg")
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert IUT in texts and TESTER in texts
    assert "keepalive <idle=2s> & 3 probes" in texts
    assert "blackhole on (3.500s)" in texts
    arrows = [line for line in root.iter(f"{SVG_NS}line") if "marker-end" in line.attrib]
    assert len(arrows) == len(timeline.events)
    assert any(t.startswith("probe 2.020s") for t in texts)


def test_svg_compresses_long_idle_gaps_and_stays_readable():
    flow = Flow().handshake(0.0)
    flow.send(0.1, IUT, PSH | ACK, b"x").send(0.1002, TESTER, ACK)
    for i in range(60):  # the default Linux idle time, then 60 probes a second apart, each acked
        flow.probe(7200.1 + i, IUT).send(7200.1003 + i, TESTER, ACK)
    timeline = build_timeline(read_pcap(flow.pcap()))
    root = ET.fromstring(timeline_svg(timeline, "long idle", IUT, TESTER))

    assert float(root.attrib["height"]) < 4000
    texts = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert any("7200.0s without events" in t for t in texts)
    assert "7201s" in texts


def test_svg_of_an_empty_timeline():
    root = ET.fromstring(timeline_svg(build_timeline([]), "nothing", IUT, TESTER, marks=[(5.0, "start")]))
    assert "no events between these hosts" in [t.text for t in root.iter(f"{SVG_NS}text")]


def test_data_in_flight_is_told_from_an_idle_connection():
    """The TCP cases start their idle clock only once nothing is unacknowledged (sshd's KEXINIT, say)."""
    flow = Flow(isn=(2**32 - 3, 50000)).handshake(100.0)  # the IUT's sequence numbers wrap mid-flow
    flow.send(100.01, IUT, PSH | ACK, b"hello").send(100.0102, TESTER, ACK)
    flow.send(100.02, TESTER, PSH | ACK, b"greeting")
    in_flight = build_timeline(read_pcap(flow.pcap()))
    assert in_flight.all_acknowledged(IUT, TESTER)
    assert not in_flight.all_acknowledged(TESTER, IUT)
    flow.send(100.03, IUT, PSH | ACK, b"a reply the greeting provoked")
    answered = build_timeline(read_pcap(flow.pcap()))
    assert answered.all_acknowledged(TESTER, IUT)
    assert not answered.all_acknowledged(IUT, TESTER)
    flow.send(100.05, TESTER, ACK)
    assert build_timeline(read_pcap(flow.pcap())).all_acknowledged(IUT, TESTER)
