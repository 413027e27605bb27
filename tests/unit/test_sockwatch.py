"""Unit tests for fixtures.sockwatch: reading socket-state changes (no Docker needed)."""
from __future__ import annotations

import inspect
import os
import queue
import random
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from fixtures.sockwatch import (
    _WATCHER,
    PERIOD,
    STATES,
    UDP_STATES,
    SocketWatch,
    _peer_hexes,
    _proc_files,
    _proc_hex,
    _watch,
    match_line,
    pick_state,
    watcher_argv,
)


def watch_with(changes):
    watch = SocketWatch.__new__(SocketWatch)  # no exec stream: only the bookkeeping is under test
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


# --- Parsing /proc/net lines (fixtures.sockwatch.match_line and friends, the code _WATCHER runs) ---

TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
TCP6_HEADER = ("  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
               "tm->when retrnsmt   uid  timeout inode")
UDP_HEADER = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops"

# The IUT 10.213.0.2 and the tester 10.213.0.3:8000 (0x1F40); fd00:a11e::2 and fd00:a11e::3 for IPv6.
IUT4, PEER4 = "0200D50A", "0300D50A"
IUT6, PEER6 = "1EA100FD000000000000000002000000", "1EA100FD000000000000000003000000"
MAPPED_IUT4, MAPPED_PEER4 = "0000000000000000FFFF00000200D50A", "0000000000000000FFFF00000300D50A"
ANY4, ANY6 = "00000000", "00000000000000000000000000000000"


def tcp(sl, local, remote, st, inode=12345):
    return f"{sl:4d}: {local} {remote} {st} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 20 4 30 10 -1"


def udp(sl, local, remote, st, inode=23456):
    return f"{sl:5d}: {local} {remote} {st} 00000000:00000000 00:00000000 00000000     0        0 {inode} 2 0000000000000000 0"


TCP_LISTEN = tcp(0, f"{ANY4}:1F40", f"{ANY4}:0000", "0A", 111)
TCP_ESTAB = tcp(1, f"{IUT4}:A3B2", f"{PEER4}:1F40", "01")
TCP_OTHER = tcp(2, f"{IUT4}:A3B4", "0400D50A:1F40", "01", 222)  # to 10.213.0.4: not the peer
TCP6_LISTEN = tcp(0, f"{ANY6}:1F40", f"{ANY6}:0000", "0A", 333)
TCP6_ESTAB = tcp(1, f"{IUT6}:A3B2", f"{PEER6}:1F40", "01")
TCP6_MAPPED = tcp(2, f"{MAPPED_IUT4}:1F40", f"{MAPPED_PEER4}:C350", "04")  # a dual-stack server's accepted socket
UDP_BOUND = udp(123, f"{ANY4}:14E9", f"{ANY4}:0000", "07")  # a server on 0.0.0.0:5353
UDP_CONNECTED = udp(124, f"{IUT4}:9C41", f"{PEER4}:14E9", "01")
UDP_OTHER_CLIENT = udp(125, f"{IUT4}:14E9", "0400D50A:C350", "01")  # port 5353, connected to 10.213.0.4
UDP6_BOUND = udp(77, f"{ANY6}:14E9", f"{ANY6}:0000", "07")  # [::]:5353, dual-stack
UDP6_CONNECTED = udp(78, f"{IUT6}:9C41", f"{PEER6}:14E9", "01")


def test_ipv6_addresses_are_four_words_in_host_byte_order():
    # fd00:a11e:0000:0000:0000:0000:0000:0003 is the words fd00a11e, 0, 0, 00000003; each written little-endian.
    assert _proc_hex("fd00:a11e::3", "little") == "1EA100FD" "00000000" "00000000" "03000000"
    assert _proc_hex("fd00:a11e::3", "big") == "FD00A11E" "00000000" "00000000" "00000003"
    assert _proc_hex("::1", "little") == "00000000" "00000000" "00000000" "01000000"
    assert _proc_hex("::ffff:10.213.0.3", "little") == "00000000" "00000000" "FFFF0000" "0300D50A" == MAPPED_PEER4
    assert _proc_hex("fe80::1%eth0", "little") == "000080FE" "00000000" "00000000" "01000000"
    assert _proc_hex("10.213.0.3", "big") == "0AD50003"


def test_this_machine_writes_what_the_tests_expect():
    if sys.byteorder != "little":
        pytest.skip("the crafted lines are little-endian")
    assert _proc_hex("fd00:a11e::3") == PEER6
    assert _proc_hex("127.0.0.1") == "0100007F"


def test_an_ipv4_peer_is_also_looked_for_as_ipv4_mapped():
    assert _peer_hexes("10.213.0.3", "little") == {PEER4, MAPPED_PEER4}
    assert _peer_hexes("::ffff:10.213.0.3", "little") == {PEER4, MAPPED_PEER4}
    assert _peer_hexes("fd00:a11e::3", "little") == {PEER6}


def test_the_files_read_follow_the_peers_family_and_the_transport():
    assert _proc_files("10.213.0.3", "stream") == ["tcp", "tcp6"]
    assert _proc_files("fd00:a11e::3", "stream") == ["tcp6"]
    assert _proc_files("::ffff:10.213.0.3", "datagram") == ["udp", "udp6"]
    assert _proc_files("fd00:a11e::3", "datagram") == ["udp6"]


@pytest.mark.parametrize("line", [TCP_HEADER, TCP6_HEADER, UDP_HEADER, "", "   "])
def test_headers_and_blank_lines_match_nothing(line):
    assert match_line(line, {PEER4, MAPPED_PEER4, PEER6}, 5353) is None


def test_a_tcp_connection_to_the_peer_is_matched_whatever_the_port():
    peers = {PEER4, MAPPED_PEER4}
    assert match_line(TCP_ESTAB, peers) == "01"
    assert match_line(TCP_ESTAB.replace(" 01 ", " 04 "), peers) == "04"
    assert match_line(TCP_ESTAB.replace(":1F40", ":0050"), peers) == "01"
    assert match_line(TCP_OTHER, peers) is None
    assert match_line(TCP_LISTEN, peers) is None
    assert match_line(TCP_ESTAB.lower(), peers) == "01"  # hex case does not matter


def test_tcp6_lines_match_an_ipv6_peer_and_a_dual_stack_ipv4_one():
    assert match_line(TCP6_ESTAB, _peer_hexes("fd00:a11e::3", "little")) == "01"
    assert match_line(TCP6_ESTAB, _peer_hexes("10.213.0.3", "little")) is None
    assert match_line(TCP6_MAPPED, _peer_hexes("10.213.0.3", "little")) == "04"
    assert match_line(TCP6_MAPPED, _peer_hexes("fd00:a11e::3", "little")) is None
    assert match_line(TCP6_LISTEN, _peer_hexes("fd00:a11e::3", "little"), 8000) is None  # listening never counts


def test_a_connected_udp_socket_is_matched_by_its_remote_address():
    assert match_line(UDP_CONNECTED, {PEER4, MAPPED_PEER4}) == "01"
    assert match_line(UDP6_CONNECTED, {PEER6}) == "01"
    assert match_line(UDP_BOUND, {PEER4, MAPPED_PEER4}) is None  # unconnected: only the local port can tell


def test_an_unconnected_udp_socket_is_matched_by_its_local_port():
    assert match_line(UDP_BOUND, {PEER4}, 5353) == "07"
    assert match_line(UDP6_BOUND, {PEER4}, 5353) == "07"
    assert match_line(UDP_BOUND, {PEER4}, 5354) is None
    assert match_line(UDP_BOUND, {PEER4}, None) is None
    assert match_line(UDP_OTHER_CLIENT, {PEER4}, 5353) is None  # that port, but connected to someone else
    assert match_line(UDP_CONNECTED, {PEER4}, 5353) == "01"  # another port, but the peer's


def test_a_socket_connected_to_the_peer_wins_over_one_bound_to_the_port():
    peers = _peer_hexes("10.213.0.3", "little")
    assert pick_state([UDP_HEADER, UDP_BOUND, UDP_OTHER_CLIENT, UDP_CONNECTED], peers, 5353) == "01"
    assert pick_state([UDP_HEADER, UDP_BOUND, UDP_OTHER_CLIENT], peers, 5353) == "07"
    assert pick_state([UDP_HEADER, UDP_OTHER_CLIENT], peers, 5353) is None
    assert pick_state([TCP_HEADER, TCP_LISTEN, TCP_OTHER, TCP_ESTAB, TCP6_HEADER, TCP6_MAPPED], peers) == "01"  # the first
    assert pick_state([TCP_HEADER, TCP_LISTEN, TCP6_HEADER, TCP6_LISTEN, TCP6_MAPPED], peers) == "04"


def test_the_watcher_program_is_built_from_the_tested_functions():
    for function in (_proc_hex, _peer_hexes, _proc_files, match_line, pick_state, _watch):
        assert inspect.getsource(function) in _WATCHER
    compile(_WATCHER, "<watcher>", "exec")


def test_the_watcher_arguments_are_checked_on_the_harness_side():
    assert watcher_argv("10.213.0.3") == ["10.213.0.3", "stream", "-"]
    assert watcher_argv("fd00:a11e::3", "datagram", 5353, "/tmp/proc") == ["fd00:a11e::3", "datagram", "5353", "/tmp/proc"]
    with pytest.raises(ValueError):
        watcher_argv("10.213.0.3", "seqpacket")
    with pytest.raises(ValueError):
        watcher_argv("tester", "stream")


def test_udp_states_are_named_bound_and_connected():
    watch = watch_with([])
    watch._names, watch._buf = UDP_STATES, b""
    watch._on_stdout(b"10.000000 07\n10.050000 01\n10.1")
    watch._on_stdout(b"00000 -\n")
    assert watch.changes == [(10.0, "bound"), (10.05, "connected"), (10.1, "gone")]
    assert watch.closed_by_iut({"gone"}) == (10.05, 10.1, "gone")  # no earlier than the last sight of it open


# --- The watcher program itself, run here as a subprocess ---

class Watcher:
    """python3 -c _WATCHER ..., its output lines read by a thread; every wait is bounded."""

    def __init__(self, *argv: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _WATCHER, *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.output: list[str] = []  # raw lines, as SocketWatch._on_stdout gets them
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)

    def next(self, timeout: float = 5.0) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the watcher printed nothing in {timeout} s; it printed {self.output}, "
                                 f"exit {self.proc.poll()}") from None
        self.output.append(line)
        t, state = line.split()
        assert abs(float(t) - time.time()) < 60
        return state

    def until(self, state: str, timeout: float = 5.0) -> list[str]:
        """The states printed up to and including ``state``."""
        deadline, states = time.monotonic() + timeout, []
        while not states or states[-1] != state:
            states.append(self.next(max(0.01, deadline - time.monotonic())))
        return states

    def quiet_for(self, seconds: float) -> bool:
        try:
            self.output.append(self._lines.get(timeout=seconds))
            return False
        except queue.Empty:
            return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def run_watcher():
    started = []

    def start(*argv: str) -> Watcher:
        started.append(Watcher(*argv))
        return started[-1]

    yield start
    for watcher in started:
        watcher.stop()


def write(path, *lines):
    """Replace a /proc/net file whole, as a reader of the real one sees it: never half written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def test_the_watcher_prints_each_change_of_a_fake_proc(tmp_path, run_watcher):
    if sys.byteorder != "little":
        pytest.skip("the crafted lines are little-endian")
    net = tmp_path / "net"
    net.mkdir()
    write(net / "tcp", TCP_HEADER, TCP_LISTEN)  # no tcp6 at all, as where IPv6 is disabled
    watcher = run_watcher(*watcher_argv("10.213.0.3", "stream", proc_root=str(tmp_path)))
    assert watcher.next() == "-"
    write(net / "tcp", TCP_HEADER, TCP_LISTEN, TCP_OTHER, TCP_ESTAB)
    assert watcher.next() == "01"
    write(net / "tcp", TCP_HEADER, TCP_LISTEN, TCP_ESTAB.replace("00000000:00000000", "0000002A:00000000"))  # same state
    assert watcher.quiet_for(6 * PERIOD), f"printed without a change: {watcher.output}"
    write(net / "tcp", TCP_HEADER, TCP_LISTEN, TCP_ESTAB.replace(" 01 ", " 04 "))
    assert watcher.next() == "04"
    write(net / "tcp", TCP_HEADER, TCP_LISTEN)
    write(net / "tcp6", TCP6_HEADER, TCP6_MAPPED.replace(" 04 ", " 08 "))  # tcp6 appears, with a dual-stack socket
    assert watcher.until("08") in (["08"], ["-", "08"])
    (net / "tcp6").unlink()
    assert watcher.next() == "-"

    watch = watch_with([])
    watch._names, watch._buf = STATES, b""
    watch._on_stdout("".join(watcher.output).encode())
    assert [state for _, state in watch.changes][:3] == ["gone", "ESTAB", "FIN-WAIT-1"]
    assert watch.closed_by_iut({"FIN-WAIT-1", "gone"})[2] == "FIN-WAIT-1"


def test_the_watcher_follows_a_udp_server_socket_in_a_fake_proc(tmp_path, run_watcher):
    if sys.byteorder != "little":
        pytest.skip("the crafted lines are little-endian")
    net = tmp_path / "net"
    net.mkdir()
    write(net / "udp6", UDP_HEADER, UDP6_BOUND)
    watcher = run_watcher(*watcher_argv("fd00:a11e::3", "datagram", 5353, str(tmp_path)))
    assert watcher.next() == "07"
    write(net / "udp", UDP_HEADER, UDP_CONNECTED)  # udp is not read for a plain IPv6 peer
    write(net / "udp6", UDP_HEADER, UDP6_BOUND, UDP6_CONNECTED)
    assert watcher.next() == "01"
    write(net / "udp6", UDP_HEADER)
    assert watcher.next() == "-"


# --- This machine's /proc/net, with real sockets ---

def loopback_alias() -> str:
    """A 127/8 address of this test's own: sockets to it are only this test's, unlike 127.0.0.1's."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def test_a_real_loopback_tcp_connection_is_seen_open_then_gone(run_watcher):
    peer = loopback_alias()
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
        client.bind((peer, 0))
        client.connect(server.getsockname())
        iut, _ = server.accept()  # the watched end: its remote address is the peer's
        with iut:
            watcher = run_watcher(*watcher_argv(peer, "stream"))
            assert watcher.next() == "01"
            client.close()  # the peer closes first, so the IUT's end ends in LAST-ACK, not TIME-WAIT
            assert watcher.until("08") == ["08"]  # CLOSE-WAIT
    assert set(watcher.until("-")) <= {"09", "-"}  # through LAST-ACK, which loopback may end within a period

    watch = watch_with([])
    watch._names, watch._buf = STATES, b""
    watch._on_stdout("".join(watcher.output).encode())
    assert watch.changes[0][1] == "ESTAB" and watch.changes[-1][1] == "gone"
    assert watch.closed_by_iut({"LAST-ACK", "gone"})[2] in {"LAST-ACK", "gone"}


def test_a_real_dual_stack_connection_is_seen_in_tcp6(run_watcher):
    if not socket.has_dualstack_ipv6() or not os.path.exists("/proc/net/tcp6"):
        pytest.skip("no dual-stack IPv6 here")
    peer = loopback_alias()
    try:
        server = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    except OSError as e:
        pytest.skip(f"no dual-stack server here: {e}")
    with server, socket.socket() as client:
        client.bind((peer, 0))
        client.connect(("127.0.0.1", server.getsockname()[1]))
        iut, _ = server.accept()  # in tcp6, its remote address is ::ffff:<peer>
        with iut:
            watcher = run_watcher(*watcher_argv(peer, "stream"))
            assert watcher.next() == "01"
            iut.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a RST: no TIME-WAIT
    assert watcher.next() == "-"


def test_a_real_udp_socket_is_seen_bound_connected_then_gone(run_watcher):
    peer = loopback_alias()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as iut, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        iut.bind(("127.0.0.1", 0))
        other.bind((peer, 0))
        watcher = run_watcher(*watcher_argv(peer, "datagram", iut.getsockname()[1]))
        assert watcher.next() == "07"
        iut.connect(other.getsockname())
        other.connect(iut.getsockname())
        iut.send(b"ping")
        assert other.recv(16) == b"ping"
        assert watcher.next() == "01"
        iut.close()
        assert watcher.next() == "-"

    watch = watch_with([])
    watch._names, watch._buf = UDP_STATES, b""
    watch._on_stdout("".join(watcher.output).encode())
    assert [state for _, state in watch.changes] == ["bound", "connected", "gone"]
