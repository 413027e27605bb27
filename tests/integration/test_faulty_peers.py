"""Every faulty peer is caught on the requirement it breaks: the suite's cases can fail."""
from __future__ import annotations

import pytest

from conformance.requirements import catalogue
from fixtures.peers import faulty_peers, load_manifest
from tests.conftest import verdicts_of

PAIRS = [(path, req_id) for path in faulty_peers() for req_id in load_manifest(path).expect]


@pytest.mark.parametrize(("peer", "requirement"), PAIRS, ids=[f"{p.parent.name}-{r}" for p, r in PAIRS])
def test_faulty_peer_is_failed_on_its_requirement(run_suite, peer, requirement):
    # The first case that fails the rule is the proof: the run stops there.
    result, report = run_suite("--iut", str(peer), "--requirement", requirement, "--stop-at-failure-of", requirement)
    assert report is not None, result.stdout.str()[-2000:]
    expected = catalogue()[requirement].failing_outcome.value
    outcomes = [v["outcome"] for v in verdicts_of(report) if v["requirement"] == requirement]
    assert expected in outcomes, f"{peer.parent.name} was not graded {expected} on {requirement}: {outcomes}"
    assert "error" not in outcomes
    # The pytest outcome follows: a faulty peer's expected failure is xfail, never an unexpected pass.
    assert result.ret == 0 or expected == "warn", result.stdout.str()[-2000:]
