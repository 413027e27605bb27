"""Hostile peers (garbage after the handshake, a 2**63-octet frame header, a message that never ends, a
handshake that never completes, a flood while never reading): the suite ends every case with a clear
verdict, within the case's deadline, and leaves nothing behind. It must neither hang nor crash on what a
peer sends, for every protocol tester."""
from __future__ import annotations

import time

import pytest

from fixtures import engine
from fixtures.peers import faulty_peers, load_manifest
from tests.conftest import verdicts_of

HOSTILE = [p for p in faulty_peers() if load_manifest(p).description.startswith("HOSTILE")]
# One case of each kind, per protocol: frame rules (whole Ping; oversized Ping; Ping between fragments) and
# keepalive timing for WebSocket; probes switched on, traffic postponing them and the probe count for TCP; the
# echo of each datagram size and the echo after a lost datagram or answer for UDP echo; for TLS, the handshake
# with and without the extension, with each heartbeat mode (an invalid one included) and the exchange of Requests;
# the same for DTLS; for SSH, the logins of the request cases and of a keepalive case; for CoAP, pings, ACK and
# RST, and a GET of each type; for CoAP over TCP, the CSM, a Ping and an Empty message; for DOTS, the configuration
# cases and the heartbeat interval.
CASES = {
    "websocket": "same_data or 126_octets or between_fragments or pinged_at_the_interval",
    "tcp": "switched_on_per_connection or traffic_postpones or max_probes_then_drop",
    "udp-echo": "echoed_with_its_data or lost",
    "tls": "exact_copy or only_where_negotiated or heartbeat_modes",
    "dtls": "exact_copy or only_where_negotiated or heartbeat_modes",
    "ssh": "global_requests or channel_requests or live_peer",
    "coap": "matching_reset or never_answered or fits_its_type",
    "coap-tcp": "opens_with_a_csm or pong_with_its_token or empty_message",
    "dots": "announced_and_installed or unacceptable_configuration or negotiated_interval",
}
CLEAR = {"pass", "fail", "warn", "info", "inconclusive", "not-applicable"}
# A case's deadline covers its own run; its teardown (evidence, containers) comes on top.
TEARDOWN_S = 45


@pytest.mark.parametrize("peer", HOSTILE, ids=lambda p: p.parent.name)
def test_hostile_peer_gets_clear_verdicts_within_each_cases_deadline(run_suite, peer):
    protocol = next(iter(load_manifest(peer).protocols))
    started = time.monotonic()
    result, report = run_suite("--iut", str(peer), "-k", CASES[protocol], workers=2)
    took = time.monotonic() - started
    assert report is not None, result.stdout.str()[-2000:]
    assert len(report["cases"]) >= 3, [c["nodeid"] for c in report["cases"]]
    late = [f"{c['nodeid']}: {c['duration']:.0f} s, deadline {c['deadline']}" for c in report["cases"]
            if c["deadline"] is None or c["duration"] > c["deadline"] + TEARDOWN_S]
    assert not late, late
    verdicts = verdicts_of(report)
    unclear = [f"{v['requirement']}: {v['outcome']} {v['message']!r}" for v in verdicts
               if v["outcome"] not in CLEAR or not v["message"].strip()]
    assert not unclear, "\n".join(unclear)
    # The IUT is to blame, and the verdicts say so: none passes everything it asserts.
    assert any(v["outcome"] in ("fail", "inconclusive") for v in verdicts), verdicts
    label = f"{engine.LABEL_RUN}={report['run_id']}"
    assert not engine.client().containers.list(all=True, sparse=True, filters={"label": label})
    assert not engine.client().networks.list(filters={"label": label})
    print(f"{peer.parent.name}: {len(report['cases'])} cases in {took:.0f} s")
