"""The project's own tests: units need nothing; integration tests need a Docker Engine."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


def engine_available() -> bool:
    try:
        from fixtures.engine import client

        client()
        return True
    except Exception:
        return False


@pytest.fixture
def run_suite(pytester: pytest.Pytester, tmp_path: Path):
    """Run conformance cases in-process (a nested pytest session) and return the parsed report.json."""
    if not engine_available():
        pytest.skip("no Docker Engine answers: integration tests need one")

    def run(*args: str, workers: int = 0) -> tuple[pytest.RunResult, dict | None]:
        report_dir = tmp_path / "runs"
        run_id = f"nested-{uuid.uuid4().hex[:8]}"  # parallel nested runs must not share a run label
        # The whole suite unless the caller names modules (a module path alone must not drag in the rest).
        named = any(str(a).endswith(".py") or "::" in str(a) for a in args)
        result = pytester.runpytest_inprocess(
            *(() if named else (str(ROOT / "conformance"),)),
            f"--rootdir={ROOT}",
            "-c", str(ROOT / "tox.ini"),
            "-p", "no:cacheprovider",
            "--report-dir", str(report_dir),
            "--run-id", run_id,
            *(("-n", str(workers)) if workers else ()),
            *args,
        )
        report = report_dir / run_id / "report.json"
        return result, json.loads(report.read_text()) if report.exists() else None

    return run


def verdicts_of(report: dict) -> list[dict]:
    return [verdict for case in report["cases"] for verdict in case["verdicts"]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first: the reference-peer runs go out to workers before the short tests fill the gaps."""
    items.sort(key=lambda item: 0 if "test_reference_peers" in item.nodeid else 1)
