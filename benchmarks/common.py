"""What the benchmark scripts (``benchmarks.tcp``, ``benchmarks.websocket``) share.

Printing (``say``, ``header``, ``verdict``, ``histogram``), sample statistics (``percentile``,
``spread``, ``ms_spread``), run ids and cleanup (``new_run_id``, ``leftovers``, ``clean_up``), the
machine's load (``engine_load``), the parallel wall-time figure (``figure_parallel_wall_time``: a
pytest target run in a subprocess, read back from its report.json), the concurrent-session runner
the timing figures use (``run_sessions``, ``session_scope``), and the command-line and summary scaffolding.
Nothing here asserts; the scripts print figures and whether each met its target.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fixtures import engine
from fixtures.network import RunContext
from fixtures.peers import Manifest, load_manifest, resolve_iut
from fixtures.pods import toolbox_image

IUT_INDEX, TESTER_INDEX = 2, 3  # host numbers on a CaseNetwork

WALL_RATIO_TARGET = 1.5  # figure 1: wall time at most this many times the longest case

SUITE_TIMEOUT_S = 3600
INTERRUPT_GRACE_S = 30  # how long an interrupted pytest gets to tear its cases down before it is killed
SESSIONS_TIMEOUT_S = 600  # how long the concurrent sessions of a timing figure may take in all
BARRIER_TIMEOUT_S = 180  # how long a session waits at the start barrier for the others

WIDTH = 78


# --------------------------------------------------------------------------- printing


def say(text: str = "") -> None:
    """Print one line at once (figures take minutes; show progress as it happens)."""
    print(text, flush=True)


def header(title: str) -> None:
    say()
    say("=" * WIDTH)
    say(title)
    say("=" * WIDTH)


def verdict(met: bool | None) -> str:
    """How a target line ends: met, NOT met, or no figure to judge."""
    if met is None:
        return "n/a (no measurement)"
    return "met" if met else "NOT met"


def histogram(values: Sequence[float], marker: float | None = None, bar_width: int = 40) -> list[str]:
    """Text histogram of non-negative ``values``; a line marks ``marker`` when it falls on a bin edge."""
    if not values:
        return ["  (no values)"]
    top = max(values)
    width = next((w for w in (1, 2, 5, 10, 20, 50, 100, 200, 500) if top / w < 16), 1000)
    bins = [0] * (int(top // width) + 1)
    for v in values:
        bins[int(v // width)] += 1
    most = max(bins)
    lines = []
    for i, count in enumerate(bins):
        low, high = i * width, (i + 1) * width
        if marker is not None and low == marker:
            lines.append(f"  {'- target ' + format(marker, 'g') + ' ms ':-<{bar_width + 26}}")
        bar = "#" * max(1 if count else 0, round(count / most * bar_width))
        lines.append(f"  {low:5g} - {high:<5g} ms | {bar:<{bar_width}} {count}")
    return lines


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float], scale: float = 1.0, unit: str = "s", digits: int = 3) -> str:
    """'median x / p90 y / max z' for a sample, values multiplied by ``scale``."""
    if not values:
        return "no samples"
    parts = [
        ("median", statistics.median(values)),
        ("p90", percentile(values, 90)),
        ("max", max(values)),
    ]
    return " / ".join(f"{name} {v * scale:.{digits}f} {unit}" for name, v in parts)


def ms_spread(values: Sequence[float]) -> str:
    """'median / p90 / p99 / max' of values already in ms."""
    if not values:
        return "no samples"
    return (f"median {statistics.median(values):6.1f}  p90 {percentile(values, 90):6.1f}  "
            f"p99 {percentile(values, 99):6.1f}  max {max(values):6.1f} ms")


# --------------------------------------------------------------------------- runs, load and cleanup


def new_run_id(kind: str) -> str:
    return f"bench-{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def engine_load() -> str:
    """A one-line picture of how busy the machine and the engine are right now."""
    load1, load5, _ = os.getloadavg()
    try:
        running = engine.client().containers.list(sparse=True)
        suite = sum(1 for c in running if engine.LABEL_RUN in (c.attrs.get("Labels") or {}))
        containers = f"{len(running)} containers running ({suite} of them from aliveness runs, anyone's)"
    except Exception as err:  # a figure must not die for want of a context line
        containers = f"container count unavailable ({type(err).__name__})"
    return f"load average {load1:.2f} (1 min) / {load5:.2f} (5 min) on {os.cpu_count()} CPUs; {containers}"


def leftovers(run_id: str) -> int:
    """How many containers and networks labelled with ``run_id`` still exist."""
    label = {"label": f"{engine.LABEL_RUN}={run_id}"}
    cli = engine.client()
    return len(cli.containers.list(all=True, sparse=True, filters=label)) + len(cli.networks.list(filters=label))


def clean_up(run_id: str) -> None:
    """Remove everything labelled with ``run_id`` (even half-built pieces) and say whether it all went."""
    try:
        engine.remove_all_labelled(f"{engine.LABEL_RUN}={run_id}")
        left = leftovers(run_id)
    except Exception as err:  # report it; the other figures may still run
        say(f"  cleanup of {run_id} failed: {type(err).__name__}: {err}")
        return
    say(f"  cleanup: run {run_id} removed, {left} containers/networks left")


def peer_manifest(peer: str) -> Manifest:
    return load_manifest(resolve_iut(peer))


def say_images_and_load(manifest: Manifest) -> None:
    """The images a figure uses (built now if missing, before any timing starts) and the load before it."""
    say(f"  images (built now if missing, outside the timings): {manifest.image()}, {toolbox_image()}")
    say(f"  before: {engine_load()}")


# --------------------------------------------------------------------------- figure 1: parallel wall time


@dataclass
class SuiteFigure:
    wall_s: float
    exit_code: int
    cases: int
    longest_s: float | None
    longest_case: str
    sum_s: float
    ratio: float | None


def _run_pytest(cmd: list[str]) -> tuple[int | None, str, str]:
    """Run pytest in its own process group; on Ctrl-C give it a bounded grace to tear down, then kill it.

    Returns (exit code, stdout, stderr); the exit code is None when it ran past ``SUITE_TIMEOUT_S``.
    """
    proc = subprocess.Popen(cmd, cwd=engine.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=SUITE_TIMEOUT_S)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, "", ""
    except BaseException:  # Ctrl-C: the child has its own session, so it did not see the terminal's SIGINT
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.communicate(timeout=INTERRUPT_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        raise


def figure_parallel_wall_time(
    target: str, iut: str, run_kind: str, workers: int = 8, keep_reports: bool = False
) -> SuiteFigure | None:
    """Run ``pytest target --iut iut -n workers`` in a subprocess and compare its wall time with the longest case.

    The case times come from the run's report.json; failing cases count like passing ones (only time
    is measured). ``run_kind`` goes into the run id (``bench-<run_kind>-...``), whose leftovers are
    removed afterwards, on Ctrl-C as well.
    """
    header(f"Figure 1 - parallel wall time: pytest {target} --iut {iut} -n {workers}")
    report_dir = Path(tempfile.mkdtemp(prefix="aliveness-bench-report-"))
    run_id = new_run_id(run_kind)
    cmd = [
        sys.executable, "-m", "pytest", target, "--iut", iut, "-n", str(workers),
        "-p", "no:cacheprovider", "--report-dir", str(report_dir), "--run-id", run_id,
    ]
    say(f"  command: python {' '.join(cmd[1:])}")
    say(f"  before: {engine_load()}")
    started = time.monotonic()
    done = False
    try:
        code, out, err = _run_pytest(cmd)
        wall = time.monotonic() - started
        done = True
    finally:
        # The suite tears down after itself; this catches what an aborted worker (or Ctrl-C) left behind.
        clean_up(run_id)
        if not done and not keep_reports:
            shutil.rmtree(report_dir, ignore_errors=True)
    if code is None:
        say(f"  pytest {target} did not finish within {SUITE_TIMEOUT_S} s; no figure")
        shutil.rmtree(report_dir, ignore_errors=True)
        return None
    say(f"  after:  {engine_load()}")
    for line in [ln for ln in out.strip().splitlines() if ln.strip()][-2:]:
        say(f"  pytest: {line.strip()}")
    report_path = report_dir / run_id / "report.json"
    if not report_path.is_file():
        say(f"  pytest exited {code} without writing {report_path}; no figure")
        for line in (err.strip().splitlines() or out.strip().splitlines())[-5:]:
            say(f"    {line}")
        shutil.rmtree(report_dir, ignore_errors=True)
        return None
    cases = json.loads(report_path.read_text())["cases"]
    durations = sorted(((float(c["duration"]), c["nodeid"]) for c in cases), reverse=True)
    total = sum(d for d, _ in durations)
    longest, longest_case = durations[0] if durations else (None, "")
    ratio = wall / longest if longest else None
    say()
    say(f"  cases in report.json        {len(cases)} (pytest exit code {code}; failing cases still count: only time is measured)")
    say(f"  wall time                   {wall:8.1f} s  (interpreter start to exit: collection, workers, report)")
    if longest is not None:
        say(f"  longest single case         {longest:8.1f} s  ({longest_case.split('/')[-1]})")
    say(f"  sum of case times           {total:8.1f} s  (a serial run would need at least this)")
    if wall > 0:
        say(f"  parallelism achieved        {total / wall:8.2f}   (sum of case times / wall time)")
    if longest:
        floor_s = max(longest, total / workers)
        say(f"  ideal lower bound           {floor_s:8.1f} s  (max of longest case and sum / {workers} workers)")
        say(f"  best reachable ratio        {floor_s / longest:8.2f} x  (ideal lower bound / longest case)")
        say(f"  wall / ideal lower bound    {wall / floor_s:8.2f} x  (start-up, collection, scheduling, report)")
        met = ratio <= WALL_RATIO_TARGET
        say(f"  wall / longest              {ratio:8.2f} x  target <= {WALL_RATIO_TARGET:g} x: {verdict(met)}")
    if durations:
        say("  slowest cases:")
        for seconds, nodeid in durations[:5]:
            say(f"    {seconds:6.1f} s  {nodeid.split('/')[-1]}")
    if keep_reports:
        say(f"  report kept in {report_dir / run_id}")
    else:
        shutil.rmtree(report_dir, ignore_errors=True)
    return SuiteFigure(wall, code, len(cases), longest, longest_case, total, ratio)


# --------------------------------------------------------------------------- concurrent sessions

# One session's work: (run, manifest, session, how many events it wants, the start barrier, pcap folder).
SessionFn = Callable[[RunContext, Manifest, Any, int, threading.Barrier, Path], None]


def run_sessions(run_kind: str, session_fn: SessionFn, manifest: Manifest, sessions: Sequence[Any], wanted: int,
                 thread_prefix: str = "session") -> None:
    """Run ``session_fn`` for every one of ``sessions`` at once, each in a thread of its own, then clean up.

    All sessions share one run (id ``bench-<run_kind>-...``), a temporary folder for their captures and
    a barrier they wait on before they start measuring; the load as the barrier opens is printed. The
    sessions get ``SESSIONS_TIMEOUT_S`` in all; the run and the captures are removed afterwards, on
    Ctrl-C as well. Each session records its outcome (and any error) on its own ``sessions`` entry;
    ``session_scope`` is the frame for that.
    """
    run = RunContext(run_id=new_run_id(run_kind))
    pcap_dir = Path(tempfile.mkdtemp(prefix="aliveness-bench-pcap-"))
    loaded: list[str] = []
    barrier = threading.Barrier(len(sessions), action=lambda: loaded.append(engine_load()))
    threads = [
        threading.Thread(
            target=session_fn, args=(run, manifest, s, wanted, barrier, pcap_dir), name=f"{thread_prefix}-{n}", daemon=True,
        )
        for n, s in enumerate(sessions)
    ]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        deadline = started + SESSIONS_TIMEOUT_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            say(f"  some sessions were still running after {SESSIONS_TIMEOUT_S // 60} minutes; their figures are missing")
    finally:
        if loaded:
            say(f"  as the sessions connected: {loaded[0]}")
        clean_up(run.run_id)
        shutil.rmtree(pcap_dir, ignore_errors=True)
    say(f"  {len(sessions)} sessions took {time.monotonic() - started:.1f} s in all")


Stoppable = TypeVar("Stoppable")


class SessionScope:
    """What one session started (stopped when it ends) and whether it got through the start barrier."""

    def __init__(self, start_together: threading.Barrier) -> None:
        self.start_together = start_together
        self.synced = False
        self.to_stop: list[Any] = []

    def stop_at_end(self, thing: Stoppable) -> Stoppable:
        """Have ``thing.stop()`` called when the session ends (newest first); returns ``thing``."""
        self.to_stop.append(thing)
        return thing

    def wait_for_all(self, timeout: float = BARRIER_TIMEOUT_S) -> None:
        """Wait until every session is ready, so that all of them measure at the same time."""
        self.start_together.wait(timeout=timeout)
        self.synced = True


@contextmanager
def session_scope(session: Any, start_together: threading.Barrier) -> Iterator[SessionScope]:
    """The frame of one ``run_sessions`` session: an exception inside becomes ``session.error``.

    The other sessions still count. On the way out the barrier is broken if this session never got
    through it (so the others do not wait for it), and what was passed to ``stop_at_end`` is stopped.
    """
    scope = SessionScope(start_together)
    try:
        yield scope
    except Exception as err:  # reported per session; the other sessions still count
        session.error = f"{type(err).__name__}: {err}"
    finally:
        if not scope.synced:
            start_together.abort()  # do not leave the other sessions waiting for this one
        for thing in reversed(scope.to_stop):
            thing.stop()


# --------------------------------------------------------------------------- command line and summary


def parse_args(prog: str, description: str, figures: Sequence[int], quick_help: str, workers_help: str,
               argv: list[str] | None = None) -> argparse.Namespace:
    """The options every benchmark script takes: --quick, --only N (one of ``figures``), --keep-reports, --workers N."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--only", type=int, action="append", choices=tuple(figures), help="run only this figure (repeatable)")
    parser.add_argument("--keep-reports", action="store_true", help="keep figure 1's report directory")
    parser.add_argument("--workers", type=int, default=8, help=workers_help)
    return parser.parse_args(argv)


def banner(what: str, quick: bool) -> None:
    """The first lines of a script's output: which benchmarks, when, on which engine and machine."""
    say(f"aliveness {what} benchmarks ({'quick' if quick else 'full'}) - {time.strftime('%Y-%m-%d %H:%M:%S')}")
    say(f"engine {engine.engine_address()} (Docker {engine.client().version().get('Version', '?')}), "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")


def summary_row(name: str, value: str, target: str, met: bool | None, name_width: int) -> None:
    say(f"  {name:<{name_width}} {value:>10}   target {target:<9} {verdict(met)}")


def summarise_suite(suite: SuiteFigure | None, workers: int, name_width: int) -> None:
    """Figure 1's lines in a script's summary."""
    ratio = suite.ratio if suite else None
    value = "-" if ratio is None else f"{ratio:.2f} x"
    summary_row(f"1 wall / longest case (-n {workers})", value, f"<= {WALL_RATIO_TARGET:g} x",
                None if ratio is None else ratio <= WALL_RATIO_TARGET, name_width)
    if suite:
        say(f"    wall {suite.wall_s:.1f} s, longest case {suite.longest_s or 0:.1f} s, sum {suite.sum_s:.1f} s, "
            f"{suite.cases} cases, pytest exit code {suite.exit_code}")


def say_shared_machine() -> None:
    """The summary's last line."""
    say(f"  Other Docker workloads on this engine share the {os.cpu_count()} CPUs and may disturb these figures.")
