"""Manifest validation: every mistake gets one message naming the file, the problem and the fix."""
from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.errors import ManifestError
from fixtures.peers import faulty_peers, load_manifest, reference_peers, resolve_iut

GOOD = """
description = "test peer"
[image]
name = "example/peer:1"
[tcp]
features = ["keepalive"]
[tcp.server]
port = 7000
command = "serve {port}"
keepalive-command = "serve {port} --idle {idle-time} --intvl {probe-interval} --cnt {max-probes}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "peer.toml"
    path.write_text(text)
    return path


def test_a_good_manifest_loads(tmp_path):
    manifest = load_manifest(write(tmp_path, GOOD))
    spec = manifest.role("tcp", "server")
    assert spec.port == 7000
    assert spec.keepalive_supported
    assert manifest.role("tcp", "client") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("keepalive-command", "keepalive-comand"), "unknown key 'keepalive-comand' in [tcp.server] (did you mean 'keepalive-command'?)"),
        (lambda t: t.replace("{idle-time}", "{idle-tme}"), "unknown placeholder {idle-tme} (did you mean {idle-time}?)"),
        (lambda t: t.replace("[tcp.server]\nport = 7000\n", "[tcp.sever]\nport = 7000\n"), "unknown key 'sever' in [tcp]"),
        (lambda t: t.split("[tcp.server]")[0], "[tcp] declares no role"),
        (lambda t: t.replace('name = "example/peer:1"', 'name = "x"\nbuild = "."'), "exactly one of build"),
        (lambda t: t.replace("port = 7000\n", ""), "needs port"),
        (lambda t: t.replace('features = ["keepalive"]', 'features = ["keepalive", "teleport"]'), "unknown ['teleport']"),
        (lambda t: t + "\n[tcp.client\n", "is not valid TOML"),
        (lambda t: t.replace("[tcp]", "[tpc]").replace("[tcp.server]", "[tpc.server]"), "unknown key 'tpc'"),
        (lambda t: t.replace('port = 7000', 'port = 7000\nready = "whenever"'), "ready = 'whenever' is not understood"),
    ],
    ids=["typo-key", "typo-placeholder", "typo-role", "no-role", "two-images", "no-port", "unknown-feature",
         "bad-toml", "typo-protocol", "bad-ready"],
)
def test_mistakes_are_named(tmp_path, change, message):
    with pytest.raises(ManifestError) as err:
        load_manifest(write(tmp_path, change(GOOD)))
    assert message in str(err.value)
    assert str(tmp_path) in str(err.value) or "TOML" in str(err.value)
    assert "\n" not in str(err.value).strip()


def test_an_unknown_peer_lists_the_known_ones():
    with pytest.raises(ManifestError) as err:
        resolve_iut("no-such-peer")
    assert "unknown peer 'no-such-peer'" in str(err.value)
    assert "socat" in str(err.value)


def test_a_missing_manifest_path_is_named(tmp_path):
    with pytest.raises(ManifestError, match="no manifest at"):
        resolve_iut(str(tmp_path / "nowhere" / "peer.toml"))


@pytest.mark.parametrize("path", reference_peers() + faulty_peers(), ids=lambda p: p.parent.name)
def test_every_shipped_manifest_loads(path):
    manifest = load_manifest(path)
    assert manifest.faulty == (path.parent.parent.name == "faulty")
    if manifest.faulty and not manifest.description.startswith("HOSTILE"):
        # Hostile peers attack the tester; tests/integration/test_hostile_peers.py holds them to clear verdicts.
        assert manifest.expect, "a faulty peer must say which requirement it breaks"
