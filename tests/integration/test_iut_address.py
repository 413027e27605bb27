"""--iut-address: cases that need no control of the IUT's container run against a live endpoint."""
from __future__ import annotations

import re
import uuid

import pytest

from fixtures import engine
from fixtures.peers import load_manifest
from tests.conftest import ROOT, engine_available, verdicts_of

pytestmark = pytest.mark.skipif(not engine_available(), reason="no Docker Engine answers")


def _endpoint(peer: str, command: list[str]):
    """Run ``command`` in ``peer``'s image on an internal network of its own; yield (network, address)."""
    cli = engine.client()
    labels = {engine.LABEL_RUN: f"address-test-{uuid.uuid4().hex[:6]}", engine.LABEL_OWNER: engine.owner_id()}
    net = cli.networks.create(f"aliveness-address-{uuid.uuid4().hex[:6]}", internal=True, labels=labels)
    image = load_manifest(ROOT / "peers" / peer / "peer.toml").image()
    box = cli.containers.run(image, command, detach=True, network=net.name, labels=labels)
    box.reload()
    try:
        yield net.name, box.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
    finally:
        engine.remove_labelled(f"{engine.LABEL_RUN}={labels[engine.LABEL_RUN]}")


def probes_answered(message: str) -> int:
    """How many of the tester's probes the endpoint answered, as the verdict says; 0 when it says none."""
    found = re.fullmatch(r"the IUT answered (\d+) of (\d+) probes", message)
    return int(found.group(1)) if found else 0


def test_the_answer_count_is_read_strictly():
    assert probes_answered("the IUT answered 3 of 3 probes") == 3
    # The message for an endpoint that answers nothing contains "answered" too: it must count as none.
    assert probes_answered("the IUT left the tester's probes unanswered") == 0


@pytest.fixture
def live_endpoint():
    """A socat echo server the test starts itself."""
    yield from _endpoint("socat", ["socat", "TCP-LISTEN:7000,fork,reuseaddr", "EXEC:cat"])


@pytest.fixture
def live_websocket_endpoint():
    """A websockets echo server the test starts itself (no keepalive of its own)."""
    yield from _endpoint("websockets", ["python3", "-u", "/usr/local/bin/serve.py", "8765"])


def test_live_endpoint_is_probed_and_the_rest_is_not_applicable(run_suite, live_endpoint):
    network, address = live_endpoint
    result, report = run_suite("--iut-address", f"{address}:7000", "--iut-network", network)
    assert report is not None, result.stdout.str()[-2000:]
    judged = [v for v in verdicts_of(report) if v["outcome"] != "not-applicable"]
    assert [(v["requirement"], v["outcome"]) for v in judged] == [("RFC1122-4.2.3.6-probe-reply", "info")]
    assert probes_answered(judged[0]["message"]) >= 2, judged[0]["message"]
    reasons = {v["message"] for v in verdicts_of(report) if v["outcome"] == "not-applicable"}
    assert any("--iut-address" in r for r in reasons)


def test_live_websocket_endpoint_named_by_its_manifest(run_suite, live_websocket_endpoint):
    """With --iut naming the endpoint's manifest, the WebSocket frame rules run against it; the rest is n/a."""
    network, address = live_websocket_endpoint
    module = ROOT / "conformance" / "websocket" / "rfc6455_s5_5_2_ping_pong.py"
    result, report = run_suite("--iut-address", f"{address}:8765", "--iut-network", network, "--iut", "websockets",
                               str(module), "-k", "same_data")
    assert report is not None, result.stdout.str()[-2000:]
    judged = [v for v in verdicts_of(report) if v["outcome"] != "not-applicable"]
    assert judged and all(v["outcome"] == "pass" for v in judged), judged
    assert {v["requirement"] for v in judged} == {"RFC6455-5.5.2-pong-reply", "RFC6455-5.5.3-echo"}
