"""The "listen" readiness command that runs in an IUT's sidecar, tried here on the host's own stack."""
import shutil
import socket
import subprocess
import time

import pytest

from fixtures.peers import listen_wait_argv

pytestmark = pytest.mark.skipif(shutil.which("ss") is None, reason="needs iproute2's ss on the host")


def test_it_returns_at_once_for_a_listening_port_and_fails_after_its_slice_otherwise():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        started = time.monotonic()
        assert subprocess.run(listen_wait_argv(port, 5), check=False).returncode == 0
        assert time.monotonic() - started < 5  # at once: well before the 5 s slice ends
    started = time.monotonic()
    assert subprocess.run(listen_wait_argv(port, 0.5), check=False).returncode != 0
    assert 0.4 < time.monotonic() - started < 10  # the slice, and no more than a loaded machine adds


def test_an_unconnected_udp_socket_counts_as_listening():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        assert subprocess.run(listen_wait_argv(server.getsockname()[1], 2), check=False).returncode == 0


def test_a_datagram_protocol_waits_for_the_udp_socket_not_a_tcp_listener_on_the_same_port():
    from fixtures.protocols import DATAGRAM, STREAM

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert subprocess.run(listen_wait_argv(port, 0.5, DATAGRAM), check=False).returncode != 0
        assert subprocess.run(listen_wait_argv(port, 2, STREAM), check=False).returncode == 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
            server.bind(("127.0.0.1", port))
            assert subprocess.run(listen_wait_argv(port, 2, DATAGRAM), check=False).returncode == 0
