"""An IUT that never becomes ready, or dies on a port clash: one clear line per case, nothing left behind."""
from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import engine
from tests.conftest import ROOT, engine_available

pytestmark = pytest.mark.skipif(not engine_available(), reason="no Docker Engine answers")

SOCAT = ROOT / "peers" / "socat"


def manifest(tmp_path: Path, command: str, timeout: int = 4) -> Path:
    """socat's image with a given command; ready once socat itself says it listens (not any squatter)."""
    path = tmp_path / "peer.toml"
    path.write_text(
        f'name = "broken"\n[image]\nbuild = "{SOCAT}"\n[tcp.server]\nport = 7000\nready-timeout = {timeout}\n'
        f'ready = "log:listening on"\ncommand = {command!r}\n'
    )
    return path


def leftovers(run_id: str) -> list:
    return engine.client().containers.list(all=True, filters={"label": f"{engine.LABEL_RUN}={run_id}"})


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("sleep infinity", "was not ready (log:listening on) within 4 s"),
        # A squatter holds the port first; the IUT itself then fails to bind and exits.
        ("sh -c 'socat TCP-LISTEN:7000,fork EXEC:cat & sleep 1; exec socat -d -d TCP-LISTEN:7000 EXEC:cat'",
         "exited before it was ready"),
    ],
    ids=["never-ready", "port-clash"],
)
def test_a_broken_iut_is_reported_in_one_line(run_suite, tmp_path, command, says):
    result, report = run_suite("--iut", str(manifest(tmp_path, command)), "-k", "off_by_default and server")
    output = result.stdout.str()
    assert result.ret != 0
    assert says in output, output[-2000:]
    assert "Traceback" not in output
    errors = [v for c in report["cases"] for v in c["verdicts"] if v["outcome"] == "error"]
    assert errors and says in errors[0]["message"]
    assert not leftovers(report["run_id"])


def test_a_version_command_that_never_ends_is_cut_off_and_removed(tmp_path, monkeypatch):
    """A version command that starts a server instead of printing (as `coap-server-notls -h x` does) must not
    hang the run: it is stopped after VERSION_TIMEOUT and its container removed."""
    from fixtures import peers

    monkeypatch.setattr(peers, "VERSION_TIMEOUT", 2.0)
    monkeypatch.setattr(peers, "VERSION_CACHE", tmp_path / "versions")
    path = tmp_path / "peer.toml"
    path.write_text(f'name = "hangs"\nversion = ["sleep", "600"]\n[image]\nbuild = "{SOCAT}"\n'
                    '[tcp.server]\nport = 7000\ncommand = "sleep 1"\n')
    manifest_ = peers.load_manifest(path)
    image_id = engine.client().images.get(manifest_.image()).id
    assert "did not finish within 2 s" in manifest_.version()
    left = [c for c in engine.client().containers.list(all=True, filters={"ancestor": image_id})
            if c.attrs["Config"]["Cmd"] == ["600"]]
    assert not left
