"""Speed and timing-accuracy figures for the WebSocket keepalive cases (a benchmark: it prints, it asserts nothing).

Run from the repository root::

    python -m benchmarks.websocket            # full figures
    python -m benchmarks.websocket --quick    # fewer sessions and Pings (figure 1 is unchanged)

Two figures, each printed with its target and whether this run met it:

1. Parallel wall time: ``pytest conformance/websocket --iut websockets -n 8`` in a subprocess,
   compared with the longest single case from its report.json (target: wall time at most 1.5 x the
   longest case).
2. Ping-interval accuracy under load: several sessions at once, each the ``websockets`` reference
   peer as a server with ping-interval = 1 s and ping-timeout = 5 s, dialled by the suite's own
   WebSocket tester, which answers every Ping at once. The gaps between consecutive Pings of the IUT
   on the capture in its namespace are compared with 1 s (target: p99 of |gap - 1 s| at most 20 ms).
   The same Pings as the tester's agent received them give the measurement's own error.

Figure 1 is ``benchmarks.common.figure_parallel_wall_time``, shared with ``benchmarks.tcp``, as are the
printing, statistics, cleanup and command-line helpers.

Everything created here carries a run id of its own and is removed before the script exits, also
when it is interrupted. Other Docker workloads running at the same time share the CPU and the
engine, which shows in the figures; the script prints how busy the machine was to help read them.
"""
from __future__ import annotations

import statistics
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import (
    IUT_INDEX,
    TESTER_INDEX,
    SuiteFigure,
    banner,
    figure_parallel_wall_time,
    header,
    histogram,
    ms_spread,
    parse_args,
    peer_manifest,
    percentile,
    run_sessions,
    say,
    say_images_and_load,
    say_shared_machine,
    session_scope,
    summarise_suite,
    summary_row,
    verdict,
)
from fixtures.capture import Capture
from fixtures.network import CaseNetwork, RunContext
from fixtures.peers import Manifest, RunningIut
from fixtures.pods import start_tester
from fixtures.testers import wsframes
from fixtures.testers.tcp import TcpTester
from fixtures.testers.websocket import WsPeer
from fixtures.waiting import TimedOut, wait_until
from fixtures.wswire import WireFrame, WireLog, ws_frames

PEER = "websockets"
SUITE = "conformance/websocket"

PING_P99_TARGET_MS = 20.0

PING_KNOBS = {"ping-interval": 1, "ping-timeout": 5}
PING_INTERVAL_S = float(PING_KNOBS["ping-interval"])


# --------------------------------------------------------------------------- figure 2


@dataclass
class Heard:
    """One IUT Ping as the tester's agent received it: agent CLOCK_MONOTONIC and the agent's wall clock."""

    t: float
    wall: float | None


@dataclass
class PingSession:
    """One session's outcome: the IUT's Pings on the capture (and as the tester heard them), or why not."""

    index: int
    pings: list[WireFrame] = field(default_factory=list)  # the IUT's Pings on the capture, in order
    pongs: dict[bytes, float] = field(default_factory=dict)  # capture time of the tester's Pong, by payload
    heard: dict[bytes, Heard] = field(default_factory=dict)  # the same Pings at the tester's agent, by payload
    error: str = ""

    @property
    def gaps(self) -> list[float]:
        return [b.t - a.t for a, b in zip(self.pings, self.pings[1:], strict=False)]

    @property
    def errors_ms(self) -> list[float]:
        """Signed gap - interval, ms (positive: the Ping came late)."""
        return [(g - PING_INTERVAL_S) * 1000 for g in self.gaps]

    @property
    def one_way_ms(self) -> list[float]:
        """Agent receive wall time - capture time of the same Ping, ms (one shared kernel CLOCK_REALTIME)."""
        return [
            (h.wall - p.t) * 1000 for p in self.pings if (h := self.heard.get(p.payload)) is not None and h.wall is not None
        ]

    @property
    def gap_vs_gap_ms(self) -> list[float]:
        """Agent gap - capture gap for the same consecutive Pings, ms (clock offsets cancel)."""
        out = []
        for a, b in zip(self.pings, self.pings[1:], strict=False):
            ha, hb = self.heard.get(a.payload), self.heard.get(b.payload)
            if ha is not None and hb is not None:
                out.append(((hb.t - ha.t) - (b.t - a.t)) * 1000)
        return out

    @property
    def pong_rtt_ms(self) -> list[float]:
        """Capture time of the tester's Pong - capture time of the Ping it answers, ms (both at the IUT's eth0)."""
        return [(self.pongs[p.payload] - p.t) * 1000 for p in self.pings[:-1] if p.payload in self.pongs]

    @property
    def timer_late_ms(self) -> list[float]:
        """Next Ping - Pong arrival - interval, ms: the library sleeps the interval once the Pong is in."""
        out = []
        for a, b in zip(self.pings, self.pings[1:], strict=False):
            if a.payload in self.pongs:
                out.append((b.t - self.pongs[a.payload] - PING_INTERVAL_S) * 1000)
        return out


def _iut_pings(wire: WireLog, iut: str) -> list[WireFrame]:
    return wire.sent_by(iut, wsframes.PING)


def _ping_session(
    run: RunContext,
    manifest: Manifest,
    session: PingSession,
    pings_wanted: int,
    start_together: threading.Barrier,
    pcap_dir: Path,
) -> None:
    """Build one world, open a WebSocket to the websockets server, and keep its first ``pings_wanted`` Pings."""
    with session_scope(session, start_together) as scope:
        net = CaseNetwork(run, f"bench-ws-ping-{session.index}")
        tester_address = net.address(TESTER_INDEX)
        iut = RunningIut(run, net, manifest, "websocket", "server", PING_KNOBS,
                         tester_address=tester_address, index=IUT_INDEX)
        capture = scope.stop_at_end(Capture(iut.sidecar, pcap_dir / f"session-{session.index}.pcap", whole_payloads=True))
        tcp = scope.stop_at_end(TcpTester(start_tester(run, net, TESTER_INDEX)))
        iut.start()
        iut.wait_ready()
        # All sessions ping at the same time: that is the load this figure is about.
        scope.wait_for_all()
        conn = tcp.connect(iut.address, iut.port)
        peer = WsPeer(tcp, conn, "client")  # answers every Ping at once, from the agent's reader thread
        peer.open(iut.address, iut.spec.option("path"))
        bound = PING_INTERVAL_S * (pings_wanted + 2) + 15

        def heard_pings() -> int:
            return sum(1 for r in list(peer.frames) if r.opcode == wsframes.PING)

        def enough() -> WireLog | None:
            if peer.ended():
                raise ConnectionError(f"the connection ended at the tester ({peer.ended().ev})")
            wire = ws_frames(capture.segments())
            if len(_iut_pings(wire, iut.address)) >= pings_wanted and heard_pings() >= pings_wanted:
                return wire
            return None

        try:
            wire = wait_until(enough, bound, poll_max=0.2)
        except (TimedOut, ConnectionError) as err:
            wire = ws_frames(capture.segments())
            session.error = (f"only {len(_iut_pings(wire, iut.address))} Pings on the capture, {heard_pings()} at the "
                             f"tester: {err}")
        session.pings = _iut_pings(wire, iut.address)[:pings_wanted]
        session.pongs = {}
        for pong in wire.sent_by(tester_address, wsframes.PONG):
            session.pongs.setdefault(pong.payload, pong.t)
        walls = {e.t: e.data.get("wall") for e in list(tcp.events) if e.conn == conn and e.ev == "data"}
        for r in list(peer.frames):
            if r.opcode == wsframes.PING and r.payload not in session.heard:
                session.heard[r.payload] = Heard(r.t, walls.get(r.t))
        if wire.problems:
            session.error = "; ".join(filter(None, [session.error, *wire.problems]))


@dataclass
class PingFigure:
    sessions: list[PingSession]

    def pooled(self, name: str) -> list[float]:
        return [v for s in self.sessions for v in getattr(s, name)]

    @property
    def p99_ms(self) -> float | None:
        errors = [abs(e) for e in self.pooled("errors_ms")]
        return percentile(errors, 99) if errors else None


def figure_ping_accuracy(sessions: int, pings_wanted: int) -> PingFigure:
    """``sessions`` concurrent websockets servers pinging an answering tester; the gaps between Pings vs 1 s."""
    header(f"Figure 2 - Ping-interval accuracy under load: {sessions} concurrent sessions, ~{pings_wanted} Pings each")
    knobs = ", ".join(f"{k}={v}" for k, v in PING_KNOBS.items())
    say(f"  {PEER} as WebSocket server with {knobs}; the tester answers every Ping at once")
    manifest = peer_manifest(PEER)
    say_images_and_load(manifest)
    results = [PingSession(i) for i in range(sessions)]
    run_sessions("ws-pings", _ping_session, manifest, results, pings_wanted, thread_prefix="ws-session")
    say("  Context: websockets 10.4 sleeps ping-interval, sends a Ping, then waits for its Pong before it sleeps")
    say("  again, so each gap is interval + Pong round trip + asyncio timer lateness: late, never early.")
    say()
    for s in results:
        errs = s.errors_ms
        line = f"  session {s.index}: {len(s.pings):2d} Pings, {len(errs):2d} gaps"
        if errs:
            line += f", |error| ms {ms_spread([abs(e) for e in errs])}, mean signed {statistics.fmean(errs):+6.1f}"
        if s.error:
            line += f"  [{s.error}]"
        say(line)
    figure = PingFigure(results)
    signed = figure.pooled("errors_ms")
    errors = [abs(e) for e in signed]
    say()
    say(f"  |gap - {PING_INTERVAL_S:g} s| in ms over all sessions, from the capture in each IUT's namespace")
    say("  (percentiles interpolate between ranks; histogram bins include their lower edge, exclude the upper):")
    if errors:
        say(f"    count {len(errors)}  min {min(errors):.1f}  {ms_spread(errors)}")
        say(
            f"    mean signed error {statistics.fmean(signed):+.1f} ms (positive = late); "
            f"{sum(1 for e in signed if e < 0)} of {len(signed)} gaps short of {PING_INTERVAL_S:g} s, "
            f"shortest {min(signed):+.1f} ms"
        )
        for line in histogram(errors, marker=PING_P99_TARGET_MS):
            say("  " + line)
        rtt, late = figure.pooled("pong_rtt_ms"), figure.pooled("timer_late_ms")
        say("  where the lateness comes from (all on the same capture):")
        say(f"    {'Pong round trip (Ping out -> Pong in)':<46}{ms_spread(rtt)}")
        say(f"    {'timer lateness (Pong in -> next Ping - 1 s)':<46}{ms_spread(late)}")
        say("    The round trip is partly the tester's: its Pong goes agent -> harness (over the exec stream) -> agent;")
        say("    the timer lateness is the IUT's own (its asyncio loop, from the Pong's arrival at its eth0).")
    say("  the measurement's own error: the same Pings as the tester's agent received them")
    one_way, gvg = figure.pooled("one_way_ms"), figure.pooled("gap_vs_gap_ms")
    if one_way:
        say(f"    {f'agent receive - capture ({len(one_way)} Pings)':<46}{ms_spread(one_way)}"
            f"  (min {min(one_way):+.1f})")
    else:
        say("    agent receive - capture: no Ping matched (no 'wall' in the agent's data events?)")
    if gvg:
        absg = [abs(v) for v in gvg]
        say(f"    {f'|agent gap - capture gap| ({len(gvg)} gaps)':<46}{ms_spread(absg)}"
            f"  (mean signed {statistics.fmean(gvg):+.2f})")
    say("    Both clocks are one kernel's (containers share it), so the first line is veth transit plus the agent's")
    say("    wake-up; the second is how far a gap read at the tester would stray from the capture's.")
    p99 = figure.p99_ms
    shown = "-" if p99 is None else f"{p99:.1f} ms"
    met = None if p99 is None else p99 <= PING_P99_TARGET_MS
    say(f"  p99 |gap - interval| {shown}; target <= {PING_P99_TARGET_MS:g} ms: {verdict(met)}")
    return figure


# --------------------------------------------------------------------------- main


def summary(suite: SuiteFigure | None, pings: PingFigure | None, ran: set[int], workers: int) -> None:
    header("Summary")
    if 1 in ran:
        summarise_suite(suite, workers, name_width=34)
    if 2 in ran:
        p99 = pings.p99_ms if pings else None
        value = "-" if p99 is None else f"{p99:.1f} ms"
        summary_row("2 p99 |Ping gap - 1 s|", value, f"<= {PING_P99_TARGET_MS:g} ms",
                    None if p99 is None else p99 <= PING_P99_TARGET_MS, name_width=34)
        signed = pings.pooled("errors_ms") if pings else []
        if signed:
            say(f"    {len(signed)} gaps, mean signed {statistics.fmean(signed):+.1f} ms; "
                f"{sum(1 for s in pings.sessions if s.error)} of {len(pings.sessions)} sessions reported a problem")
    say_shared_machine()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(
        "python -m benchmarks.websocket", __doc__.splitlines()[0], (1, 2),
        quick_help="4 sessions of ~6 Pings (figure 1 is unchanged)",
        workers_help="xdist workers for figure 1 (default 8)",
        argv=argv,
    )
    ran = set(args.only or (1, 2))
    sessions, pings_wanted = (4, 6) if args.quick else (8, 10)
    banner("WebSocket", args.quick)
    say("No figure injects path latency: every timing below is timer, scheduling and capture behaviour only.")
    suite = pings = None
    try:
        if 1 in ran:
            suite = figure_parallel_wall_time(SUITE, PEER, "ws-suite", args.workers, keep_reports=args.keep_reports)
        if 2 in ran:
            pings = figure_ping_accuracy(sessions, pings_wanted)
    except KeyboardInterrupt:
        say()
        say("interrupted: what the figure had created was removed (see the cleanup line above)")
        return 130
    summary(suite, pings, ran, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
