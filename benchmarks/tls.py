"""TLS heartbeat figures (a benchmark: it prints, it asserts nothing).

Run from the repository root::

    python -m benchmarks.tls             # both figures, 12 retransmission sessions
    python -m benchmarks.tls --quick     # 4 sessions
    python -m benchmarks.tls --only 2    # the retransmission figure alone

1. Wall time of ``pytest conformance/tls --iut gnutls -n 8`` against its longest single case (from the
   run's report.json).
2. How exactly the capture times HeartbeatRequest retransmissions, against the schedule the peer was
   configured with. gnutls-serv pings with gnutls_heartbeat_ping(..., 5 tries, GNUTLS_HEARTBEAT_WAIT):
   it retransmits an unanswered Request 1 s and then 2 s after the one before (GnuTLS's DTLS-style
   doubling, applied over TLS too). The tester triggers a Request and answers none; each TLS 1.2 heartbeat
   record (content type 24, in clear in the record header) is stamped by the capture in the IUT's
   namespace. The error of each interval against 1 s / 2 s is printed, so a case's tolerance can be
   judged against what the clock really does. DTLS is not measured yet: the suite has no DTLS tester so far
   (its retransmissions will be timed the same way, from records of type 24 in UDP datagrams).

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
from fixtures.testers.relay import StreamRelay
from fixtures.testers.tcp import TcpTester
from fixtures.testers.tls import APPLICATION_DATA, REQUEST, TlsTester
from fixtures.tlswire import tls_records
from fixtures.waiting import TimedOut, wait_until

PEER = "gnutls"
SCHEDULE = (1.0, 2.0)  # gnutls-serv's gaps between a Request and its retransmissions, seconds


def figure_retransmissions(sessions: int) -> list[float]:
    """Capture-timed gaps between gnutls-serv's retransmitted Requests, minus the scheduled ones (seconds)."""
    header(f"Figure 2 - HeartbeatRequest retransmissions timed by the capture: {sessions} sessions, {PEER}, TLS 1.2")
    manifest = peer_manifest(PEER)
    say_images_and_load(manifest)
    run = RunContext(run_id=new_run_id("tls"))
    scratch = Path(tempfile.mkdtemp(prefix="aliveness-bench-tls-"))
    errors: list[float] = []
    try:
        net = CaseNetwork(run, "bench-tls")
        iut = RunningIut(run, net, manifest, "tls", "server", None, tester_address=net.address(TESTER_INDEX),
                         index=IUT_INDEX, credentials=Credentials.create(scratch / "credentials"))
        capture = Capture(iut.sidecar, scratch / "capture.pcap", whole_payloads=True)
        agent = TcpTester(start_tester(run, net, TESTER_INDEX))
        iut.start()
        iut.wait_ready()
        trigger = manifest.role("tls", "server").option("request-trigger").encode()
        def open_session():
            """A completed handshake, or None: gnutls-serv serves one connection at a time, and after an
            unanswered ping it is busy until its own timeout ends (a few seconds)."""
            conn = agent.connect(iut.address, iut.port)
            relay = StreamRelay(agent, conn)
            tls = TlsTester(relay.socket, timeout=3)
            if tls.handshake("1.2").ok:
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
            def all_sent(tls=tls, sent=sent) -> bool:  # the first Request and both retransmissions
                return len(tls.heartbeats(REQUEST, sent.t)) >= 1 + len(SCHEDULE)

            try:
                wait_until(all_sent, sum(SCHEDULE) + 3, what="the retransmitted Requests")
            except TimedOut:
                pass
            tls.close()
            relay.close()
            agent.close(conn)  # the FIN frees gnutls-serv, which serves one connection at a time
            wire = [r.t for r in tls_records(capture.segments()).records
                    if r.src == iut.address and r.content_type == 24 and r.t > sent.t - 0.01]
            gaps = [b - a for a, b in zip(wire, wire[1:], strict=False)][:len(SCHEDULE)]
            errors += [g - want for g, want in zip(gaps, SCHEDULE, strict=False)]
            say(f"  session {n + 1}: gaps " + ", ".join(f"{g:.4f}" for g in gaps) + " s")
        capture.stop()
        agent.stop()
    finally:
        clean_up(run.run_id)
    say()
    if errors:
        say(f"  interval error vs {', '.join(f'{s:g}' for s in SCHEDULE)} s: {spread(errors, 1000, 'ms', 1)}")
    return errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args("python -m benchmarks.tls", __doc__.splitlines()[0], (1, 2),
                      "4 retransmission sessions instead of 12", "xdist workers for figure 1", argv)
    banner("TLS", args.quick)
    suite = None
    errors: list[float] = []
    try:
        if not args.only or 1 in args.only:
            suite = figure_parallel_wall_time("conformance/tls", PEER, "tls", args.workers, args.keep_reports)
        if not args.only or 2 in args.only:
            errors = figure_retransmissions(4 if args.quick else 12)
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
    say_shared_machine()
    return 0


if __name__ == "__main__":
    sys.exit(main())
