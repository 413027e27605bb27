"""Over IPv6 (--ip-version 6): one TCP keep-alive case with a probe-dropping fault, and WebSocket cases with a
blackhole, pass on reference peers; capture, faults (ip6 rules) and the socket watch all see IPv6."""
from __future__ import annotations

import ipaddress
from pathlib import Path

from tests.conftest import ROOT, verdicts_of

CASES = "(max_probes_then_drop and openssh) or (same_data and websockets-server) or (blackholed and websockets-server)"


def test_tcp_and_websocket_cases_over_ipv6(run_suite):
    result, report = run_suite("--ip-version", "6", "--iut", "openssh", "--iut", "websockets",
                               str(ROOT / "conformance" / "tcp" / "rfc9643_keepalive_knobs.py"),
                               str(ROOT / "conformance" / "websocket"), "-k", CASES, workers=3)
    assert report is not None, result.stdout.str()[-2000:]
    assert report["options"]["ip_version"] == 6
    assert len(report["cases"]) == 3, [c["nodeid"] for c in report["cases"]]
    judged = [(v["requirement"], v["outcome"], v["message"]) for v in verdicts_of(report)]
    assert judged and all(outcome in ("pass", "info") for _, outcome, _ in judged), judged
    assert ("RFC9643-keepalives-max-probes", "pass") in {(r, o) for r, o, _ in judged}
    timelines = list((report_dir(result) / "cases").glob("*/*/*/timeline.txt"))  # IUT, module, case
    assert len(timelines) == 3, timelines
    for path in timelines:
        hosts = {word for line in path.read_text().splitlines() for word in line.split()[1:4:2]}
        assert hosts and all(ipaddress.ip_address(h).version == 6 for h in hosts), (path, path.read_text()[:300])


def report_dir(result) -> Path:
    line = next(ln for ln in result.stdout.lines if ln.startswith("aliveness report: "))
    return Path(line.split(": ", 1)[1]).parent
