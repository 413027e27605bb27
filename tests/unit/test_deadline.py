"""The hard deadline: it interrupts whatever a case waits on, names the wait, and the case ends inconclusive."""
from __future__ import annotations

import json
import signal
import time

import pytest

from fixtures import deadline
from fixtures.waiting import wait_until
from tests.conftest import ROOT

pytest_plugins = ["pytester"]


def test_the_deadline_interrupts_a_wait_and_names_it():
    deadline.arm(0.3)
    started = time.monotonic()
    try:
        with pytest.raises(deadline.CaseDeadline, match="a Pong that never comes"):
            wait_until(lambda: False, 30, what="a Pong that never comes")
    finally:
        assert deadline.disarm() == pytest.approx(0.3, abs=0.05)
    assert time.monotonic() - started < 2


def test_extend_moves_the_deadline_and_disarm_stops_it():
    deadline.arm(0.2)
    deadline.extend(0.6)
    assert deadline.remaining() > 0.4
    assert deadline.disarm() >= 0.6
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # no alarm left to fire
    assert deadline.remaining() is None


CASE = '''
import pytest
from fixtures import deadline
from fixtures.waiting import wait_until

pytestmark = pytest.mark.protocol("tcp")


@pytest.mark.requirement("RFC9293-MUST-25", "RFC9293-MUST-24")
def test_waits_for_ever(iut, verdict):
    """A case whose IUT never does what it waits for."""
    verdict.check("RFC9293-MUST-25", True, "reached before the wait")
    deadline.extend(0.5)  # what a case world does once it is up, with a tiny budget
    wait_until(lambda: False, 600, what="a probe that never comes")
'''


def test_a_case_past_its_deadline_keeps_its_verdicts_and_the_rest_is_inconclusive(pytester, tmp_path):
    pytester.makepyfile(test_hangs=CASE)
    started = time.monotonic()
    result = pytester.runpytest_inprocess(
        "-p", "fixtures.plugin", "-p", "reports.plugin", f"--rootdir={ROOT}", "-c", str(ROOT / "tox.ini"),
        "-p", "no:cacheprovider", "--iut", "socat", "--report-dir", str(tmp_path), "--run-id", "deadline",
        "test_hangs.py",
    )
    assert time.monotonic() - started < 30, result.stdout.str()[-2000:]
    case = json.loads((tmp_path / "deadline" / "report.json").read_text())["cases"][0]
    outcomes = {v["requirement"]: (v["outcome"], v["message"]) for v in case["verdicts"]}
    assert outcomes["RFC9293-MUST-25"] == ("pass", "reached before the wait")
    outcome, message = outcomes["RFC9293-MUST-24"]
    assert outcome == "inconclusive" and "deadline" in message and "a probe that never comes" in message
    assert case["deadline"] == pytest.approx(0.5, abs=0.2)
