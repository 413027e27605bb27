"""What a case costs: CPU-seconds of the harness and of the engine, wall time, containers and networks (a benchmark:
it prints, it asserts nothing).

    python -m benchmarks.cost [--compare REV] [--workers N] [--repeat K] [PYTEST-SELECTION ...]

Runs ``pytest conformance -n N`` with the selection given (default: ``--iut socat --iut websockets --iut libcoap``)
in a subprocess and prints, for the whole run and per case:

- the harness's CPU-seconds: the pytest process and its workers (their resource usage once they ended);
- the engine's: dockerd's and containerd's own CPU-seconds (from /proc), and "shims and containers", which is
  every other CPU-second the machine spent meanwhile (containerd's shims, runc, tcpdump, the IUTs, the testers'
  agents; and anything else that ran, so run it on a quiet machine);
- the wall time, and the containers, networks and execs the run created (the engine's events for the run's label).

``--compare REV`` first runs the same selection on a checkout of REV (a git worktree beside the tree, made and
removed by the script, same virtualenv and images), then on this tree, and prints the ratio of the two: the
"before and after" of a change measured on one machine in one sitting. ``--repeat K`` runs each K times and
takes the medians. The engine must be local (its processes' CPU is read from /proc).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import clean_up, header, new_run_id, say
from fixtures import engine

DEFAULT_SELECTION = ["--iut", "socat", "--iut", "websockets", "--iut", "libcoap"]
TIMEOUT_S = 3600
TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (every CPU, everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def _pids(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _process_seconds(name: str) -> float:
    """CPU-seconds the processes called ``name`` have spent (their own and their reaped children's)."""
    total = 0.0
    for pid in _pids(name):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in stat[11:15]) / TICK  # utime, stime, cutime, cstime
    return total


@dataclass
class Cost:
    label: str
    cases: int
    wall: float
    harness: float
    dockerd: float
    containerd: float
    rest: float
    containers: int
    networks: int
    execs: int
    exit_code: int

    @property
    def engine(self) -> float:
        return self.dockerd + self.containerd + self.rest

    @property
    def total(self) -> float:
        return self.harness + self.engine

    def per_case(self, value: float) -> float:
        return value / self.cases if self.cases else float("nan")


class EngineEvents:
    """Counts, as they happen, the containers, networks and execs the engine creates for one run (its label)."""

    def __init__(self, run_id: str) -> None:
        self.counts = {"container": 0, "network": 0, "exec": 0}
        # Container and exec events carry the run's label; network events carry no labels, only names (the suite's
        # begin with "aliveness-": run this on an engine no other aliveness run uses meanwhile).
        self._streams = [engine.client().events(decode=True, filters={"label": f"{engine.LABEL_RUN}={run_id}"}),
                         engine.client().events(decode=True, filters={"type": "network", "event": "create"})]
        for stream in self._streams:
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        try:
            for event in stream:
                action = event.get("Action") or event.get("status") or ""
                kind = event.get("Type")
                if action == "create" and kind == "container":
                    self.counts["container"] += 1
                elif action == "create" and kind == "network":
                    name = event.get("Actor", {}).get("Attributes", {}).get("name", "")
                    self.counts["network"] += name.startswith("aliveness-")
                elif action.startswith("exec_create"):
                    self.counts["exec"] += 1
        except Exception:  # noqa: BLE001 - the stream is closed under the reader at the end
            pass

    def close(self) -> dict[str, int]:
        time.sleep(1)  # the engine publishes an event a moment after the call: let the last ones arrive
        for stream in self._streams:
            stream.close()
        return dict(self.counts)


def measure(tree: Path, selection: list[str], workers: int, label: str) -> Cost | None:
    report_dir = Path(tempfile.mkdtemp(prefix="aliveness-cost-"))
    run_id = new_run_id("cost")
    cmd = [sys.executable, "-m", "pytest", "conformance", "-n", str(workers), "-q", "-p", "no:cacheprovider",
           "--report-dir", str(report_dir), "--run-id", run_id, *selection]
    say(f"  {label}: python {' '.join(cmd[1:])}  (in {tree})")
    events = EngineEvents(run_id)
    busy0, dockerd0, containerd0 = _busy_seconds(), _process_seconds("dockerd"), _process_seconds("containerd")
    wall0 = time.monotonic()
    with open(report_dir / "pytest.out", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=tree, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while (waited := os.wait4(proc.pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    proc.kill()
                time.sleep(0.5)  # polling a child process's exit; no condition to wait on in between
            _, status, usage = waited
        finally:
            if proc.poll() is None:
                proc.kill()
            clean_up(run_id)
    wall = time.monotonic() - wall0
    busy, dockerd = _busy_seconds() - busy0, _process_seconds("dockerd") - dockerd0
    containerd = _process_seconds("containerd") - containerd0
    harness = usage.ru_utime + usage.ru_stime
    pooled = [json.loads(f.read_text()) for f in (report_dir / run_id / "pool").glob("*.json")]
    if pooled:
        total = {k: sum(p[k] if isinstance(p[k], int) else len(p[k]) for p in pooled) for k in pooled[0]}
        say(f"    kept between cases: tester pods made {total['tester_pods']}, lent again {total['tester_reuses']}, "
            f"replaced {total['tester_replaced']}; IUT sidecars made {total['iut_sidecars']}, "
            f"lent again {total['iut_reuses']}, replaced {total['iut_replaced']}")
        reasons = Counter(r.split(":")[0] for p in pooled for r in p["iut_replaced"] + p["tester_replaced"])
        for reason, n in reasons.most_common(4):
            say(f"      {n} x {reason}")
    report = report_dir / run_id / "report.json"
    cases = len(json.loads(report.read_text())["cases"]) if report.is_file() else 0
    created = events.close()
    tail = (report_dir / "pytest.out").read_text(errors="replace").strip().splitlines()[-1:]
    say(f"    pytest: {tail[0] if tail else 'no output'}")
    shutil.rmtree(report_dir, ignore_errors=True)
    if not cases:
        say("    no report.json: no figure")
        return None
    return Cost(label, cases, wall, harness, dockerd, containerd, max(busy - harness - dockerd - containerd, 0.0),
                created["container"], created["network"], created["exec"], os.waitstatus_to_exitcode(status))


def median_cost(costs: list[Cost]) -> Cost:
    def med(attr: str) -> float:
        return statistics.median(getattr(c, attr) for c in costs)

    first = costs[0]
    return Cost(first.label, first.cases, med("wall"), med("harness"), med("dockerd"), med("containerd"), med("rest"),
                int(med("containers")), int(med("networks")), int(med("execs")), first.exit_code)


def show(costs: list[Cost]) -> None:
    rows = [
        ("cases", lambda c: f"{c.cases}"),
        ("wall time (s)", lambda c: f"{c.wall:.1f}"),
        ("CPU-s, all", lambda c: f"{c.total:.1f}"),
        ("  harness (pytest and workers)", lambda c: f"{c.harness:.1f}"),
        ("  dockerd", lambda c: f"{c.dockerd:.1f}"),
        ("  containerd", lambda c: f"{c.containerd:.1f}"),
        ("  shims, runc, containers, rest", lambda c: f"{c.rest:.1f}"),
        ("CPU-s per case", lambda c: f"{c.per_case(c.total):.2f}"),
        ("  harness per case", lambda c: f"{c.per_case(c.harness):.2f}"),
        ("  engine per case", lambda c: f"{c.per_case(c.engine):.2f}"),
        ("containers created", lambda c: f"{c.containers} ({c.per_case(c.containers):.1f} per case)"),
        ("networks created", lambda c: f"{c.networks} ({c.per_case(c.networks):.2f} per case)"),
        ("execs run", lambda c: f"{c.execs} ({c.per_case(c.execs):.1f} per case)"),
    ]
    say()
    say(f"  {'':34}" + "".join(f"{c.label:>24}" for c in costs))
    for name, value in rows:
        say(f"  {name:34}" + "".join(f"{value(c):>24}" for c in costs))
    if len(costs) == 2 and costs[0].cases and costs[1].cases:
        before, after = costs
        ratio = after.per_case(after.total) / before.per_case(before.total)
        say()
        say(f"  CPU-seconds per case, after / before: {ratio:.2f} (target: at most 0.5)  "
            f"{'met' if ratio <= 0.5 else 'NOT met'}")
        say(f"  wall time, after / before: {after.wall / before.wall:.2f}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="REV", help="first measure this git revision (a worktree of it)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    args, selection = parser.parse_known_args(argv)
    selection = selection or DEFAULT_SELECTION
    header(f"Cost per case: pytest conformance -n {args.workers} {' '.join(selection)}")
    say(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the first run")
    trees = [(engine.ROOT, "this tree")]
    worktree = None
    if args.compare:
        worktree = Path(tempfile.mkdtemp(prefix="aliveness-base-")) / "tree"
        subprocess.run(["git", "-C", str(engine.ROOT), "worktree", "add", "--detach", str(worktree), args.compare],
                       check=True, capture_output=True)
        trees.insert(0, (worktree, args.compare[:12]))
    try:
        for tree, _ in trees:  # images first, outside the figures
            subprocess.run([sys.executable, "-m", "fixtures", "prepare", "--reference"], cwd=tree, check=True,
                           stdout=subprocess.DEVNULL)
        results: dict[str, list[Cost]] = {label: [] for _, label in trees}
        for _ in range(args.repeat):
            for tree, label in trees:
                cost = measure(tree, selection, args.workers, label)
                if cost is not None:
                    results[label].append(cost)
        show([median_cost(costs) for costs in results.values() if costs])
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(engine.ROOT), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True)
            shutil.rmtree(worktree.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
