"""The requirement catalogue: every rule of the covered sections, with a stable ID.

Each ``*.toml`` file here holds ``[[requirement]]`` tables (id, spec, section, level, summary,
observable, and optional also/note, and ending/ending-order where a verdict tells how a connection ended:
the column of the report's endings table, a template over the verdict's measured values; and timing = true
for a timing rule, whose verdicts the report also lists against the knobs). IDs never change meaning once published.
"""
from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from reports.model import Requirement

HERE = Path(__file__).resolve().parent
LEVELS = {"MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY", "INFO"}


class CatalogueError(ValueError):
    pass


@functools.cache
def catalogue() -> dict[str, Requirement]:
    """Every requirement, by ID, from every file in this folder."""
    found: dict[str, Requirement] = {}
    for path in sorted(HERE.glob("*.toml")):
        protocol = path.stem
        for raw in tomllib.loads(path.read_text())["requirement"]:
            if raw["id"] in found:
                raise CatalogueError(f"{path.name}: requirement {raw['id']} is defined twice")
            if raw["level"] not in LEVELS:
                raise CatalogueError(f"{path.name}: {raw['id']} has level {raw['level']!r}, not one of {sorted(LEVELS)}")
            note = " ".join(x for x in (f"Also {raw['also']}." if raw.get("also") else "", raw.get("note", "")) if x)
            found[raw["id"]] = Requirement(
                id=raw["id"],
                spec=raw["spec"],
                section=raw["section"],
                level=raw["level"],
                summary=raw["summary"],
                protocol=protocol,
                observable=bool(raw.get("observable", True)),
                note=note,
                ending=raw.get("ending", ""),
                ending_order=list(raw.get("ending-order", [])),
                timing=bool(raw.get("timing", False)),
            )
    return found


def get(req_id: str) -> Requirement:
    try:
        return catalogue()[req_id]
    except KeyError:
        raise CatalogueError(f"unknown requirement ID {req_id!r}: add it to conformance/requirements/") from None
