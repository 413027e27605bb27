"""The reporting plugin: gathers case results (from every xdist worker) and writes reports/runs/<id>/."""
from __future__ import annotations

import datetime
import platform
import signal
import sys

import pytest

from conformance.requirements import catalogue
from fixtures import engine
from fixtures.plugin import STATE, RunState, case_results, selects_conformance
from reports.model import CaseResult, Evidence, IutInfo, Outcome, RunReport, Verdict
from reports.render import write_reports

SUITE_VERSION = "0.1.0"
REPORTS = pytest.StashKey[list]()
STARTED = pytest.StashKey[str]()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _terminate(signum, frame) -> None:
    # A SIGTERM'd run must still tear down: treat it as Ctrl-C, which pytest unwinds cleanly.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REPORTS] = []
    config.stash[STARTED] = _now()
    config.stash[COLLECTOR] = _Collector()
    config.pluginmanager.register(config.stash[COLLECTOR], "aliveness-collector")
    if not hasattr(config, "workerinput"):
        signal.signal(signal.SIGTERM, _terminate)


class _Collector:
    """Keeps the teardown reports that carry case results (the controller sees every worker's)."""

    def __init__(self) -> None:
        self.reports: list[pytest.TestReport] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" and report.user_properties:
            self.reports.append(report)


COLLECTOR = pytest.StashKey[_Collector]()


def _verdict(data: dict) -> Verdict:
    evidence = [Evidence(**e) for e in data.pop("evidence")]
    return Verdict(outcome=Outcome(data.pop("outcome")), evidence=evidence, **data)


def _shown_path(path) -> str:
    return str(path.relative_to(engine.ROOT) if path.is_relative_to(engine.ROOT) else path)


def build_report(state: RunState, results: list[dict], started: str) -> RunReport:
    cases = []
    used: dict[str, dict] = {}
    for result in results:
        used.setdefault(result["iut"], result["expected"])
        cases.append(
            CaseResult(
                nodeid=result["nodeid"],
                title=result["title"],
                iut=result["iut"],
                role=result["role"],
                requirements=result["requirements"],
                duration=result["duration"],
                verdicts=[_verdict(dict(v)) for v in result["verdicts"]],
                error=result["error"],
            )
        )
    iuts = []
    for manifest in state.manifests:
        if manifest.name not in used:
            continue
        iuts.append(
            IutInfo(
                name=manifest.name,
                manifest=_shown_path(manifest.path),
                description=manifest.description,
                image=manifest.image(),
                version=manifest.version(),
                faulty=manifest.faulty,
                expected_failures=sorted(manifest.expect),
                expected_reasons=dict(sorted(manifest.expect.items())),
            )
        )
    return RunReport(
        run_id=state.run_id,
        suite_version=SUITE_VERSION,
        started=started,
        finished=_now(),
        host={
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "engine": engine.engine_address(),
            "engine_version": engine.client().version().get("Version", "?"),
        },
        iuts=iuts,
        cases=cases,
        catalogue=list(catalogue().values()),
        options={"iut_address": state.iut_address},
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    state: RunState = config.stash[STATE]
    if selects_conformance(config):
        # Whatever the run left, an interrupted one included (its cases may never have reported).
        engine.remove_all_labelled(f"{engine.LABEL_RUN}={state.run_id}")
    results = case_results(config.stash[COLLECTOR].reports)
    if not results:
        return
    try:
        state.run_dir.mkdir(parents=True, exist_ok=True)
        paths = write_reports(build_report(state, results, config.stash[STARTED]), state.run_dir)
    except Exception as err:  # the report must never hide the run's own outcome behind a traceback
        config.stash[REPORTS].append(f"aliveness: could not write the report: {type(err).__name__}: {err}")
        return
    config.stash[REPORTS].append(f"aliveness report: {paths['html']}")
    surprises = unexpected_passes(results)
    for line in surprises:
        config.stash[REPORTS].append(f"aliveness: unexpected pass: {line}")
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
    for line in config.stash.get(REPORTS, []):
        terminalreporter.write_line(line)
