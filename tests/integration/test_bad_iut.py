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
