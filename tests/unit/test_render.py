"""Unit tests of reports/render.py: report.json, junit.xml and report.html from a hand-built RunReport."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from reports.model import CaseResult, Evidence, IutInfo, Outcome, Requirement, RunReport, Verdict
from reports.render import SCHEMA_PATH, ReportValidationError, load_report, render_html, write_reports

HOSTILE = "<script>alert(1)</script>"
SVG = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="4" height="4"/></svg>\n'
)


def requirement(rid: str, level: str, observable: bool = True) -> Requirement:
    return Requirement(
        id=rid, spec="RFC 9293", section="3.8.4", level=level, summary=f"rule {rid}", protocol="tcp", observable=observable
    )


CATALOGUE = [
    requirement("TCP-1", "MUST"),
    requirement("TCP-2", "MUST"),
    requirement("TCP-3", "SHOULD"),
    requirement("TCP-4", "MAY"),
    requirement("TCP-5", "SHOULD"),  # observable but covered by no case
    requirement("TCP-6", "MUST", observable=False),
]


def build_report() -> RunReport:
    evidence = [
        Evidence(kind="pcap", label="capture", path="evidence/idle probe.pcap"),
        Evidence(kind="timeline-svg", label="probe timeline", path="evidence/timeline.svg"),
        Evidence(kind="events", label="tester events", text="0.000 connected\n1.002 probe"),
    ]
    cases = [
        CaseResult(
            nodeid="conformance/tcp/test_idle.py::test_probe[ref]",
            title="first probe after idle time",
            iut="ref-linux",
            role="server",
            requirements=["TCP-1", "TCP-2"],
            duration=1.5,
            verdicts=[
                Verdict(
                    "TCP-1",
                    Outcome.PASS,
                    "probe sent after 1.00 s",
                    measured={"idle": 1.004},
                    tolerance="+-50 ms",
                    evidence=evidence,
                ),
                Verdict("TCP-2", Outcome.PASS, "connection closed after 3 probes"),
            ],
        ),
        CaseResult(
            nodeid="conformance/tcp/test_interval.py::test_interval[ref]",
            title="probe interval",
            iut="ref-linux",
            role="server",
            requirements=["TCP-3", "TCP-4"],
            duration=2.0,
            verdicts=[
                Verdict("TCP-3", Outcome.WARN, "interval 2.1 s, configured 1 s"),
                Verdict("TCP-4", Outcome.INFO, "default idle time is 7200 s"),
            ],
        ),
        CaseResult(
            nodeid="conformance/tcp/test_idle.py::test_probe[faulty]",
            title="first probe after idle time",
            iut="faulty-early",
            role="server",
            requirements=["TCP-1", "TCP-2"],
            duration=1.0,
            verdicts=[
                Verdict("TCP-1", Outcome.PASS, "probe sent after 1.00 s"),
                Verdict("TCP-2", Outcome.FAIL, HOSTILE, measured={"probes": 1}),
            ],
        ),
        CaseResult(
            nodeid="conformance/tcp/test_interval.py::test_optional[faulty]",
            title="optional behaviour",
            iut="faulty-early",
            role="client",
            requirements=["TCP-4"],
            duration=0.1,
            verdicts=[Verdict("TCP-4", Outcome.NOT_APPLICABLE, "the client role has no such knob")],
        ),
        CaseResult(
            nodeid="conformance/tcp/test_interval.py::test_interval[faulty]",
            title="probe interval",
            iut="faulty-early",
            role="server",
            requirements=["TCP-3"],
            duration=0.2,
            error="Traceback (most recent call last):\nRuntimeError: peer vanished",
        ),
    ]
    iuts = [
        IutInfo(
            name="ref-linux",
            manifest="peers/linux/peer.toml",
            description="Linux kernel keepalive",
            image="aliveness/linux",
            expected_failures=["TCP-3"],
            expected_reasons={"TCP-3": "sends its probes 0.2 s late <on purpose>"},
        ),
        IutInfo(
            name="faulty-early",
            manifest="peers/faulty/early/peer.toml",
            description="gives up after one probe",
            faulty=True,
            expected_failures=["TCP-2"],
            expected_reasons={"TCP-2": "planted: gives up early"},
        ),
    ]
    return RunReport(
        run_id="20250101-000000-abcd",
        suite_version="0.1.0",
        started="2025-01-01T00:00:00+00:00",
        finished="2025-01-01T00:00:05+00:00",
        host={"hostname": "ci-1", "kernel": "6.1.0"},
        iuts=iuts,
        cases=cases,
        catalogue=CATALOGUE,
        options={"iut": ["ref-linux", "faulty-early"]},
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "idle probe.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")
    (tmp_path / "evidence" / "timeline.svg").write_text(SVG, encoding="utf-8")
    return tmp_path


@pytest.fixture
def written(run_dir: Path) -> dict[str, Path]:
    return write_reports(build_report(), run_dir)


class MatrixCells(HTMLParser):
    """Collects the (iut, requirement) -> class of every matrix cell."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "td" and "data-req" in found:
            self.cells[(found["data-iut"] or "", found["data-req"] or "")] = found.get("class") or ""


def test_writes_three_files_into_the_run_dir(written: dict[str, Path], run_dir: Path) -> None:
    assert set(written) == {"json", "junit", "html"}
    assert all(path.parent == run_dir and path.is_file() for path in written.values())


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def test_report_json_validates_and_round_trips_outcomes(written: dict[str, Path]) -> None:
    data = load_report(written["json"])
    outcomes = [[v["outcome"] for v in case["verdicts"]] for case in data["cases"]]
    expected = [[v.outcome.value for v in case.verdicts] for case in build_report().cases]
    assert outcomes == expected
    assert {Outcome(value) for case in outcomes for value in case} >= {Outcome.PASS, Outcome.FAIL, Outcome.NOT_APPLICABLE}
    assert data["iuts"][1]["expected_failures"] == ["TCP-2"]


def test_load_report_rejects_unknown_keys_and_outcomes(written: dict[str, Path]) -> None:
    data = json.loads(written["json"].read_text(encoding="utf-8"))
    data["cases"][0]["verdicts"][0]["outcome"] = "passed"
    data["cases"][0]["surprise"] = True
    written["json"].write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportValidationError, match=r"2 problem\(s\)") as caught:
        load_report(written["json"])
    assert "$.cases[0].verdicts[0].outcome" in str(caught.value)


def test_invalid_report_writes_nothing(tmp_path: Path) -> None:
    report = build_report()
    report.cases[0].verdicts[0].evidence.append(Evidence(kind="video", label="no such kind", text="x"))
    with pytest.raises(ReportValidationError, match="kind"):
        write_reports(report, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_junit_counts_failures_errors_and_skips(written: dict[str, Path]) -> None:
    root = ET.parse(written["junit"]).getroot()
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == ["ref-linux", "faulty-early"]
    counts = {name: tuple(suite.get(key) for key in ("tests", "failures", "errors", "skipped")) for name, suite in suites.items()}
    assert counts == {"ref-linux": ("2", "0", "0", "0"), "faulty-early": ("3", "1", "1", "1")}
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "1", "1")

    failure = suites["faulty-early"].find("testcase/failure")
    assert failure is not None
    assert "TCP-2" in failure.get("message", "") and HOSTILE in failure.get("message", "")
    error = suites["faulty-early"].find("testcase/error")
    assert error is not None and error.get("message") == "RuntimeError: peer vanished"
    out = suites["ref-linux"].find("testcase/system-out")
    assert out is not None and "[warn] TCP-3" in (out.text or "") and "[info] TCP-4" in (out.text or "")
    assert suites["ref-linux"].find("testcase").get("classname") == "ref-linux.tcp.server"


def test_html_has_the_matrix_with_worst_outcomes(written: dict[str, Path]) -> None:
    parser = MatrixCells()
    parser.feed(written["html"].read_text(encoding="utf-8"))
    cells = parser.cells
    assert "o-fail" in cells[("faulty-early", "TCP-2")]
    assert "o-pass" in cells[("ref-linux", "TCP-2")]
    assert "o-warn" in cells[("ref-linux", "TCP-3")]
    assert "o-error" in cells[("faulty-early", "TCP-3")]  # the crashed case left TCP-3 unjudged
    assert "o-not-applicable" in cells[("faulty-early", "TCP-4")]
    assert ("ref-linux", "TCP-5") not in cells  # never judged: only in the coverage table


def test_html_is_self_contained_and_escapes_messages(written: dict[str, Path]) -> None:
    html = written["html"].read_text(encoding="utf-8")
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html
    assert "<?xml" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE not in html
    assert 'href="evidence/idle%20probe.pcap"' in html
    assert "<pre>0.000 connected\n1.002 probe</pre>" in html
    assert "<link" not in html and "src=" not in html


def test_html_explains_a_reference_peers_known_deviations_but_not_planted_faults(written: dict[str, Path]) -> None:
    html = written["html"].read_text(encoding="utf-8")
    section = html[html.index('id="known-deviations"'):]
    section = section[: section.index("</table>")]
    assert 'href="#req-TCP-3"' in section
    assert "sends its probes 0.2 s late &lt;on purpose&gt;" in section
    assert "planted" not in section  # faulty peers are listed with the IUTs, not as findings
    assert json.loads(written["json"].read_text())["iuts"][0]["expected_reasons"] == {
        "TCP-3": "sends its probes 0.2 s late <on purpose>"
    }


def test_html_shows_coverage_of_observable_requirements(written: dict[str, Path]) -> None:
    html = written["html"].read_text(encoding="utf-8")
    assert "80.0%" in html  # TCP-1..4 covered, TCP-5 not, TCP-6 not observable
    assert "4 of 5" in html


def test_svg_evidence_that_is_not_svg_or_escapes_the_run_dir_is_not_inlined(run_dir: Path) -> None:
    (run_dir / "evidence" / "fake.svg").write_text(HOSTILE, encoding="utf-8")
    (run_dir.parent / "outside.svg").write_text(SVG, encoding="utf-8")
    report = build_report()
    report.cases[0].verdicts[1].evidence = [
        Evidence(kind="timeline-svg", label="fake", path="evidence/fake.svg"),
        Evidence(kind="timeline-svg", label="outside", path="../outside.svg"),
    ]
    html = write_reports(report, run_dir)["html"].read_text(encoding="utf-8")
    assert HOSTILE not in html
    assert "is not an SVG image" in html
    assert "points outside the run directory" in html
    assert html.count("<svg") == 1


def test_endings_table_shows_close_codes_and_bare_tcp_ends_per_role():
    from conformance.requirements import catalogue
    from reports.render import endings_table

    verdicts = [
        Verdict("WS-KEEPALIVE-close-code", Outcome.INFO, "m", iut="a", role="server",
                measured={"dead_peer": "silent", "ending": "close", "close_code": 1011, "ending_label": "1011"}),
        Verdict("WS-KEEPALIVE-close-code", Outcome.INFO, "m", iut="a", role="client",
                measured={"dead_peer": "silent", "ending": "fin", "close_code": None, "ending_label": "FIN (1006)"}),
        Verdict("WS-KEEPALIVE-close-code", Outcome.INFO, "m", iut="a", role="client",
                measured={"dead_peer": "crashed", "ending": "fin", "ending_label": "FIN (1006)"}),
        Verdict("WS-KEEPALIVE-close-code", Outcome.INFO, "m", iut="a", role="client",
                measured={"dead_peer": "frozen", "ending": "fin", "ending_label": "FIN (1006)"}),
        Verdict("RFC6455-7.1.7-fail-connection", Outcome.PASS, "m", iut="b", role="server",
                measured={"ending": "TCP RST without a Close frame (the peer sees 1006)", "close_code": None,
                          "ending_label": "RST (1006)"}),
        Verdict("RFC6455-5.5.2-pong-reply", Outcome.PASS, "m", iut="b", role="server", measured={"close_code": 1}),
    ]
    columns, rows = endings_table(verdicts, list(catalogue().values()))
    # Catalogue order between requirements (fail-connection comes first), the catalogue's order inside one.
    assert columns == ["bad control frame", "dead peer: silent", "dead peer: frozen", "dead peer: crashed"]
    assert rows == [("a", ["\u2013", "c: FIN (1006), s: 1011", "c: FIN (1006)", "c: FIN (1006)"]),
                    ("b", ["s: RST (1006)", "\u2013", "\u2013", "\u2013"])]


def test_a_requirement_judged_over_two_protocols_gets_a_matrix_column_in_each(run_dir: Path) -> None:
    report = build_report()
    report.cases = [
        CaseResult(nodeid="conformance/tls/a.py::test_x[p]", title="over TLS", iut="ref-linux", role="server",
                   requirements=["TCP-1"], duration=1.0, protocol="tls",
                   verdicts=[Verdict("TCP-1", Outcome.PASS, "held over TLS")]),
        CaseResult(nodeid="conformance/dtls/a.py::test_x[p]", title="over DTLS", iut="ref-linux", role="server",
                   requirements=["TCP-1"], duration=1.0, protocol="dtls",
                   verdicts=[Verdict("TCP-1", Outcome.FAIL, "broken over DTLS")]),
    ]
    html = write_reports(report, run_dir)["html"].read_text(encoding="utf-8")
    tls, dtls = (html.split(f'<h3 id="matrix-{name}"')[1].split("</table>")[0] for name in ("tls", "dtls"))
    assert "o-pass" in tls and "o-fail" not in tls
    assert "o-fail" in dtls and "o-pass" not in dtls


def test_timing_table_lists_timing_verdicts_per_protocol_with_their_bound_and_picture(run_dir: Path) -> None:
    from reports.render import timing_table

    report = build_report()
    report.catalogue = [dataclasses.replace(r, timing=r.id in ("TCP-1", "TCP-3")) for r in report.catalogue]
    for case in report.cases:
        case.protocol = "tcp"
    tables = timing_table(report)
    assert [protocol for protocol, _ in tables] == ["tcp"]
    rows = tables[0][1]
    # TCP-1 twice (ref and faulty), TCP-3 twice (the errored case's error too); no TCP-2 or TCP-4 rows.
    assert sorted((r.iut, r.requirement) for r in rows) == [("faulty-early", "TCP-1"), ("faulty-early", "TCP-3"),
                                                            ("ref-linux", "TCP-1"), ("ref-linux", "TCP-3")]
    assert next(r for r in rows if r.iut == "faulty-early" and r.requirement == "TCP-3").outcome == "error"
    first = next(r for r in rows if r.iut == "ref-linux" and r.requirement == "TCP-1")
    assert first.tolerance == "+-50 ms" and first.picture == "evidence/timeline.svg"
    assert first.message == "probe sent after 1.00 s" and first.case == "first probe after idle time (ref)"
    known = next(r for r in rows if r.requirement == "TCP-3" and r.iut == "ref-linux")
    assert known.expected_failure and known.outcome == "warn"
    html = render_html(report, run_dir)
    assert 'id="timing-tcp-table"' in html and "Timing against the knobs" in html


def test_recovery_table_shows_each_case_s_time_to_detect_and_to_recover_against_its_threshold(run_dir: Path) -> None:
    from reports.render import recovery_table

    report = build_report()
    picture = [Evidence("timeline-svg", "timeline", path="evidence/loss.svg")]
    report.cases = [
        CaseResult(nodeid="conformance/dots/a.py::test_dead[ref-linux-client-silent]", title="dead server",
                   iut="ref-linux", role="client", requirements=["TCP-1", "TCP-3"], duration=1.0, protocol="dots",
                   verdicts=[Verdict("TCP-1", Outcome.PASS, "detected", measured={"detect_s": 7.94, "threshold_s": 6},
                                     evidence=picture),
                             Verdict("TCP-3", Outcome.PASS, "recovered", measured={"recover_s": 0.07})]),
        CaseResult(nodeid="conformance/dots/a.py::test_other[ref-linux-server]", title="no timing", iut="ref-linux",
                   role="server", requirements=["TCP-1"], duration=1.0, protocol="dots",
                   verdicts=[Verdict("TCP-1", Outcome.PASS, "nothing timed", measured={"detect_s": None})]),
    ]
    tables = recovery_table(report)
    assert [protocol for protocol, _ in tables] == ["dots"]
    (row,) = tables[0][1]  # a case with no figure has no row
    assert (row.case, row.threshold, row.detect, row.recover, row.picture) == \
        ("dead server (silent)", 6.0, 7.94, 0.07, "evidence/loss.svg")
    html = render_html(report, run_dir)
    assert 'id="recovery-dots-table"' in html and "7.94 s" in html and "0.07 s" in html
