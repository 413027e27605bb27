"""Every reference peer passes every case it can run: no false positives on conformant programs."""
from __future__ import annotations

import pytest

from fixtures.peers import load_manifest, reference_peers
from tests.conftest import ROOT, verdicts_of

MODULES = sorted(p.relative_to(ROOT) for p in (ROOT / "conformance").rglob("rfc*_*.py"))
BAD = {"fail", "error", "inconclusive"}
# Each case module belongs to the protocol its package is named after ("_" for "-"): only peers speaking it run it.
PAIRS = [(peer, module) for peer in reference_peers() for module in MODULES
         if module.parent.name.replace("_", "-") in load_manifest(peer).protocols]


@pytest.mark.parametrize(("peer", "module"), PAIRS, ids=[f"{m.stem}-{p.parent.name}" for p, m in PAIRS])
def test_reference_peer_passes(run_suite, peer, module):
    manifest = load_manifest(peer)
    # Cases wait on timers, not CPU: two at a time inside each nested run (up to 16 with the outer -n 8)
    # keeps the whole suite short without burying a 2-core engine under simultaneous container starts
    # (with three, an exec could wait more than 30 s to start).
    result, report = run_suite("--iut", str(peer), str(ROOT / module), workers=2)
    if report is None and "no tests ran" in result.stdout.str():
        pytest.skip(f"{module.stem} has no case for the roles {manifest.name} plays")
    assert report is not None, result.stdout.str()[-2000:]
    wrong = [
        f"{v['requirement']} [{v['role']}] {v['outcome']}: {v['message']}"
        for v in verdicts_of(report)
        if v["outcome"] in BAD and v["requirement"] not in manifest.expect
    ]
    assert not wrong, "\n".join(wrong)
    judged = [v for v in verdicts_of(report) if v["outcome"] != "not-applicable"]
    if not judged:
        pytest.skip(f"{manifest.name} offers nothing {module.stem} tests (every case not-applicable)")
    assert any(v["outcome"] in ("pass", "info") for v in judged), report
