"""The cost of polling a wire view in clear while a peer floods it (a benchmark: it prints, it asserts nothing).

Run from the repository root (no Docker needed: the capture is made up)::

    python -m benchmarks.views            # 500 heartbeats and their answers over one TLS connection
    python -m benchmarks.views --quick    # 200

A CoAP-over-TLS or DOTS-over-TLS case polls its view (the capture rebuilt in clear, then cut into CoAP
messages) every few tens of milliseconds while it waits for an answer. The figure replays a capture of a
flood (the tester's heartbeats, then the IUT's answers, one TLS record each) in steps of 10 segments and
polls after every step, the way a case sees it grow:

1. rebuild: the whole capture read again at each poll (tls_records, plaintext_segments, coap_tcp_messages),
   as the TLS views did before ClearStreams;
2. kept up to date: ClearStreams and CoapTcpReader take only what each step added.

Printed: the time of all polls, of the last poll, and the ratio. Target: the last poll of the kept view takes
under 5 ms (a poll that costs more than its own interval starves the tester's reading threads of the GIL).
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import dpkt

from benchmarks.common import header, say, verdict
from fixtures.coaptcp import CoapTcpReader, coap_tcp_messages
from fixtures.coaptls import ClearStreams, plaintext_segments
from fixtures.coapwire import CHANGED, PUT, encode_tcp
from fixtures.timeline import Segment, conn_key

TESTER, IUT = ("10.250.0.1", 40000), ("10.250.0.2", 4646)
STEP = 10
TARGET_MS = 5.0


@dataclass
class Logged:
    direction: str
    content_type: int
    body: bytes


def flood(count: int) -> tuple[list[Segment], list[Logged]]:
    """A TLS connection's SYNs, then ``count`` heartbeats of the tester's and ``count`` 2.04 answers, one record
    (ciphertext as long as the plaintext plus a GCM record's 24 octets) per segment, and the tester's log."""
    segments, log, t = [], [], 100.0
    for src, dst, flags in ((TESTER, IUT, dpkt.tcp.TH_SYN), (IUT, TESTER, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)):
        segments.append(Segment(t, *src, *dst, 0, 0, flags, 0, b"", 65535, "tcp"))
    seq = {TESTER: 1, IUT: 1}
    beat = encode_tcp(PUT, token=b"\x00\x01\x02\x03", payload=b"\xa1\x18\x31\xa1\x18\x33\xf5")
    answer = encode_tcp(CHANGED, token=b"\x00\x01\x02\x03")
    for src, dst, plain, direction in [(TESTER, IUT, beat, "out")] * count + [(IUT, TESTER, answer, "in")] * count:
        t += 0.001
        body = bytes([23, 3, 3]) + (len(plain) + 24).to_bytes(2, "big") + os.urandom(len(plain) + 24)
        segments.append(Segment(t, *src, *dst, seq[src], 0, dpkt.tcp.TH_ACK, len(body), body, 65535, "tcp"))
        seq[src] += len(body)
        log.append(Logged(direction, 23, plain))
    return segments, log


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.views", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 heartbeats instead of 500")
    count = 200 if parser.parse_args().quick else 500
    segments, log = flood(count)
    conn = conn_key(TESTER, IUT)
    header(f"Polling the TLS view in clear: {count} heartbeats and {count} answers, a poll every {STEP} segments")
    steps = range(STEP, len(segments) + STEP, STEP)

    def logged(upto: int) -> list[Logged]:  # the tester has read what the capture shows, no more
        return log[:max(0, upto - 2)]

    times = {"rebuild": [], "kept up to date": []}
    for upto in steps:
        start = time.perf_counter()
        coap_tcp_messages(plaintext_segments(segments[:upto], {conn: (TESTER[0], logged(upto))}))
        times["rebuild"].append(time.perf_counter() - start)
    view, reader = ClearStreams(), CoapTcpReader()
    for upto in steps:
        start = time.perf_counter()
        reader.feed(view.update(segments[:upto], {conn: (TESTER[0], logged(upto))}))
        times["kept up to date"].append(time.perf_counter() - start)
    if len(reader.log.messages) != 2 * count:  # the figure is about a view that is complete
        say(f"  the kept view holds {len(reader.log.messages)} messages, not {2 * count}: the figures mean nothing")
    for name, spent in times.items():
        say(f"  {name:<16} {len(spent)} polls: {sum(spent):7.3f} s in all, the last {spent[-1] * 1000:7.2f} ms")
    last = times["kept up to date"][-1] * 1000
    say(f"  all polls {sum(times['rebuild']) / sum(times['kept up to date']):.0f} x faster kept up to date; "
        f"its last poll {last:.2f} ms (target < {TARGET_MS:g} ms): {verdict(last < TARGET_MS)}")
    say(f"  load average {os.getloadavg()[0]:.1f} (the figures grow with it)")


if __name__ == "__main__":
    main()
