"""TLS heartbeat figures (a benchmark: it prints, it asserts nothing).

Run from the repository root::

    python -m benchmarks.tls             # all three figures, 12 TLS and 6 DTLS retransmission sessions
    python -m benchmarks.tls --quick     # 4 and 2 sessions
    python -m benchmarks.tls --only 3    # the DTLS retransmission figure alone

1. Wall time of ``pytest conformance/tls --iut gnutls -n 8`` against its longest single case (from the
   run's report.json).
2. How exactly the capture times HeartbeatRequest retransmissions, against the schedule the peer was
   configured with. gnutls-serv pings with gnutls_heartbeat_ping(..., 5 tries, GNUTLS_HEARTBEAT_WAIT):
   it retransmits an unanswered Request 1 s and then 2 s after the one before (GnuTLS's DTLS-style
   doubling, applied over TLS too). The tester triggers a Request and answers none; each TLS 1.2 heartbeat
   record (content type 24, in clear in the record header) is stamped by the capture in the IUT's
   namespace. The error of each interval against 1 s / 2 s is printed, so a case's tolerance can be
   judged against what the clock really does.
3. The same over DTLS 1.2 (``gnutls-serv --udp``, the DTLS tester): an unanswered Request is retransmitted
   on the DTLS timer, 1, 2, 4 and 8 s after the transmission before; each retransmission is a heartbeat
   record (type 24, its header in clear) in a UDP datagram, stamped by the capture. The error of each
   interval against its scheduled value is printed.

Everything created carries a run id of its own (``bench-tls-...``) and is removed before the script exits,
on Ctrl-C as well.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks.common import (
    IUT_INDEX,
    TESTER_INDEX,
    banner,
    clean_up,
    figure_parallel_wall_time,
    header,
    new_run_id,
    parse_args,
    peer_manifest,
    say,
    say_images_and_load,
    say_shared_machine,
    spread,
    summarise_suite,
)
from fixtures.capture import Capture
from fixtures.credentials import Credentials
from fixtures.network import CaseNetwork, RunContext
from fixtures.peers import RunningIut
from fixtures.pods import start_tester
from fixtures.testers.dtls import DtlsTester
from fixtures.testers.relay import DatagramRelay, StreamRelay
from fixtures.testers.tcp import TcpTester
from fixtures.testers.tls import APPLICATION_DATA, REQUEST, TlsTester
from fixtures.tlswire import tls_records
from fixtures.waiting import TimedOut, wait_until

PEER = "gnutls"
SCHEDULE = (1.0, 2.0)  # gnutls-serv's gaps between a Request and its retransmissions, seconds
DTLS_SCHEDULE = (1.0, 2.0, 4.0, 8.0)  # the same over DTLS: five transmissions in all


def figure_retransmissions(sessions: int, dtls: bool = False) -> list[float]:
    """Capture-timed gaps between gnutls-serv's retransmitted Requests, minus the scheduled ones (seconds)."""
    protocol, schedule = ("dtls", DTLS_SCHEDULE) if dtls else ("tls", SCHEDULE)
    header(f"Figure {3 if dtls else 2} - HeartbeatRequest retransmissions timed by the capture: {sessions} sessions, "
           f"{PEER}, {'DTLS' if dtls else 'TLS'} 1.2")
    manifest = peer_manifest(PEER)
    say_images_and_load(manifest)
    run = RunContext(run_id=new_run_id(protocol))
    scratch = Path(tempfile.mkdtemp(prefix=f"aliveness-bench-{protocol}-"))
    errors: list[float] = []
    try:
        net = CaseNetwork(run, f"bench-{protocol}")
        iut = RunningIut(run, net, manifest, protocol, "server", None, tester_address=net.address(TESTER_INDEX),
                         index=IUT_INDEX, credentials=Credentials.create(scratch / "credentials"))
        capture = Capture(iut.sidecar, scratch / "capture.pcap", whole_payloads=True)
        agent = TcpTester(start_tester(run, net, TESTER_INDEX))
        iut.start()
        iut.wait_ready()
        trigger = manifest.role(protocol, "server").option("request-trigger").encode()
        def open_session():
            """A completed handshake, or None: gnutls-serv serves one connection at a time, and after an
            unanswered ping it is busy until its own timeout ends (a few seconds)."""
            if dtls:
                conn = agent.udp_open(peer=(iut.address, iut.port), record=1 << 40)
                relay = DatagramRelay(agent, conn)
                tls = DtlsTester(relay.socket, timeout=3)
                ok = tls.handshake().ok
            else:
                conn = agent.connect(iut.address, iut.port)
                relay = StreamRelay(agent, conn)
                tls = TlsTester(relay.socket, timeout=3)
                ok = tls.handshake("1.2").ok
            if ok:
                return tls, relay, conn
            tls.close()
            relay.close()
            agent.close(conn)
            return None

        for n in range(sessions):
            try:
                tls, relay, conn = wait_until(open_session, 30, poll_max=1.0, what="gnutls-serv to take a new connection")
            except TimedOut:
                say(f"  session {n + 1}: no handshake within 30 s, skipped")
                continue
            tls.start_reading()
            sent = tls.send(APPLICATION_DATA, trigger)
            def all_sent(tls=tls, sent=sent) -> bool:  # the first Request and every retransmission
                return len(tls.heartbeats(REQUEST, sent.t)) >= 1 + len(schedule)

            try:
                wait_until(all_sent, sum(schedule) + 3, what="the retransmitted Requests")
            except TimedOut:
                pass
            tls.close()
            relay.close()
            agent.close(conn)  # the FIN (DTLS: the close_notify) frees gnutls-serv, which serves one at a time
            wire = [r.t for r in tls_records(capture.segments()).records
                    if r.src == iut.address and r.content_type == 24 and r.t > sent.t - 0.01]
            gaps = [b - a for a, b in zip(wire, wire[1:], strict=False)][:len(schedule)]
            errors += [g - want for g, want in zip(gaps, schedule, strict=False)]
            say(f"  session {n + 1}: gaps " + ", ".join(f"{g:.4f}" for g in gaps) + " s")
        capture.stop()
        agent.stop()
    finally:
        clean_up(run.run_id)
    say()
    if errors:
        say(f"  interval error vs {', '.join(f'{s:g}' for s in schedule)} s: {spread(errors, 1000, 'ms', 1)}")
    return errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args("python -m benchmarks.tls", __doc__.splitlines()[0], (1, 2, 3),
                      "4 TLS and 2 DTLS retransmission sessions instead of 12 and 6", "xdist workers for figure 1", argv)
    banner("TLS", args.quick)
    suite = None
    errors: list[float] = []
    dtls_errors: list[float] = []
    try:
        if not args.only or 1 in args.only:
            suite = figure_parallel_wall_time("conformance/tls", PEER, "tls", args.workers, args.keep_reports)
        if not args.only or 2 in args.only:
            errors = figure_retransmissions(4 if args.quick else 12)
        if not args.only or 3 in args.only:
            dtls_errors = figure_retransmissions(2 if args.quick else 6, dtls=True)
    except KeyboardInterrupt:
        say()
        say("interrupted: what the figures had created was removed")
        return 130
    header("Summary")
    if not args.only or 1 in args.only:
        summarise_suite(suite, args.workers, 34)
    if errors:
        worst = max(abs(e) for e in errors)
        say(f"  2 retransmission interval error    worst {worst * 1000:.1f} ms over {len(errors)} intervals "
            f"(the one-in-flight case allows 50 ms below 1 s)")
    if dtls_errors:
        worst = max(abs(e) for e in dtls_errors)
        say(f"  3 DTLS retransmission interval error worst {worst * 1000:.1f} ms over {len(dtls_errors)} intervals "
            f"(the DTLS retransmission case allows 50 ms below 1 s)")
    say_shared_machine()
    return 0


if __name__ == "__main__":
    sys.exit(main())
