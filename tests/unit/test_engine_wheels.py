"""A peer folder's wheels.txt, npm-packages.txt and project-files.txt: what an image build takes from PyPI, npm and this project (fixtures/engine.py)."""
from __future__ import annotations

import subprocess

import pytest

from fixtures import engine
from fixtures.errors import ImageBuildError


def test_fetched_wheels_do_not_change_the_image_tag(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (tmp_path / "wheels.txt").write_text("tlslite-ng==0.8.2\n")
    before = engine.folder_digest(tmp_path)
    (tmp_path / ".wheels").mkdir()
    (tmp_path / ".wheels" / "tlslite_ng-0.8.2-py3-none-any.whl").write_bytes(b"zip")
    assert engine.folder_digest(tmp_path) == before  # the tag is known before anything is fetched
    (tmp_path / "wheels.txt").write_text("tlslite-ng==0.8.3\n")
    assert engine.folder_digest(tmp_path) != before  # a new pin is a new image


def test_wheels_are_fetched_once_per_pin_with_the_hosts_pip(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(engine.subprocess, "run", fake_run)
    engine.fetch_wheels(tmp_path)  # no wheels.txt: nothing to do
    assert calls == []
    (tmp_path / "wheels.txt").write_text("tlslite-ng==0.8.2\n")
    engine.fetch_wheels(tmp_path)
    engine.fetch_wheels(tmp_path)  # the stamp says these pins were fetched
    assert len(calls) == 1
    assert calls[0][1:4] == ["-m", "pip", "download"] and "--only-binary=:all:" in calls[0]
    assert calls[0][calls[0].index("-d") + 1] == str(tmp_path / ".wheels")


def test_a_failed_download_says_what_to_check(tmp_path, monkeypatch):
    def failing(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for nosuchthing==1\n")

    monkeypatch.setattr(engine.subprocess, "run", failing)
    (tmp_path / "wheels.txt").write_text("nosuchthing==1\n")
    with pytest.raises(ImageBuildError) as err:
        engine.fetch_wheels(tmp_path)
    assert "could not be downloaded" in str(err.value) and "No matching distribution" in str(err.value)
    assert "PyPI" in err.value.todo


def test_project_files_are_copied_in_and_their_bytes_make_the_tag(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "fixtures").mkdir(parents=True)
    (root / "fixtures" / "tool.py").write_text("VERSION = 1\n")
    monkeypatch.setattr(engine, "ROOT", root)
    folder = tmp_path / "peer"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (folder / "project-files.txt").write_text("# the tester's code\nfixtures/tool.py\n")
    before = engine.folder_digest(folder)
    engine.copy_project_files(folder)
    assert (folder / ".project" / "fixtures" / "tool.py").read_text() == "VERSION = 1\n"
    assert engine.folder_digest(folder) == before  # the copy is not hashed twice
    (root / "fixtures" / "tool.py").write_text("VERSION = 2\n")
    assert engine.folder_digest(folder) != before  # a change to the project file is a new image
    (folder / "project-files.txt").write_text("../outside.py\n")
    with pytest.raises(ImageBuildError, match="no file of this project"):
        engine.project_files(folder)


def test_npm_packages_are_fetched_once_per_pin_and_do_not_change_the_tag(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(engine.subprocess, "run", fake_run)
    monkeypatch.setattr(engine.shutil, "which", lambda name: "/usr/bin/npm")
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    engine.fetch_npm_packages(tmp_path)  # no npm-packages.txt: nothing to do
    assert calls == []
    (tmp_path / "npm-packages.txt").write_text("# the CoAP stack\ncoap@1.5.0\n")
    before = engine.folder_digest(tmp_path)
    engine.fetch_npm_packages(tmp_path)
    engine.fetch_npm_packages(tmp_path)  # the stamp says these pins were fetched
    assert len(calls) == 1 and calls[0][:2] == ["/usr/bin/npm", "install"] and calls[0][-1] == "coap@1.5.0"
    assert "--ignore-scripts" in calls[0] and str(tmp_path / ".npm") in calls[0]
    (tmp_path / ".npm" / "node_modules").mkdir()
    (tmp_path / ".npm" / "node_modules" / "index.js").write_text("x")
    assert engine.folder_digest(tmp_path) == before


def test_npm_packages_without_npm_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    (tmp_path / "npm-packages.txt").write_text("coap@1.5.0\n")
    with pytest.raises(ImageBuildError) as err:
        engine.fetch_npm_packages(tmp_path)
    assert "no npm" in err.value.what and "apt-get install npm" in err.value.todo
