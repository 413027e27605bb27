"""Report renderers: one RunReport in, report.json + junit.xml + a self-contained report.html out.

This module owns every file of a run directory that is not evidence. report.json is the
machine-readable record (checked against report.schema.json before it is written), junit.xml is
for CI dashboards, and report.html is for people who have never seen the project.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
from markupsafe import Markup

from reports.model import SEVERITY, CaseResult, Evidence, IutInfo, Outcome, Requirement, RunReport, Verdict, worst

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
TEMPLATE_DIR = Path(__file__).with_name("templates")
HTML_TEMPLATE = "report.html.j2"

# Shown at most this many schema problems in one error message; the rest are only counted.
_MAX_SCHEMA_ERRORS = 20


class ReportValidationError(ValueError):
    """A report that cannot be written as, or read back from, schema-valid strict JSON."""


# --------------------------------------------------------------------------- report.json


def report_to_dict(report: RunReport) -> dict[str, Any]:
    """The report as plain JSON-ready data: dataclasses become dicts, enums their values."""
    return dataclasses.asdict(report, dict_factory=_plain_dict)


def _plain_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value.value if isinstance(value, enum.Enum) else value for key, value in pairs}


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_report_dict(data: Any, source: str = "report") -> None:
    """Raise ReportValidationError listing every place where `data` breaks report.schema.json."""
    errors = sorted(_validator().iter_errors(data), key=lambda error: error.json_path)
    if not errors:
        return
    lines = [f"  {error.json_path}: {error.message}" for error in errors[:_MAX_SCHEMA_ERRORS]]
    if len(errors) > _MAX_SCHEMA_ERRORS:
        lines.append(f"  ... and {len(errors) - _MAX_SCHEMA_ERRORS} more")
    raise ReportValidationError(f"{source} does not match {SCHEMA_PATH.name} ({len(errors)} problem(s)):\n" + "\n".join(lines))


def report_json_text(report: RunReport) -> str:
    """report.json's content; raises ReportValidationError before anything is written."""
    try:
        text = json.dumps(report_to_dict(report), indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ReportValidationError(f"report is not expressible as strict JSON: {exc}") from exc
    # Validate what a reader will parse (tuples became lists, and so on), not the Python objects.
    validate_report_dict(json.loads(text))
    return text + "\n"


def load_report(path: Path) -> dict[str, Any]:
    """Read a report.json and check it against the schema."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    validate_report_dict(data, source=str(path))
    return data


# --------------------------------------------------------------------------- shared helpers


def _iut_infos(report: RunReport) -> list[IutInfo]:
    """The declared IUTs, then a bare entry for any IUT that only appears in a case or a verdict."""
    declared = {info.name for info in report.iuts}
    named = [case.iut for case in report.cases] + [v.iut for case in report.cases for v in case_verdicts(case)]
    return list(report.iuts) + [IutInfo(name=name, manifest="") for name in dict.fromkeys(named) if name not in declared]


def case_verdicts(case: CaseResult) -> list[Verdict]:
    """A case's verdicts with IUT/role/case filled in from the case where the verdict left them blank.

    A case that errored also gets an error verdict for each requirement it named but never judged,
    so that a crash shows up in the matrix instead of as a silent gap.
    """
    label = case.title or case.nodeid
    filled = [
        dataclasses.replace(verdict, iut=verdict.iut or case.iut, role=verdict.role or case.role, case=verdict.case or label)
        for verdict in case.verdicts
    ]
    if case.error:
        judged = {verdict.requirement for verdict in filled}
        filled += [
            Verdict(
                requirement=requirement,
                outcome=Outcome.ERROR,
                message="the case stopped with an error before judging this requirement (see Test cases)",
                case=label,
                iut=case.iut,
                role=case.role,
            )
            for requirement in dict.fromkeys(case.requirements)
            if requirement not in judged
        ]
    return filled


def _xml_safe(text: str) -> str:
    """Replace characters XML 1.0 cannot carry (NUL and other controls from raw packet data)."""
    return re.sub("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "\ufffd", text)


# --------------------------------------------------------------------------- junit.xml


def _junit_tree(report: RunReport) -> ET.ElementTree:
    """JUnit XML: one <testsuite> per IUT, one <testcase> per CaseResult."""
    protocols = {requirement.id: requirement.protocol for requirement in report.catalogue}
    root = _element("testsuites", name=f"aliveness {report.run_id}")
    for info in _iut_infos(report):
        cases = [case for case in report.cases if case.iut == info.name]
        root.append(_junit_suite(report, info, cases, protocols))
    for counter in ("tests", "failures", "errors", "skipped"):
        root.set(counter, str(sum(int(suite.get(counter, "0")) for suite in root)))
    root.set("time", _seconds(sum(case.duration for case in report.cases)))
    ET.indent(root)
    return ET.ElementTree(root)


def _element(tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.Element(tag, {key: _xml_safe(value) for key, value in attrs.items()})
    if text:
        element.text = _xml_safe(text)
    return element


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _junit_suite(report: RunReport, info: IutInfo, cases: list[CaseResult], protocols: dict[str, str]) -> ET.Element:
    suite = _element("testsuite", name=info.name, timestamp=report.started, time=_seconds(sum(c.duration for c in cases)))
    if "hostname" in report.host:
        suite.set("hostname", _xml_safe(report.host["hostname"]))
    properties = ET.SubElement(suite, "properties")
    facts = {
        "run_id": report.run_id,
        "suite_version": report.suite_version,
        "manifest": info.manifest,
        "image": info.image,
        "version": info.version,
        "faulty": str(info.faulty).lower(),
        "expected_failures": " ".join(info.expected_failures),
    }
    for name, value in facts.items():
        properties.append(_element("property", name=name, value=value))
    counts = dict.fromkeys(("failure", "error", "skipped"), 0)
    for case in cases:
        status = junit_status(case)
        if status in counts:
            counts[status] += 1
        suite.append(_junit_case(case, status, set(info.expected_failures), protocols))
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    return suite


def junit_status(case: CaseResult) -> str:
    """How JUnit sees a case: "error", "failure", "skipped" (nothing applicable was judged) or "passed"."""
    outcomes = {verdict.outcome for verdict in case.verdicts}
    if case.error or Outcome.ERROR in outcomes:
        return "error"
    if Outcome.FAIL in outcomes:
        return "failure"
    if outcomes <= {Outcome.NOT_APPLICABLE}:
        return "skipped"
    return "passed"


def _junit_classname(case: CaseResult, protocols: dict[str, str]) -> str:
    judged = case.requirements + [verdict.requirement for verdict in case.verdicts]
    protocol = next((protocols[rid] for rid in judged if protocols.get(rid)), "")
    # Dots separate packages in JUnit viewers, so keep each part free of them.
    parts = [part.replace(".", "_") for part in (case.iut, protocol, case.role) if part]
    return ".".join(parts)


def _verdict_line(verdict: Verdict, expected: set[str]) -> str:
    violated = verdict.outcome in (Outcome.FAIL, Outcome.WARN)
    note = " (expected failure for this IUT)" if violated and verdict.requirement in expected else ""
    return f"{verdict.requirement}: {verdict.message}{note}"


def _verdict_detail(verdict: Verdict, expected: set[str]) -> str:
    lines = [f"[{verdict.outcome.value}] {_verdict_line(verdict, expected)}"]
    if verdict.measured:
        lines.append("  measured: " + ", ".join(f"{key}={_format_value(value)}" for key, value in verdict.measured.items()))
    if verdict.tolerance:
        lines.append(f"  tolerance: {verdict.tolerance}")
    return "\n".join(lines)


def _last_line(text: str | None) -> str:
    """The last non-blank line of an error text: where Python puts the exception itself."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _junit_case(case: CaseResult, status: str, expected: set[str], protocols: dict[str, str]) -> ET.Element:
    title = f"{case.title} [{case.nodeid}]" if case.title else case.nodeid
    element = _element("testcase", name=title, classname=_junit_classname(case, protocols), time=_seconds(case.duration))

    def picked(*outcomes: Outcome) -> list[Verdict]:
        return [verdict for verdict in case.verdicts if verdict.outcome in outcomes]

    if status == "error":
        message = _last_line(case.error) or "; ".join(_verdict_line(v, expected) for v in picked(Outcome.ERROR))
        details = [case.error or ""] + [_verdict_detail(v, expected) for v in picked(Outcome.ERROR, Outcome.FAIL)]
        element.append(_element("error", "\n".join(filter(None, details)), message=message, type="error"))
    elif status == "failure":
        failures = picked(Outcome.FAIL)
        message = "; ".join(_verdict_line(verdict, expected) for verdict in failures)
        details = "\n".join(_verdict_detail(verdict, expected) for verdict in failures)
        element.append(_element("failure", details, message=message, type="fail"))
    elif status == "skipped":
        reasons = [_verdict_line(verdict, expected) for verdict in case.verdicts]
        element.append(_element("skipped", message="; ".join(reasons) or "no verdict was recorded"))
    remarks = picked(Outcome.WARN, Outcome.INFO, Outcome.INCONCLUSIVE)
    if remarks:
        element.append(_element("system-out", "\n".join(_verdict_detail(verdict, expected) for verdict in remarks)))
    return element


# --------------------------------------------------------------------------- report.html: view model


@dataclass(frozen=True)
class EvidenceView:
    """One evidence item as the page shows it; `problem` explains why a file is not shown."""

    kind: str
    label: str
    href: str | None = None
    svg: Markup | None = None
    text: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class VerdictView:
    """A verdict with its measured values formatted and its evidence resolved."""

    verdict: Verdict
    outcome: str
    measured: list[tuple[str, str]]
    evidence: list[EvidenceView]
    expected_failure: bool


@dataclass(frozen=True)
class Cell:
    """One IUT x requirement square of the matrix (outcome None: not judged)."""

    requirement: str
    anchor: str
    outcome: str | None
    title: str
    expected_failure: bool


@dataclass(frozen=True)
class Section:
    """A judged requirement and every verdict about it, grouped by IUT."""

    requirement: Requirement
    anchor: str
    in_catalogue: bool
    verdicts: list[VerdictView]


@dataclass(frozen=True)
class CoverageRow:
    """A catalogue requirement, whether any case covered it, and its worst outcome."""

    requirement: Requirement
    anchor: str
    covered: bool
    outcome: str | None


@dataclass(frozen=True)
class CaseRow:
    """A test case with the worst outcome of its verdicts."""

    case: CaseResult
    outcome: str | None


def _format_value(value: Any) -> str:
    """A measured value as a short human string (floats to 6 significant digits, containers as JSON)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _known_deviations(infos: list[IutInfo], judged: set[str]) -> list[tuple[str, str, str | None, str]]:
    """(IUT, requirement, its section's anchor if this run judged it, the manifest's reason) for every
    requirement a reference peer's manifest says it misses; faulty peers' planted bugs are not findings."""
    return [
        (info.name, rid, _anchor(rid) if _anchor(rid) in judged else None, why)
        for info in infos
        if not info.faulty
        for rid, why in info.expected_reasons.items()
    ]


def _anchor(requirement_id: str) -> str:
    """An HTML id for a requirement's section."""
    return "req-" + re.sub(r"[^A-Za-z0-9_.-]", "-", requirement_id)


def _elapsed(started: str, finished: str) -> str | None:
    """The run's wall-clock length, or None when the timestamps are not comparable ISO 8601."""
    try:
        delta = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    except (TypeError, ValueError):
        return None
    return f"{delta.total_seconds():.1f} s"


def _inside(run_dir: Path, relative: str) -> Path | None:
    """The evidence file's path if it stays inside the run directory."""
    target = (run_dir / relative).resolve()
    return target if target.is_relative_to(run_dir.resolve()) else None


_SVG_PROLOG = re.compile(r"\A\s*(?:<\?xml.*?\?>\s*)?(?:<!--.*?-->\s*)*(?:<!DOCTYPE[^>]*>\s*)?(?:<!--.*?-->\s*)*", re.S)


def _inline_svg(text: str) -> Markup | None:
    """The SVG markup without its XML prolog, trusted for inlining only if it starts with an <svg> tag."""
    body = _SVG_PROLOG.sub("", text, count=1)
    return Markup(body) if re.match(r"<svg[\s>/]", body) else None


def _evidence_view(evidence: Evidence, run_dir: Path) -> EvidenceView:
    """How one Evidence shows up: an inlined SVG, a relative link, and/or collapsible text."""
    view = EvidenceView(kind=evidence.kind, label=evidence.label or evidence.kind, text=evidence.text)
    if not evidence.path:
        return view
    target = _inside(run_dir, evidence.path)
    if target is None:
        return dataclasses.replace(view, problem=f"{evidence.path} points outside the run directory")
    view = dataclasses.replace(view, href=urllib.parse.quote(evidence.path.replace("\\", "/")))
    if not target.is_file():
        return dataclasses.replace(view, problem=f"{evidence.path} is missing")
    if evidence.kind != "timeline-svg":
        return view
    svg = _inline_svg(target.read_text(encoding="utf-8", errors="replace"))
    if svg is None:
        return dataclasses.replace(view, problem=f"{evidence.path} is not an SVG image; not inlined")
    return dataclasses.replace(view, svg=svg)


def _verdict_view(verdict: Verdict, run_dir: Path, expected: dict[str, set[str]]) -> VerdictView:
    return VerdictView(
        verdict=verdict,
        outcome=verdict.outcome.value,
        measured=[(str(key), _format_value(value)) for key, value in verdict.measured.items()],
        evidence=[_evidence_view(evidence, run_dir) for evidence in verdict.evidence],
        expected_failure=verdict.requirement in expected.get(verdict.iut, set()),
    )


def _columns(report: RunReport, judged: list[str]) -> list[tuple[Requirement, bool]]:
    """Judged requirements in catalogue order, then judged IDs the catalogue lacks (flag False)."""
    catalogued = [(requirement, True) for requirement in report.catalogue if requirement.id in judged]
    known = {requirement.id for requirement in report.catalogue}
    strays = [
        (Requirement(id=rid, spec="", section="", level="", summary="(not in the catalogue)", protocol=""), False)
        for rid in sorted(judged)
        if rid not in known
    ]
    return catalogued + strays


def _outcome_value(outcomes: list[Outcome]) -> str | None:
    found = worst(outcomes)
    return found.value if found else None


def _cell(requirement_id: str, verdicts: list[Verdict], expected_failure: bool) -> Cell:
    lines = [f"{v.outcome.value}: {v.message} ({v.case})" for v in verdicts]
    if expected_failure:
        lines.append("(expected to fail: this IUT carries a deliberate fault)")
    return Cell(
        requirement=requirement_id,
        anchor=_anchor(requirement_id),
        outcome=_outcome_value([v.outcome for v in verdicts]),
        title="\n".join(lines),
        expected_failure=expected_failure,
    )


def _coverage(report: RunReport, by_requirement: dict[str, list[Verdict]]) -> dict[str, Any]:
    covered_ids = {rid for case in report.cases for rid in case.requirements} | set(by_requirement)
    rows = [
        CoverageRow(
            requirement=requirement,
            anchor=_anchor(requirement.id),
            covered=requirement.id in covered_ids,
            outcome=_outcome_value([v.outcome for v in by_requirement.get(requirement.id, [])]),
        )
        for requirement in report.catalogue
    ]
    observable = [row for row in rows if row.requirement.observable]
    covered = [row for row in observable if row.covered]
    percent = f"{100 * len(covered) / len(observable):.1f}%" if observable else "n/a"
    return {"rows": rows, "observable": len(observable), "covered": len(covered), "percent": percent}


def endings_table(
    verdicts: list[Verdict], catalogue: list[Requirement]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Columns and rows (IUT, cells) of the observed connection endings, per role.

    A verdict goes in the table when its requirement names an endings column (``ending``, a template
    over the measured values) and it measured an ``ending_label`` (a Close code, a bare TCP end, ...).
    Columns follow the catalogue, each requirement's ``ending_order``, then first appearance.
    """
    templates = {requirement.id: (index, requirement) for index, requirement in enumerate(catalogue) if requirement.ending}
    cells: dict[tuple[str, str], set[str]] = defaultdict(set)
    columns: dict[str, tuple[int, int, int]] = {}
    iuts: list[str] = []
    for v in verdicts:
        found = templates.get(v.requirement)
        label = v.measured.get("ending_label")
        if found is None or not label:
            continue
        index, requirement = found
        name = requirement.ending.format_map(defaultdict(str, {k: _format_value(x) for k, x in v.measured.items()}))
        order = requirement.ending_order.index(name) if name in requirement.ending_order else len(requirement.ending_order)
        columns.setdefault(name, (index, order, len(columns)))
        if v.iut not in iuts:
            iuts.append(v.iut)
        cells[(v.iut, name)].add(f"{v.role[:1]}: {label}" if v.role else str(label))
    ordered = sorted(columns, key=columns.__getitem__)
    rows = [(iut, [", ".join(sorted(cells[(iut, c)])) or "\u2013" for c in ordered]) for iut in iuts]
    return ordered, rows


@dataclass(frozen=True)
class TimingRow:
    """One timing verdict as the timing table shows it: what was measured against which bound."""

    iut: str
    role: str
    case: str
    requirement: str
    anchor: str
    outcome: str
    message: str
    tolerance: str
    picture: str | None  # the case's timeline picture (relative link)
    expected_failure: bool


def timing_table(report: RunReport) -> list[tuple[str, list[TimingRow]]]:
    """Per protocol, every verdict on a timing requirement (catalogue ``timing = true``): the IUT, the case
    and its variant, what the case measured against its knobs, the bound it held it to, and the picture."""
    timing = {requirement.id for requirement in report.catalogue if requirement.timing}
    expected = {info.name: set(info.expected_failures) for info in _iut_infos(report)}
    tables: dict[str, list[TimingRow]] = defaultdict(list)
    for case in report.cases:
        variant = case.nodeid.rpartition("[")[2].rstrip("]") if case.nodeid.endswith("]") else ""
        prefix = f"{case.iut}-{case.role}"
        variant = variant[len(prefix):].lstrip("-") if variant.startswith(prefix) else variant
        for verdict in case_verdicts(case):
            if verdict.requirement not in timing or verdict.outcome is Outcome.NOT_APPLICABLE:
                continue
            picture = next((e.path for e in verdict.evidence if e.kind == "timeline-svg" and e.path), None)
            tables[case.protocol or "other"].append(TimingRow(
                iut=verdict.iut, role=verdict.role, case=case.title + (f" ({variant})" if variant else ""),
                requirement=verdict.requirement, anchor=_anchor(verdict.requirement), outcome=verdict.outcome.value,
                message=verdict.message, tolerance=verdict.tolerance or "",
                picture=urllib.parse.quote(picture.replace("\\", "/")) if picture else None,
                expected_failure=verdict.requirement in expected.get(verdict.iut, set())))
    return sorted(tables.items())


@dataclass(frozen=True)
class RecoveryRow:
    """One case that measured how long the IUT took to notice a dead peer and to have a working session again."""

    iut: str
    role: str
    case: str
    threshold: float | None  # what the knobs allow before a peer counts as dead (e.g. missing x interval), seconds
    detect: float | None  # from the fault to the IUT acting on it, seconds
    recover: float | None  # from the IUT's new attempt to a working session, seconds
    picture: str | None


def recovery_table(report: RunReport) -> list[tuple[str, list[RecoveryRow]]]:
    """Per protocol, every case whose verdicts measured a time to detect (``detect_s``) or to recover
    (``recover_s``), with the threshold its knobs set (``threshold_s``), one row per case."""
    tables: dict[str, list[RecoveryRow]] = defaultdict(list)
    for case in report.cases:
        found: dict[str, float] = {}
        picture = None
        for verdict in case_verdicts(case):
            for key in ("threshold_s", "detect_s", "recover_s"):
                if isinstance(verdict.measured.get(key), (int, float)):
                    found.setdefault(key, float(verdict.measured[key]))
            picture = picture or next((e.path for e in verdict.evidence if e.kind == "timeline-svg" and e.path), None)
        if "detect_s" not in found and "recover_s" not in found:
            continue
        variant = case.nodeid.rpartition("[")[2].rstrip("]") if case.nodeid.endswith("]") else ""
        prefix = f"{case.iut}-{case.role}"
        variant = variant[len(prefix):].lstrip("-") if variant.startswith(prefix) else variant
        tables[case.protocol or "other"].append(RecoveryRow(
            iut=case.iut, role=case.role, case=case.title + (f" ({variant})" if variant else ""),
            threshold=found.get("threshold_s"), detect=found.get("detect_s"), recover=found.get("recover_s"),
            picture=urllib.parse.quote(picture.replace("\\", "/")) if picture else None))
    return sorted(tables.items())


def _html_context(report: RunReport, run_dir: Path) -> dict[str, Any]:
    """Everything report.html.j2 needs, precomputed so the template only lays it out."""
    infos = _iut_infos(report)
    verdicts = [verdict for case in report.cases for verdict in case_verdicts(case)]
    expected = {info.name: set(info.expected_failures) for info in infos}
    order = {info.name: index for index, info in enumerate(infos)}
    by_requirement: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in sorted(verdicts, key=lambda v: order[v.iut]):
        by_requirement[verdict.requirement].append(verdict)
    columns = _columns(report, list(by_requirement))
    # One matrix per protocol the cases tested (a requirement judged over TLS and over DTLS gets a column in
    # each): its requirements, and only the IUTs judged on at least one of them. Cases that name no protocol
    # go by their requirement's catalogue file.
    home = {requirement.id: requirement.protocol for requirement, _ in columns}
    tested: dict[str, dict[str, list[Verdict]]] = defaultdict(lambda: defaultdict(list))
    for case in report.cases:
        for verdict in case_verdicts(case):
            tested[case.protocol or home.get(verdict.requirement, "")][verdict.requirement].append(verdict)
    matrices = []
    for protocol in sorted(tested, key=lambda p: min(i for i, (r, _) in enumerate(columns) if r.id in tested[p])):
        judged = tested[protocol]
        own = [(requirement, flag) for requirement, flag in columns if requirement.id in judged]
        ids = {requirement.id for requirement, _ in own}
        rows = [
            (info, [_cell(requirement.id, [v for v in judged[requirement.id] if v.iut == info.name],
                          requirement.id in expected[info.name]) for requirement, _ in own])
            for info in infos
            if any(v.iut == info.name for rid in ids for v in judged[rid])
        ]
        specs = sorted({requirement.spec for requirement, _ in own if requirement.spec})
        matrices.append({
            "protocol": protocol or "other",
            "anchor": f"matrix-{protocol or 'other'}",
            "specs": ", ".join(specs),
            "columns": [(requirement, _anchor(requirement.id)) for requirement, _ in own],
            "rows": rows,
            "not_applicable": sum(v.outcome is Outcome.NOT_APPLICABLE for rid in ids for v in judged[rid]),
        })
    sections = [
        Section(
            requirement=requirement,
            anchor=_anchor(requirement.id),
            in_catalogue=in_catalogue,
            verdicts=[_verdict_view(v, run_dir, expected) for v in by_requirement[requirement.id]],
        )
        for requirement, in_catalogue in columns
    ]
    counts = {outcome: sum(v.outcome is outcome for v in verdicts) for outcome in SEVERITY}
    return {
        "report": report,
        "elapsed": _elapsed(report.started, report.finished),
        "options": [(str(key), _format_value(value)) for key, value in report.options.items()],
        "summary": [(outcome.value, count) for outcome, count in counts.items()],
        "total_verdicts": len(verdicts),
        "iuts": infos,
        "columns": [(requirement, _anchor(requirement.id)) for requirement, _ in columns],
        "matrices": matrices,
        "endings": endings_table(verdicts, report.catalogue),
        "timing": timing_table(report),
        "recovery": recovery_table(report),
        "deviations": _known_deviations(infos, {section.anchor for section in sections}),
        "sections": sections,
        "cases": [CaseRow(case, _outcome_value([v.outcome for v in case_verdicts(case)])) for case in report.cases],
        "coverage": _coverage(report, by_requirement),
    }


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: RunReport, run_dir: Path) -> str:
    """report.html's content: one page with no external assets (SVG evidence is inlined)."""
    return _environment().get_template(HTML_TEMPLATE).render(_html_context(report, run_dir))


# --------------------------------------------------------------------------- entry point


def write_reports(report: RunReport, run_dir: Path) -> dict[str, Path]:
    """Write report.json, junit.xml and report.html into run_dir; return their paths by format.

    Nothing is written when the report does not match the schema (ReportValidationError).
    """
    run_dir = Path(run_dir)
    json_text = report_json_text(report)
    paths = {"json": run_dir / "report.json", "junit": run_dir / "junit.xml", "html": run_dir / "report.html"}
    paths["json"].write_text(json_text, encoding="utf-8")
    _junit_tree(report).write(paths["junit"], encoding="utf-8", xml_declaration=True)
    paths["html"].write_text(render_html(report, run_dir), encoding="utf-8")
    return paths
