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


# Rough minutes of the nested suite runs, as CI's --durations showed them: keepalive timing modules run for
# minutes, frame and handshake rules for seconds. Only the order depends on it.
SLOW_FIRST = (
    ("test_reference_peers", "rfc6520_s2_s4_over_dtls", 0), ("test_reference_peers", "keepalive_timing", 0),
    ("test_reference_peers", "rfc9132_s4_7_session_loss", 0), ("test_reference_peers", "rfc9643", 1),
    ("test_reference_peers", "rfc9644_keepalives", 1), ("test_reference_peers", "rfc7252_s4_8", 1),
    ("test_reference_peers", "rfc9293", 2), ("test_faulty_peers", "[coap-client-", 2), ("test_faulty_peers", "[coap-notify-", 2),
    ("test_faulty_peers", "retry-floor", 2), ("test_faulty_peers", "[udp-", 3), ("test_reference_peers", "rfc6520", 4),
    ("test_reference_peers", "rfc9645", 4), ("test_reference_peers", "rfc9644", 4), ("test_reference_peers", "rfc9132", 4),
    ("test_hostile_peers", "[ssh-", 4), ("test_faulty_peers", "KEEPALIVE", 5), ("test_faulty_peers", "[ka-", 5),
    ("test_reference_peers", "", 6), ("test_hostile_peers", "", 7), ("test_faulty_peers", "", 8), ("integration", "", 9),
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first: the nested runs that take minutes go out to workers before the short tests fill the gaps,
    so that no worker is left with a long one at the end while the others idle."""

    def rank(item: pytest.Item) -> int:
        return next((r for module, part, r in SLOW_FIRST if module in item.nodeid and part in item.nodeid), 10)

    items.sort(key=rank)
