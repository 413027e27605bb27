"""The catalogue and the cases agree, and every asserted rule has a faulty peer that must break it."""
from __future__ import annotations

import ast
from pathlib import Path

from conformance.requirements import catalogue
from fixtures.peers import faulty_peers, load_manifest
from fixtures.protocols import registry

ROOT = Path(__file__).resolve().parents[2]


def case_requirements() -> dict[str, set[str]]:
    """Requirement IDs named by @pytest.mark.requirement(...) in every conformance module, per case."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "conformance").rglob("rfc*_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for deco in node.decorator_list:
                    if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "requirement":
                        found.setdefault(f"{path.name}::{node.name}", set()).update(a.value for a in deco.args)
    return found


def test_cases_name_only_catalogued_requirements():
    known = set(catalogue())
    for case, ids in case_requirements().items():
        assert ids <= known, f"{case} names {ids - known}, which the catalogue lacks"


def test_every_graded_requirement_that_a_case_asserts_has_a_faulty_peer():
    asserted = {i for ids in case_requirements().values() for i in ids}
    asserted |= {i for protocol in registry().values() for i in protocol.validates}  # judged in every case
    graded = {i for i in asserted if catalogue()[i].level in ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT")}
    broken = {i for p in faulty_peers() for i in load_manifest(p).expect}
    missing = graded - broken
    assert not missing, f"no faulty peer breaks {sorted(missing)}: a case that cannot fail is a defect"


def test_faulty_peers_expect_catalogued_requirements():
    for path in faulty_peers():
        for req_id in load_manifest(path).expect:
            assert req_id in catalogue(), f"{path} expects unknown {req_id}"


def test_levels_map_to_outcomes():
    from reports.model import Outcome

    levels = {r.level: r.failing_outcome for r in catalogue().values()}
    assert levels["MUST"] == Outcome.FAIL
    assert levels["SHOULD"] == Outcome.WARN
    assert levels["MAY"] == Outcome.INFO


def test_cases_judge_only_observable_requirements():
    """A rule the suite cannot see broken (the probe's SND.NXT - 1 form is how a probe is recognised) is
    catalogued as not observable, and no case pretends to judge it."""
    judged = {i for ids in case_requirements().values() for i in ids}
    unobservable = {i for i, r in catalogue().items() if not r.observable}
    assert "RFC9293-3.8.4-probe-seq" in unobservable
    assert not judged & unobservable, sorted(judged & unobservable)
