"""Unit tests for fixtures.sockwatch: reading socket-state changes (no Docker needed)."""
from __future__ import annotations

from fixtures.sockwatch import PERIOD, SocketWatch, _proc_hex


def watch_with(changes):
    watch = SocketWatch.__new__(SocketWatch)  # no exec stream: only the bookkeeping is under test
    import threading

    watch._lock = threading.Lock()
    watch.changes = changes
    return watch


def test_the_close_is_dated_within_one_read_period():
    watch = watch_with([(10.0, "ESTAB"), (14.2, "FIN-WAIT-1"), (14.4, "gone")])
    assert watch.closed_by_iut({"FIN-WAIT-1", "gone"}) == (14.2 - PERIOD, 14.2, "FIN-WAIT-1")


def test_the_peers_close_is_not_the_iuts():
    watch = watch_with([(10.0, "ESTAB"), (11.0, "CLOSE-WAIT")])
    assert watch.closed_by_iut({"FIN-WAIT-1", "LAST-ACK", "gone"}) is None
    watch.changes.append((11.5, "LAST-ACK"))
    assert watch.closed_by_iut({"FIN-WAIT-1", "LAST-ACK", "gone"})[2] == "LAST-ACK"


def test_addresses_are_written_as_proc_net_tcp_does():
    assert _proc_hex("10.213.0.3") == "0300D50A"
