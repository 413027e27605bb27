"""The wire validator judges what no case is about: a peer whose only defect is in frames it sends unprompted
(its own keepalive Pings carry RSV1) is failed on that rule in a keepalive case, and that case's own verdicts
are inconclusive, naming the frame that made the tester stop reading, never a pass or fail on another rule."""
from __future__ import annotations

from tests.conftest import ROOT


def test_a_defect_in_unprompted_pings_is_failed_on_its_rule_and_named_by_the_other_verdicts(run_suite):
    module = ROOT / "conformance" / "websocket" / "rfc6455_keepalive_timing.py"
    result, report = run_suite("--iut", "ws-ping-rsv", str(module), "-k", "pinged_at_the_interval")
    assert report is not None, result.stdout.str()[-2000:]
    (case,) = report["cases"]
    verdicts = {(v["requirement"], v["outcome"]): v["message"] for v in case["verdicts"]}
    assert ("RFC6455-5.2-rsv-zero", "fail") in verdicts, verdicts
    assert "ping frame" in verdicts[("RFC6455-5.2-rsv-zero", "fail")]
    assert "RFC6455-5.2-rsv-zero" in case["requirements"]  # judged although the case does not declare it
    own = [v for v in case["verdicts"] if v["requirement"].startswith("WS-KEEPALIVE")]
    assert own and all(v["outcome"] == "inconclusive" for v in own), own
    assert all("reserved bits" in v["message"] for v in own), own
    assert result.ret == 0  # the planted defect is the expected failure (xfail), nothing else fails
