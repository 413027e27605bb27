"""The reporting plugin: case results in (through the harness's hooks), reports/runs/<id>/ out.

It imports nothing of the harness: results arrive as plain data through ``pytest_aliveness_case_result``
and the run's identity through ``pytest_aliveness_run_finished`` (fixtures/hookspecs.py); the harness
has already removed the run's containers and asked each IUT its version by then.
"""
from __future__ import annotations

import pytest

from conformance.requirements import catalogue
from reports.model import CaseResult, Evidence, Outcome, RunReport, Verdict
from reports.render import write_reports

SUITE_VERSION = "0.2.0"
RESULTS = pytest.StashKey[list]()
LINES = pytest.StashKey[list]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = []
    config.stash[LINES] = []


def pytest_aliveness_case_result(config: pytest.Config, result: dict) -> None:
    config.stash[RESULTS].append(result)


def _verdict(data: dict) -> Verdict:
    evidence = [Evidence(**e) for e in data.pop("evidence")]
    return Verdict(outcome=Outcome(data.pop("outcome")), evidence=evidence, **data)


def build_report(run: dict, results: list[dict]) -> RunReport:
    cases = [
        CaseResult(
            nodeid=result["nodeid"],
            title=result["title"],
            iut=result["iut"],
            role=result["role"],
            requirements=result["requirements"],
            duration=result["duration"],
            verdicts=[_verdict(dict(v)) for v in result["verdicts"]],
            error=result["error"],
            deadline=result.get("deadline"),
            protocol=result.get("protocol", ""),
        )
        for result in results
    ]
    return RunReport(
        run_id=run["run_id"],
        suite_version=SUITE_VERSION,
        started=run["started"],
        finished=run["finished"],
        host=run["host"],
        iuts=run["iuts"],
        cases=cases,
        catalogue=list(catalogue().values()),
        options=run["options"],
    )


def pytest_aliveness_run_finished(session: pytest.Session, run: dict) -> None:
    config = session.config
    results = config.stash[RESULTS]
    if not results:
        return
    try:
        run["run_dir"].mkdir(parents=True, exist_ok=True)
        paths = write_reports(build_report(run, results), run["run_dir"])
    except Exception as err:  # the report must never hide the run's own outcome behind a traceback
        config.stash[LINES].append(f"aliveness: could not write the report: {type(err).__name__}: {err}")
        return
    config.stash[LINES].append(f"aliveness report: {paths['html']}")
    surprises = unexpected_passes(results)
    for line in surprises:
        config.stash[LINES].append(f"aliveness: unexpected pass: {line}")
    if surprises and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def unexpected_passes(results: list[dict]) -> list[str]:
    """Expected failures ([expect]) that the run judged and never saw fail: the manifest is out of date."""
    reqs = catalogue()
    seen: dict[tuple[str, str], set[str]] = {}
    expected: dict[str, dict[str, str]] = {}
    for result in results:
        expected.setdefault(result["iut"], result["expected"])
        for v in result["verdicts"]:
            seen.setdefault((result["iut"], v["requirement"]), set()).add(v["outcome"])
    lines = []
    for iut, expect in expected.items():
        for req_id, why in sorted(expect.items()):
            outcomes = seen.get((iut, req_id), set())
            failing = reqs[req_id].failing_outcome.value if req_id in reqs else "fail"
            if "pass" in outcomes and failing not in outcomes and "fail" not in outcomes:
                lines.append(f"{iut} expects {req_id} to fail ({why}), but every case that judged it passed")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for line in config.stash.get(LINES, []):
        terminalreporter.write_line(line)
