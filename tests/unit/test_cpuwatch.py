"""A timing verdict and the CPU its parties had (fixtures/cpuwatch.py): starved is inconclusive, late on a quiet
machine still fails."""
from __future__ import annotations

import time

from fixtures.cpuwatch import CpuWatch, Starvation, container_pids
from fixtures.verdicts import Verdicts
from fixtures.waiting import wait_until
from reports.model import Outcome

RULE, SHOULD = "RFC9293-MUST-25", "RFC9293-SHLD-12"


class FakeWatch:
    """A CPU watch that reports the same waits for any window."""

    def __init__(self, **waits: float) -> None:
        self.waits = waits
        self.asked: list[tuple[float, float]] = []

    def starved(self, start: float, end: float) -> Starvation:
        self.asked.append((start, end))
        return Starvation((start, end), dict(self.waits), 0.5)


def recorder(watch) -> Verdicts:
    v = Verdicts("case::id", "peer", "server", [RULE, SHOULD])
    v.cpu = watch
    return v


def test_a_starved_timing_verdict_is_inconclusive_with_the_figure():
    v = recorder(FakeWatch(harness=0.02, IUT=0.45, tester=None))
    verdict = v.check(RULE, False, "the probe came 0.4 s late", measured={"gap_s": 1.525},
                      tolerance="+12.5 % + 100 ms", window=(100.0, 102.0), deviation=0.3)
    assert verdict.outcome == Outcome.INCONCLUSIVE
    assert verdict.message.startswith("inconclusive: starved")
    assert "IUT 450 ms" in verdict.message and "tester unknown" in verdict.message
    assert verdict.measured["cpu_wait_IUT_ms"] == 450.0 and verdict.measured["gap_s"] == 1.525


def test_a_late_implementation_on_a_quiet_machine_still_fails():
    watch = FakeWatch(harness=0.003, IUT=0.001, tester=0.002)
    v = recorder(watch)
    verdict = v.check(RULE, False, "the probe came 0.4 s late", window=(100.0, 102.0), deviation=0.3)
    assert verdict.outcome == Outcome.FAIL
    assert "longest wait for a CPU" in verdict.message  # the figure is shown beside the measurement
    assert watch.asked == [(100.0, 102.0)]
    assert v.check(SHOULD, False, "late", window=(1.0, 2.0), deviation=0.3).outcome == Outcome.WARN


def test_a_wait_shorter_than_the_deviation_cannot_account_for_it():
    v = recorder(FakeWatch(harness=0.2, IUT=0.1))
    assert v.check(RULE, False, "9 s late", window=(0.0, 20.0), deviation=9.0).outcome == Outcome.FAIL


def test_without_a_deviation_the_figure_is_shown_and_the_verdict_stands():
    v = recorder(FakeWatch(harness=2.0))
    verdict = v.check(RULE, False, "never answered", window=(0.0, 10.0))
    assert verdict.outcome == Outcome.FAIL and verdict.measured["cpu_wait_harness_ms"] == 2000.0


def test_a_passing_timing_verdict_carries_the_figures():
    verdict = recorder(FakeWatch(harness=0.0, IUT=0.004)).check(RULE, True, "on time", window=(0.0, 1.0))
    assert verdict.outcome == Outcome.PASS and verdict.measured["cpu_wait_IUT_ms"] == 4.0


def test_the_watch_reads_this_process_and_the_machine():
    """The harness is always a known party (its threads' schedstat), and where the kernel has PSI, the share of
    the window in which some task waited lies between 0 and 1."""
    watch = CpuWatch(period=0.02)
    try:
        start = time.time()
        wait_until(lambda: time.time() - start > 0.1, 1, poll_max=0.01)
        starved = watch.starved(start, time.time())
    finally:
        watch.stop()
    assert starved.parties["harness"] is not None and starved.parties["harness"] >= 0.0
    assert starved.pressure is None or 0.0 <= starved.pressure <= 1.0
    assert "harness" in starved.describe()


def test_an_unknown_container_has_no_processes():
    assert container_pids("0" * 64) == []
