"""The verdict model: what a conformance case records and what every report renders.

Plain dataclasses with no I/O, so renderers and the project's tests can build them by hand.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """Verdict outcomes, graded by the RFC keyword of the requirement (see DESIGN.md)."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    NOT_APPLICABLE = "not-applicable"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"

    @property
    def is_problem(self) -> bool:
        """True for outcomes that make a run (or a JUnit test case) red."""
        return self in (Outcome.FAIL, Outcome.ERROR)


# Order used when several verdicts for one requirement are folded into one cell: worst first.
SEVERITY = [
    Outcome.ERROR,
    Outcome.FAIL,
    Outcome.WARN,
    Outcome.INCONCLUSIVE,
    Outcome.PASS,
    Outcome.INFO,
    Outcome.NOT_APPLICABLE,
]


def worst(outcomes: list[Outcome]) -> Outcome | None:
    """The most severe outcome of a list (None for an empty list)."""
    ranked = sorted(outcomes, key=SEVERITY.index)
    return ranked[0] if ranked else None


@dataclass(frozen=True)
class Requirement:
    """One catalogued rule: a stable ID, where it comes from, and how binding it is."""

    id: str
    spec: str
    section: str
    level: str  # MUST, MUST NOT, SHOULD, SHOULD NOT, MAY, INFO
    summary: str
    protocol: str
    observable: bool = True
    note: str = ""
    # Where a verdict on this requirement tells how a connection ended (measured "ending_label"): the column
    # of the report's endings table, a template over the verdict's measured values, and the columns' order.
    ending: str = ""
    ending_order: list[str] = field(default_factory=list)
    # A timing rule (a keepalive interval, a detection time): its verdicts also go in the report's timing table.
    timing: bool = False

    @property
    def failing_outcome(self) -> Outcome:
        """The outcome a violation of this requirement earns (MUST -> fail, SHOULD -> warn, else info)."""
        if self.level.startswith("MUST") or self.level in ("REQUIRED", "SHALL", "SHALL NOT"):
            return Outcome.FAIL
        if self.level.startswith("SHOULD") or self.level in ("RECOMMENDED", "NOT RECOMMENDED"):
            return Outcome.WARN
        return Outcome.INFO


@dataclass
class Evidence:
    """A file (path relative to the run directory) or a short text backing a verdict."""

    kind: str  # "pcap", "timeline-svg", "log", "events", "text"
    label: str
    path: str | None = None
    text: str | None = None


@dataclass
class Verdict:
    """The result of checking one requirement in one case against one IUT."""

    requirement: str
    outcome: Outcome
    message: str
    case: str = ""
    iut: str = ""
    role: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    tolerance: str | None = None
    evidence: list[Evidence] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


@dataclass
class IutInfo:
    """Identity of one implementation under test as the report shows it."""

    name: str
    manifest: str
    description: str = ""
    image: str = ""
    version: str = ""
    faulty: bool = False
    expected_failures: list[str] = field(default_factory=list)
    # requirement ID -> the manifest's reason (for a reference peer: a known deviation, with its evidence)
    expected_reasons: dict[str, str] = field(default_factory=dict)


@dataclass
class CaseResult:
    """One pytest test item: its verdicts, plus the pytest outcome and timing."""

    nodeid: str
    title: str
    iut: str
    role: str
    requirements: list[str]
    duration: float
    verdicts: list[Verdict] = field(default_factory=list)
    error: str | None = None
    deadline: float | None = None  # seconds the case was allowed to run once its world was up (None: unknown)
    protocol: str = ""  # the manifest section the case tested


@dataclass
class RunReport:
    """Everything one run produced; report.json is `asdict` of this (see reports/report.schema.json)."""

    run_id: str
    suite_version: str
    started: str
    finished: str
    host: dict[str, str]
    iuts: list[IutInfo]
    cases: list[CaseResult]
    catalogue: list[Requirement]
    options: dict[str, Any] = field(default_factory=dict)
