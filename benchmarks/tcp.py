"""Speed and timing-accuracy figures for the TCP keep-alive suite (a benchmark: it prints, it asserts nothing).

Run from the repository root::

    python -m benchmarks.tcp            # full figures
    python -m benchmarks.tcp --quick    # fewer repetitions and sessions

Three figures, each printed with its target and whether this run met it:

1. Parallel wall time: ``pytest conformance --iut socat -n 8`` in a subprocess, compared with the
   longest single case from its report.json (target: wall time at most 1.5 x the longest case).
2. Container start to ready: the socat reference peer started as a TCP server N times with the
   harness's own classes; start-to-ready as ``RunningIut.wait_ready()`` measures it, and the whole
   network + sidecar + IUT setup (target: median start-to-ready under 1 s).
3. Probe-interval accuracy under load: several sessions at once, each a socat server with
   idle-time = probe-interval = 1 s whose probe replies are all dropped, so the IUT keeps sending
   unanswered probes; the gaps between consecutive probes on the capture are compared with 1 s
   (target: p99 of |gap - 1 s| at most 20 ms).

Figure 1 is ``benchmarks.common.figure_parallel_wall_time``, shared with ``benchmarks.websocket``, as are
the printing, statistics, cleanup and command-line helpers.

Everything created here carries a run id of its own and is removed before the script exits.
Other Docker workloads running at the same time share the CPU and the engine, which shows in the
figures; the script prints how busy the machine was to help read them.
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import (
    IUT_INDEX,
    TESTER_INDEX,
    SuiteFigure,
    banner,
    clean_up,
    figure_parallel_wall_time,
    header,
    histogram,
    new_run_id,
    parse_args,
    peer_manifest,
    percentile,
    run_sessions,
    say,
    say_images_and_load,
    say_shared_machine,
    session_scope,
    spread,
    summarise_suite,
    summary_row,
    verdict,
)
from fixtures.capture import Capture
from fixtures.faults import NETEM_MISSING, Faults
from fixtures.network import CaseNetwork, RunContext
from fixtures.peers import Manifest, RunningIut
from fixtures.pods import Container, start_tester
from fixtures.protocols.tcp import PROBE_SHAPE
from fixtures.testers.tcp import TcpTester
from fixtures.timeline import Event, Timeline

PEER = "socat"
SUITE = "conformance"

READY_MEDIAN_TARGET_S = 1.0
PROBE_P99_TARGET_MS = 20.0

PROBE_KNOBS = {"idle-time": 1, "probe-interval": 1, "max-probes": 12}
PROBE_INTERVAL_S = float(PROBE_KNOBS["probe-interval"])


# --------------------------------------------------------------------------- figure 2


@dataclass
class StartSample:
    network_s: float
    sidecar_s: float
    iut_start_s: float
    start_to_ready_s: float
    setup_s: float
    teardown_s: float


def _start_once(run: RunContext, manifest: Manifest, n: int) -> StartSample:
    """Network, sidecar, IUT (socat server), wait until it listens; then remove all three."""
    t0 = time.monotonic()
    net = CaseNetwork(run, f"bench-ready-{n}")
    t1 = time.monotonic()
    iut = RunningIut(run, net, manifest, "tcp", "server", None, index=IUT_INDEX)
    t2 = time.monotonic()
    iut.start()
    t3 = time.monotonic()
    ready = iut.wait_ready()
    t4 = time.monotonic()
    for container in (iut.container, iut.sidecar):
        if container is not None:
            container.remove()
    net.remove()
    t5 = time.monotonic()
    return StartSample(t1 - t0, t2 - t1, t3 - t2, ready, t4 - t0, t5 - t4)


@dataclass
class ReadyFigure:
    samples: list[StartSample]
    errors: list[str]

    @property
    def median_ready(self) -> float | None:
        return statistics.median(s.start_to_ready_s for s in self.samples) if self.samples else None


def figure_start_to_ready(repeats: int) -> ReadyFigure:
    """Start the socat server ``repeats`` times (after one uncounted warm-up) and time each phase."""
    header(f"Figure 2 - container start to ready: {PEER} as a TCP server, {repeats} starts")
    manifest = peer_manifest(PEER)
    say_images_and_load(manifest)
    run = RunContext(run_id=new_run_id("ready"))
    samples: list[StartSample] = []
    errors: list[str] = []
    try:
        warm = _start_once(run, manifest, 0)
        say(f"  warm-up start (not counted): start-to-ready {warm.start_to_ready_s:.3f} s, setup {warm.setup_s:.3f} s")
        for n in range(1, repeats + 1):
            try:
                sample = _start_once(run, manifest, n)
            except Exception as err:  # one failed start is a figure too; keep going
                errors.append(f"{type(err).__name__}: {err}")
                say(f"  start {n:2d}: failed: {errors[-1]}")
                run.teardown()
                continue
            samples.append(sample)
            say(
                f"  start {n:2d}: network {sample.network_s:.3f}  sidecar {sample.sidecar_s:.3f}  "
                f"IUT create+start {sample.iut_start_s:.3f}  start-to-ready {sample.start_to_ready_s:.3f}  "
                f"| setup {sample.setup_s:.3f}  teardown {sample.teardown_s:.3f} s"
            )
    finally:
        clean_up(run.run_id)
    say()
    say("  start-to-ready is what RunningIut.wait_ready() returns: from just before the IUT container's")
    say("  start to the first poll that finds the port listening (an `ss` exec in the sidecar, polled with")
    say("  back-off up to 0.2 s, so each figure includes part of one polling step).")
    say("  setup = create network + sidecar (create, start) + IUT (create, start) + wait until ready.")
    if samples:
        say(f"  start-to-ready    {spread([s.start_to_ready_s for s in samples])}")
        say(f"  whole setup       {spread([s.setup_s for s in samples])}")
        say(f"    network         {spread([s.network_s for s in samples])}")
        say(f"    sidecar         {spread([s.sidecar_s for s in samples])}")
        say(f"    IUT start       {spread([s.iut_start_s for s in samples])}")
        say(f"  teardown          {spread([s.teardown_s for s in samples])}")
    figure = ReadyFigure(samples, errors)
    median = figure.median_ready
    met = None if median is None else median < READY_MEDIAN_TARGET_S
    shown = "-" if median is None else f"{median:.3f} s"
    say(f"  median start-to-ready {shown}; target < {READY_MEDIAN_TARGET_S:g} s: {verdict(met)}")
    if errors:
        say(f"  {len(errors)} of {repeats} starts failed (left out of the figures)")
    return figure


# --------------------------------------------------------------------------- figure 3


@dataclass
class Session:
    """One probe session's outcome: the unanswered probes it saw, or why it saw none."""

    index: int
    probes: list[Event] = field(default_factory=list)
    error: str = ""
    netem: str = ""

    @property
    def intervals(self) -> list[float]:
        times = [p.t for p in self.probes]
        return [b - a for a, b in zip(times, times[1:], strict=False)]


def _keepalive_probes(timeline: Timeline, iut: str) -> list[Event]:
    """The IUT's keep-alive probes (a persist-timer probe of a zero window is a different timer)."""
    return [e for e in timeline.probes(src=iut) if e.note != "zero-window"]


def _unanswered(timeline: Timeline, iut: str, tester: str) -> list[Event]:
    """The IUT's probes after the last segment that reached it from the tester."""
    from_tester = [e.t for e in timeline.events if e.src == tester]
    last = from_tester[-1] if from_tester else timeline.start
    return [p for p in _keepalive_probes(timeline, iut) if p.t > last]


def _netem_check(pod: Container) -> str:
    """Whether the kernel offers sch_netem: tried on ``lo`` in the tester pod's sidecar and undone at once.

    The sidecar holds the pod's NET_ADMIN (the tester's box has default capabilities only, so ``tc``
    fails there whatever the kernel offers), and ``lo`` carries none of the session's traffic.
    """
    sidecar = pod.sidecar
    if sidecar is None:
        return "not checked (the tester has no sidecar)"
    added = sidecar.c.exec_run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "0ms"])
    if added.exit_code != 0:
        return "unavailable"
    sidecar.c.exec_run(["tc", "qdisc", "del", "dev", "lo", "root"])
    return "available"


def _probe_session(
    run: RunContext,
    manifest: Manifest,
    session: Session,
    probes_wanted: int,
    start_together: threading.Barrier,
    pcap_dir: Path,
) -> None:
    """Build one world, connect, drop every probe reply, and keep the first ``probes_wanted`` unanswered probes."""
    with session_scope(session, start_together) as scope:
        net = CaseNetwork(run, f"bench-probe-{session.index}")
        tester_address = net.address(TESTER_INDEX)
        iut = RunningIut(run, net, manifest, "tcp", "server", PROBE_KNOBS, tester_address=tester_address, index=IUT_INDEX)
        capture = scope.stop_at_end(Capture(iut.sidecar, pcap_dir / f"session-{session.index}.pcap"))
        pod = start_tester(run, net, TESTER_INDEX)
        tester = scope.stop_at_end(TcpTester(pod))
        faults = Faults(pod, iut.address, iut.sidecar)
        if session.index == 0:
            session.netem = _netem_check(pod)
        iut.start()
        iut.wait_ready()
        # All sessions probe at the same time: that is the load this figure is about.
        scope.wait_for_all()
        conn = tester.connect(iut.address, iut.port)
        tester.send(conn, manifest.role("tcp", "server").option("greeting").encode())
        # The first probe means the connection is idle and every byte acknowledged; only then
        # drop the replies (the drop rule would also eat the ACK of data still in flight).
        first = capture.wait_for(lambda tl: _keepalive_probes(tl, iut.address), PROBE_KNOBS["idle-time"] + 10)
        if not first:
            session.error = "no first keep-alive probe within idle-time + 10 s"
            return
        faults.drop("to-iut", PROBE_SHAPE, name="drop-replies")
        bound = PROBE_KNOBS["idle-time"] + (probes_wanted + 2) * PROBE_INTERVAL_S + 10

        def enough(tl: Timeline) -> list[Event] | None:
            probes = _unanswered(tl, iut.address, tester_address)
            return probes if len(probes) >= probes_wanted else None

        probes = capture.wait_for(enough, bound)
        if probes is None:
            probes = _unanswered(capture.timeline(), iut.address, tester_address)
            session.error = f"only {len(probes)} unanswered probes within {bound:g} s"
        session.probes = probes[:probes_wanted]


@dataclass
class ProbeFigure:
    sessions: list[Session]

    @property
    def errors_ms(self) -> list[float]:
        return [(i - PROBE_INTERVAL_S) * 1000 for s in self.sessions for i in s.intervals]

    @property
    def p99_ms(self) -> float | None:
        errors = [abs(e) for e in self.errors_ms]
        return percentile(errors, 99) if errors else None


def figure_probe_accuracy(sessions: int, probes_wanted: int) -> ProbeFigure:
    """``sessions`` concurrent socat servers probing an unanswering tester; the gaps between probes vs 1 s."""
    header(
        f"Figure 3 - probe-interval accuracy under load: {sessions} concurrent sessions, "
        f"~{probes_wanted} probes each"
    )
    knobs = ", ".join(f"{k}={v}" for k, v in PROBE_KNOBS.items())
    say(f"  {PEER} as TCP server with {knobs}; every probe reply dropped on the tester's side")
    manifest = peer_manifest(PEER)
    say_images_and_load(manifest)
    results = [Session(i) for i in range(sessions)]
    run_sessions("probes", _probe_session, manifest, results, probes_wanted)
    netem = next((s.netem for s in results if s.netem), "not checked (session 0 did not get that far)")
    if netem == "unavailable":
        say(f"  sch_netem: unavailable ({NETEM_MISSING.split(' (')[0]}), so no path latency is involved.")
    else:
        say(f"  sch_netem: {netem}; this figure injects no latency either way.")
    say("  Context: Linux rounds a timer's expiry up to its timer-wheel slot (late by at most 1/8 of the")
    say("  timeout, never early), so some constant lateness is expected even on an idle machine.")
    say()
    for s in results:
        errs = [(i - PROBE_INTERVAL_S) * 1000 for i in s.intervals]
        line = f"  session {s.index}: {len(s.probes):2d} probes, {len(errs):2d} intervals"
        if errs:
            line += f", error ms min {min(errs):+6.1f} mean {statistics.fmean(errs):+6.1f} max {max(errs):+6.1f}"
        if s.error:
            line += f"  [{s.error}]"
        say(line)
    figure = ProbeFigure(results)
    signed = figure.errors_ms
    errors = [abs(e) for e in signed]
    say()
    say(f"  |interval - {PROBE_INTERVAL_S:g} s| in ms over all sessions (percentiles interpolate between ranks;")
    say("  histogram bins include their lower edge and exclude their upper one):")
    if errors:
        say(
            f"    count {len(errors)}  min {min(errors):.1f}  p50 {percentile(errors, 50):.1f}  "
            f"p90 {percentile(errors, 90):.1f}  p99 {percentile(errors, 99):.1f}  max {max(errors):.1f}"
        )
        say(
            f"    signed mean {statistics.fmean(signed):+.1f} ms (positive = late); "
            f"{sum(1 for e in signed if e < 0)} of {len(signed)} intervals short of {PROBE_INTERVAL_S:g} s, "
            f"shortest {min(signed):+.1f} ms"
        )
        for line in histogram(errors, marker=PROBE_P99_TARGET_MS):
            say("  " + line)
        # The constant part of the lateness is the IUT kernel's timer wheel (real IUT behaviour);
        # the spread around it is what the capture and the parallel load add to the measurement.
        centre = statistics.median(signed)
        around = [abs(e - centre) for e in signed]
        say(
            f"    spread around the median interval ({centre:+.1f} ms): p50 {percentile(around, 50):.1f}  "
            f"p99 {percentile(around, 99):.1f}  max {max(around):.1f} ms (measurement jitter under load)"
        )
    p99 = figure.p99_ms
    shown = "-" if p99 is None else f"{p99:.1f} ms"
    met = None if p99 is None else p99 <= PROBE_P99_TARGET_MS
    say(f"  p99 error {shown}; target <= {PROBE_P99_TARGET_MS:g} ms: {verdict(met)}")
    return figure


# --------------------------------------------------------------------------- main


def summary(suite: SuiteFigure | None, ready: ReadyFigure | None, probes: ProbeFigure | None, ran: set[int],
            workers: int) -> None:
    header("Summary")

    def row(name: str, value: str, target: str, met: bool | None) -> None:
        summary_row(name, value, target, met, name_width=32)

    if 1 in ran:
        summarise_suite(suite, workers, name_width=32)
    if 2 in ran:
        median = ready.median_ready if ready else None
        value = "-" if median is None else f"{median:.3f} s"
        row("2 median start-to-ready", value, f"< {READY_MEDIAN_TARGET_S:g} s",
            None if median is None else median < READY_MEDIAN_TARGET_S)
        if ready and ready.samples:
            say(f"    whole setup (network + sidecar + IUT + ready) median "
                f"{statistics.median(s.setup_s for s in ready.samples):.3f} s over {len(ready.samples)} starts")
    if 3 in ran:
        p99 = probes.p99_ms if probes else None
        value = "-" if p99 is None else f"{p99:.1f} ms"
        row("3 p99 |probe interval - 1 s|", value, f"<= {PROBE_P99_TARGET_MS:g} ms",
            None if p99 is None else p99 <= PROBE_P99_TARGET_MS)
        if probes and probes.errors_ms:
            say(f"    {len(probes.errors_ms)} intervals, signed mean {statistics.fmean(probes.errors_ms):+.1f} ms; "
                f"{sum(1 for s in probes.sessions if s.error)} of {len(probes.sessions)} sessions reported a problem")
    netem = next((s.netem for s in probes.sessions if s.netem), "") if probes else ""
    say(f"  sch_netem on the engine: {netem or 'not checked in this run (figure 3 checks it)'}; "
        "no figure injects path latency.")
    say_shared_machine()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(
        "python -m benchmarks.tcp", __doc__.splitlines()[0], (1, 2, 3),
        quick_help="4 starts, 4 sessions of ~5 probes (figure 1 is unchanged)",
        workers_help="xdist workers for figure 1 (default 8; one per case lets every wait overlap)",
        argv=argv,
    )
    ran = set(args.only or (1, 2, 3))
    repeats, sessions, probes_wanted = (4, 4, 5) if args.quick else (10, 8, 10)
    banner("TCP", args.quick)
    say("No figure injects path latency: tc/netem (sch_netem) is unavailable on this machine's kernel,")
    say("so every timing below is timer, scheduling and capture behaviour only (figure 3 re-checks netem).")
    suite = figure_parallel_wall_time(SUITE, PEER, "suite", args.workers, keep_reports=args.keep_reports) if 1 in ran else None
    ready = figure_start_to_ready(repeats) if 2 in ran else None
    probes = figure_probe_accuracy(sessions, probes_wanted) if 3 in ran else None
    summary(suite, ready, probes, ran, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
