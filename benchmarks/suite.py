"""Whole-run figures from a conformance run's report.json (a benchmark: it prints, it asserts nothing).

    python -m benchmarks.suite reports/runs/<run-id>/report.json [more report.json ...]

For each report: cases collected, verdicts by outcome (not-applicable ones counted apart), the run's wall
time, and every case's duration against its hard deadline (the seconds the harness allowed it, see
fixtures/deadline.py): the largest ratios first, and how many cases came within 50 % and 90 % of theirs.
Give a report of the first edition (no deadlines, every case collected for every IUT) beside one of the
second to compare them.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from benchmarks.common import header, say


def figures(path: Path) -> None:
    report = json.loads(path.read_text())
    cases = report["cases"]
    verdicts = [v for c in cases for v in c["verdicts"]]
    outcomes = Counter(v["outcome"] for v in verdicts)
    wall = (datetime.fromisoformat(report["finished"]) - datetime.fromisoformat(report["started"])).total_seconds()
    header(f"{report['run_id']}  ({path})")
    say(f"IUTs: {len(report['iuts'])}  cases: {len(cases)}  verdicts: {len(verdicts)}  "
        f"not-applicable: {outcomes['not-applicable']}  wall time: {wall:.0f} s")
    say("verdicts by outcome: " + ", ".join(f"{k} {n}" for k, n in outcomes.most_common()))
    timed = [c for c in cases if c.get("deadline")]
    if not timed:
        say("no case carries a deadline (a first-edition report)")
        return
    ratios = sorted(((c["duration"] / c["deadline"], c) for c in timed), key=lambda r: -r[0])
    say(f"case duration / deadline: max {ratios[0][0]:.2f}, median {ratios[len(ratios) // 2][0]:.2f}; "
        f"over 0.5: {sum(r > 0.5 for r, _ in ratios)}, over 0.9: {sum(r > 0.9 for r, _ in ratios)}, "
        f"over 1 (teardown included): {sum(r > 1 for r, _ in ratios)} of {len(ratios)}")
    for ratio, case in ratios[:8]:
        say(f"  {ratio:5.2f}  {case['duration']:6.1f} s of {case['deadline']:6.1f} s  {case['nodeid'].split('::')[-1]}")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for name in argv:
        figures(Path(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
