"""Bad input gets one clear line and a non-zero exit, with no traceback wall (runs pytest as a user would)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )


def assert_one_clear_line(done: subprocess.CompletedProcess, *fragments: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0]


def test_unknown_peer():
    assert_one_clear_line(run("--iut", "no-such-peer"), "unknown peer 'no-such-peer'", "use one of")


def test_missing_manifest_path(tmp_path):
    assert_one_clear_line(run("--iut", str(tmp_path / "peer.toml")), "no manifest at")


def test_broken_manifest(tmp_path):
    (tmp_path / "peer.toml").write_text('[image]\nname = "x"\n[tcp.server]\nport = 1\ncomand = "x"\n')
    assert_one_clear_line(run("--iut", str(tmp_path / "peer.toml")), "unknown key 'comand'", "did you mean 'command'")


def test_no_docker_engine():
    done = run("--iut", "socat", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert_one_clear_line(done, "no Docker Engine answers", "start one")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_unknown_requirement_prefix_with_and_without_workers(workers):
    done = run("--requirement", "RFC0000", *workers)
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert_one_clear_line(done, "no catalogued requirement")


def test_collection_needs_no_engine():
    """Listing the cases reads manifests only: it works with no Docker Engine anywhere."""
    done = run("--collect-only", "--iut", "socat", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "test_keepalive_off_by_default[socat-server]" in done.stdout


def test_cases_are_collected_only_for_the_iuts_protocols_and_roles():
    done = run("--collect-only", "--iut", "socat", "--iut", "openssh", "--iut", "websockets")
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids and not any("[socat-" in i and "/websocket/" in i for i in ids)
    assert not any("[websockets-" in i and "/tcp/" in i for i in ids)
    assert not any("[openssh-client]" in i and "/tcp/" in i for i in ids)  # no TCP client role (only SSH's)
    assert any("[openssh-server]" in i for i in ids) and any("[websockets-client]" in i for i in ids)


def test_the_harness_runs_without_xdist():
    done = run("--collect-only", "-p", "no:xdist", "--iut", "socat")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "test_keepalive_off_by_default[socat-server]" in done.stdout
