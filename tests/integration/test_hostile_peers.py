"""Hostile WebSocket servers (garbage after the handshake, a 2**63-octet frame header, a message that
never ends, a handshake that never completes): the suite ends every case with a clear verdict, within
a bounded time, and leaves nothing behind. It must neither hang nor crash on what a peer sends."""
from __future__ import annotations

import time

import pytest

from fixtures import engine
from fixtures.peers import faulty_peers, load_manifest
from tests.conftest import verdicts_of

HOSTILE = [p for p in faulty_peers() if load_manifest(p).description.startswith("HOSTILE")]
# One case of each kind: frame rules (whole Ping; oversized Ping; Ping between fragments) and keepalive timing.
CASES = "same_data or 126_octets or between_fragments or pinged_at_the_interval"
CLEAR = {"pass", "fail", "warn", "info", "inconclusive", "not-applicable"}
# Each case has its own bounds (handshake 5 s, replies 2-5 s, keepalive watch ~13 s); with set-up and
# a loaded machine, the four together stay far below this.
BOUND_S = 150


@pytest.mark.parametrize("peer", HOSTILE, ids=lambda p: p.parent.name)
def test_hostile_server_gets_clear_verdicts_in_bounded_time(run_suite, peer):
    started = time.monotonic()
    result, report = run_suite("--iut", str(peer), "-k", CASES, workers=2)
    took = time.monotonic() - started
    assert report is not None, result.stdout.str()[-2000:]
    assert took < BOUND_S, f"{peer.parent.name}: the run took {took:.0f} s"
    assert len(report["cases"]) >= 4, [c["nodeid"] for c in report["cases"]]
    verdicts = verdicts_of(report)
    unclear = [f"{v['requirement']}: {v['outcome']} {v['message']!r}" for v in verdicts
               if v["outcome"] not in CLEAR or not v["message"].strip()]
    assert not unclear, "\n".join(unclear)
    # The IUT is to blame, and the verdicts say so: none passes everything it asserts.
    assert any(v["outcome"] in ("fail", "inconclusive") for v in verdicts), verdicts
    label = f"{engine.LABEL_RUN}={report['run_id']}"
    assert not engine.client().containers.list(all=True, sparse=True, filters={"label": label})
    assert not engine.client().networks.list(filters={"label": label})
