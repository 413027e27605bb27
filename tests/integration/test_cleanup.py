"""Nothing survives a run: normal end, interrupted run, and a killed run's leftovers at the next start."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import docker.errors
import pytest

from fixtures import engine
from fixtures.waiting import wait_until
from tests.conftest import ROOT, engine_available

pytestmark = pytest.mark.skipif(not engine_available(), reason="no Docker Engine answers")


def labelled(run_id: str) -> list:
    cli = engine.client()
    flt = {"label": f"{engine.LABEL_RUN}={run_id}"}
    return cli.containers.list(all=True, filters=flt) + cli.networks.list(filters=flt)


def test_a_killed_runs_leftovers_are_reaped():
    cli = engine.client()
    dead_owner = f"{engine.owner_id().rsplit(':', 1)[0]}:999999"  # a pid that cannot be alive
    labels = {engine.LABEL_RUN: "killed-run", engine.LABEL_OWNER: dead_owner}
    try:
        net = cli.networks.create("aliveness-reap-test", internal=True, labels=labels)
        cli.containers.create(engine.BASE_IMAGE, ["true"], labels=labels, network=net.name)
    except docker.errors.NotFound:
        pass  # a run starting in parallel reaped them while they were being made: reaping works
    engine.reap_leftovers()
    assert not labelled("killed-run")


def test_an_interrupted_run_leaves_nothing(tmp_path):
    run_id = "interrupted-run"
    # An IUT that never becomes ready keeps its case (and its containers) up for a minute, so the interrupt
    # surely lands inside the case, however slowly a loaded engine starts it.
    peer = tmp_path / "peer.toml"
    peer.write_text(f'name = "slow"\n[image]\nbuild = "{ROOT / "peers" / "socat"}"\n[tcp.server]\nport = 7000\n'
                    'ready-timeout = 60\nready = "log:never said"\ncommand = "sleep infinity"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "conformance", "--iut", str(peer), "-k", "off_by_default and server",
         "--report-dir", str(tmp_path), "--run-id", run_id, "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # Interrupt once the case is under way: its containers exist.
        wait_until(lambda: len(engine.client().containers.list(filters={"label": f"{engine.LABEL_RUN}={run_id}"})) >= 3, 60)
        interrupted = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            pytest.fail(f"the run had not ended {time.monotonic() - interrupted:.0f} s after its interrupt:\n{out[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert not labelled(run_id), out[-2000:]
