"""Unit tests for the tester agent (fixtures/toolbox/agent.py), run here as a subprocess over loopback (no Docker)."""
from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "fixtures" / "toolbox" / "agent.py"


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


class AgentProcess:
    """The agent as a subprocess: commands to its stdin; a reader thread collects its events.

    ``expect`` returns the first matching event not returned before; ``pause`` stops reading the agent's
    stdout (after the line being read) until ``resume``.
    """

    def __init__(self, path: Path = AGENT) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.events: list[dict] = []
        self.taken: set[int] = set()
        self.ended = False  # the agent's stdout is at EOF
        self.cond = threading.Condition()
        self.reading = threading.Event()
        self.reading.set()
        self.reader = threading.Thread(target=self._read, name="agent-stdout", daemon=True)
        self.reader.start()
        self.expect("ready")

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:  # a line cut short by a kill
                event = {"ev": "unparsable", "line": line[:200].decode(errors="replace")}
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()
            self.reading.wait()
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def pause(self) -> None:
        self.reading.clear()

    def resume(self) -> None:
        self.reading.set()

    def send(self, **cmd) -> None:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def _describe(self) -> str:
        with self.cond:
            tail = [{k: (v[:40] + "..." if k == "hex" and len(v) > 40 else v) for k, v in e.items() if k != "wall"}
                    for e in self.events[-15:]]
        self.stderr.seek(0)
        return f"last events: {tail}; stderr: {self.stderr.read().decode(errors='replace')[-500:]!r}"

    def until(self, condition, timeout: float = 5.0, what: str = "a condition"):
        """Wait (bounded) until ``condition(events)`` is truthy; return its value."""
        with self.cond:
            result = self.cond.wait_for(lambda: condition(self.events), timeout)
        assert result, f"waited {timeout:g} s for {what}; {self._describe()}"
        return result

    def _find(self, ev: str, fields: dict) -> dict | None:
        for i, event in enumerate(self.events):
            if i not in self.taken and event["ev"] == ev and all(event.get(k) == v for k, v in fields.items()):
                self.taken.add(i)
                return event
        return None

    def expect(self, ev: str, timeout: float = 5.0, **fields) -> dict:
        return self.until(lambda _: self._find(ev, fields), timeout, f"{ev} {fields}")

    def absent(self, ev: str, within: float, **fields) -> None:
        """No such event (not returned before) arrives within ``within`` seconds."""
        with self.cond:
            found = self.cond.wait_for(lambda: self._find(ev, fields), within)
        assert not found, f"unexpected {found}"

    def of(self, conn: str, *evs: str) -> list[dict]:
        with self.cond:
            return [e for e in self.events if e.get("conn") == conn and e["ev"] in evs]

    def close(self) -> None:
        self.resume()
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # EOF: the agent says bye and exits
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass


@pytest.fixture
def agent():
    process = AgentProcess()
    yield process
    process.close()


@pytest.fixture
def sockets():
    """Sockets the test opens: closed at teardown."""
    opened: list[socket.socket] = []

    def track(sock: socket.socket) -> socket.socket:
        opened.append(sock)
        return sock

    yield track
    for sock in opened:
        sock.close()


def udp_socket(sockets, host: str = "127.0.0.1") -> socket.socket:
    sock = sockets(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM))
    sock.bind((host, 0))
    sock.settimeout(5)
    return sock


def agent_listens(agent: AgentProcess, **fields) -> int:
    agent.send(op="listen", host="127.0.0.1", port=0, **fields)
    return agent.expect("listening")["port"]


def test_tcp_round_trip(agent, sockets):
    port = agent_listens(agent)
    peer = sockets(socket.create_connection(("127.0.0.1", port), timeout=5))
    accepted = agent.expect("accepted")
    conn = accepted["conn"]
    assert accepted["port"] == port and accepted["peer"] == list(peer.getsockname())

    peer.sendall(b"hello")
    data = agent.expect("data", conn=conn)
    assert data["hex"] == b"hello".hex() and data["n"] == 5 and "truncated" not in data

    agent.send(op="send", conn=conn, hex=b"world!".hex())
    assert agent.expect("sent", conn=conn)["n"] == 6
    assert peer.recv(100) == b"world!"

    peer.close()
    agent.expect("eof", conn=conn)
    assert agent.expect("closed", conn=conn)["reason"] == "eof"


def test_connect_hold_resume_keepalive_and_close(agent, sockets):
    server = sockets(socket.create_server(("127.0.0.1", 0)))
    server.settimeout(5)
    agent.send(op="connect", host="127.0.0.1", port=server.getsockname()[1], tag="t1")
    conn = agent.expect("connecting", tag="t1")["conn"]
    peer = sockets(server.accept()[0])
    assert agent.expect("connected", conn=conn)["peer"] == list(server.getsockname())

    agent.send(op="keepalive", conn=conn, keepalive={"idle": 5, "intvl": 2, "cnt": 3})
    agent.expect("keepalive-set", conn=conn)
    agent.send(op="hold", conn=conn)
    agent.expect("held", conn=conn)
    peer.sendall(b"x")
    agent.absent("data", 0.3, conn=conn)
    agent.send(op="resume", conn=conn)
    agent.expect("resumed", conn=conn)
    assert agent.expect("data", conn=conn)["hex"] == "78"

    agent.send(op="close", conn=conn, how="rst")
    assert agent.expect("closed", conn=conn)["reason"] == "local-rst"
    with pytest.raises(ConnectionResetError):
        peer.settimeout(5)
        peer.recv(10)


def test_bad_commands_are_reported_and_bye_is_last(agent):
    agent.send(op="nonesuch")
    assert "nonesuch" in agent.expect("bad-command")["msg"]
    agent.proc.stdin.write(b"not json\n")
    agent.proc.stdin.flush()
    agent.expect("bad-command")
    agent.send(op="send", conn="c99", hex="00")
    assert "KeyError" in agent.expect("bad-command")["msg"]
    agent.send(op="quit")
    agent.until(lambda _: agent.ended, what="the agent's stdout to end")
    assert agent.events[-1]["ev"] == "bye"
    assert agent.proc.wait(5) == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_udp_datagrams_both_ways(agent, sockets, host):
    if ":" in host and not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    agent.send(op="udp-open", host=host, port=0)
    opened = agent.expect("udp-opened")
    conn, local = opened["conn"], opened["local"]
    assert conn.startswith("u") and local[0] == host and local[1] > 0 and "peer" not in opened

    tester = udp_socket(sockets, host)
    me = list(tester.getsockname()[:2])
    tester.sendto(b"one", (host, local[1]))
    tester.sendto(b"second", (host, local[1]))
    first, second = agent.expect("datagram", conn=conn), agent.expect("datagram", conn=conn)
    assert (first["hex"], first["n"], first["peer"]) == (b"one".hex(), 3, me)
    assert (second["hex"], second["n"], second["peer"]) == (b"second".hex(), 6, me)

    # Unconnected: the send names the destination.
    agent.send(op="send", conn=conn, hex=b"back".hex(), host=host, port=me[1])
    assert agent.expect("sent", conn=conn)["n"] == 4
    data, sender = tester.recvfrom(100)
    assert (data, list(sender[:2])) == (b"back", local)

    # Connected to the tester's socket: the send needs no destination; the bind address defaults by family.
    agent.send(op="udp-open", peer=[host, me[1]])
    opened = agent.expect("udp-opened")
    connected, local = opened["conn"], opened["local"]
    assert opened["peer"] == me and local[0] == host
    agent.send(op="send", conn=connected, hex=b"to you".hex())
    assert agent.expect("sent", conn=connected)["n"] == 6
    data, sender = tester.recvfrom(100)
    assert (data, list(sender[:2])) == (b"to you", local)
    tester.sendto(b"reply", sender)
    reply = agent.expect("datagram", conn=connected)
    assert (reply["hex"], reply["peer"]) == (b"reply".hex(), me)

    for c in (conn, connected):
        agent.send(op="close", conn=c)
        assert agent.expect("closed", conn=c)["reason"] == "local-fin"


def test_udp_hold_stops_reading_until_resume(agent, sockets):
    agent.send(op="udp-open", host="127.0.0.1")
    opened = agent.expect("udp-opened")
    conn, port = opened["conn"], opened["local"][1]
    agent.send(op="hold", conn=conn)
    agent.expect("held", conn=conn)
    tester = udp_socket(sockets)
    tester.sendto(b"later", ("127.0.0.1", port))
    agent.absent("datagram", 0.3, conn=conn)
    agent.send(op="resume", conn=conn)
    agent.expect("resumed", conn=conn)
    assert agent.expect("datagram", conn=conn)["hex"] == b"later".hex()


def test_icmp_error_on_connected_udp_socket_does_not_close_it(agent, sockets):
    closed = udp_socket(sockets)
    port = closed.getsockname()[1]
    closed.close()  # nothing listens on port now: the kernel answers with ICMP port unreachable
    agent.send(op="udp-open", peer=["127.0.0.1", port])
    conn = agent.expect("udp-opened")["conn"]

    for octet in ("01", "02"):
        agent.send(op="send", conn=conn, hex=octet)
        assert agent.expect("sent", conn=conn)["n"] == 1
        error = agent.expect("udp-error", conn=conn)
        assert error["name"] == "ECONNREFUSED" and error["errno"] > 0 and error["msg"]
    assert not agent.of(conn, "closed", "error")

    # The same socket still delivers once someone listens there again.
    tester = sockets(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        tester.bind(("127.0.0.1", port))
    except OSError:
        pytest.skip(f"port {port} was taken meanwhile")
    tester.settimeout(5)
    agent.send(op="send", conn=conn, hex="03")
    agent.expect("sent", conn=conn)
    assert tester.recv(10) == b"\x03"

    # An unconnected send without a destination is a udp-error too, and the socket stays.
    agent.send(op="udp-open", host="127.0.0.1")
    unconnected = agent.expect("udp-opened")["conn"]
    agent.send(op="send", conn=unconnected, hex="04")
    assert agent.expect("udp-error", conn=unconnected)["during"] == "send"
    agent.send(op="send", conn=unconnected, hex="05", host="127.0.0.1", port=port)
    agent.expect("sent", conn=unconnected)
    assert tester.recv(10) == b"\x05"
    assert not agent.of(unconnected, "closed")


def total(events: list[dict]) -> int:
    return sum(e["n"] for e in events)


def test_recording_limit_on_accepted_connections(agent, sockets):
    port = agent_listens(agent, record=1000)
    peer = sockets(socket.create_connection(("127.0.0.1", port), timeout=5))
    conn = agent.expect("accepted")["conn"]
    payload = os.urandom(1_000_000)
    peer.sendall(payload)
    # The peer then goes quiet: the last count still comes, on the agent's timer.
    agent.until(lambda _: total(agent.of(conn, "data")) == len(payload), what="all octets to be reported")

    events = agent.of(conn, "data")
    recorded = [e for e in events if not e.get("truncated")]
    counted = [e for e in events if e.get("truncated")]
    assert events == recorded + counted  # hex first, then only counts
    assert bytes.fromhex("".join(e["hex"] for e in recorded)) == payload[:1000]
    assert total(recorded) == 1000
    assert not any("hex" in e for e in counted) and total(counted) == len(payload) - 1000
    assert all(later["t"] - earlier["t"] >= 0.249 for earlier, later in pairwise(counted))

    peer.close()
    agent.expect("eof", conn=conn)
    assert total(agent.of(conn, "data")) == len(payload)


def test_recording_limit_on_connect(agent, sockets):
    server = sockets(socket.create_server(("127.0.0.1", 0)))
    server.settimeout(5)
    agent.send(op="connect", host="127.0.0.1", port=server.getsockname()[1], record=4)
    conn = agent.expect("connecting")["conn"]
    peer = sockets(server.accept()[0])
    agent.expect("connected", conn=conn)
    peer.sendall(b"0123456789")
    peer.close()  # the count is reported before the eof
    agent.expect("eof", conn=conn)
    events = agent.of(conn, "data")
    assert [(e["n"], e.get("hex"), e.get("truncated")) for e in events] == [(4, b"0123".hex(), None), (6, None, True)]


def test_recording_limit_on_datagrams(agent, sockets):
    agent.send(op="udp-open", host="127.0.0.1", record=10)
    opened = agent.expect("udp-opened")
    conn, port = opened["conn"], opened["local"][1]
    tester = udp_socket(sockets)
    for datagram in (b"aaaaaaaa", b"bbbbbbbb", b"cccccccc", b"dddddddd"):
        tester.sendto(datagram, ("127.0.0.1", port))
    agent.until(lambda _: total(agent.of(conn, "datagram")) == 32, what="32 octets in datagram events")
    events = agent.of(conn, "datagram")
    assert events[0]["hex"] == b"aaaaaaaa".hex() and "size" not in events[0]
    assert (events[1]["hex"], events[1]["n"], events[1]["size"]) == (b"bb".hex(), 2, 8)  # crossed the limit
    counted = events[2:]
    assert all(e["truncated"] and "hex" not in e and e["peer"] == list(tester.getsockname()) for e in counted)
    assert sum(e["count"] for e in counted) == 2  # the cut one had its own event
    assert total(counted) == 6 + 16


def os_write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def test_reading_stdin_never_waits_for_stdout_to_be_read(agent, sockets):
    """The harness writes commands without reading events; the agent, flooded with data to report, must still
    read them all. (The old agent blocked writing stdout, so it stopped reading stdin: both sides waited.)"""
    servers = [sockets(socket.create_server(("127.0.0.1", 0))) for _ in range(2)]
    peers = []
    for server in servers:
        server.settimeout(5)
        agent.send(op="connect", host="127.0.0.1", port=server.getsockname()[1])
        conn = agent.expect("connecting")["conn"]
        peers.append(sockets(server.accept()[0]))
        agent.expect("connected", conn=conn)
    flooded, sink = (e["conn"] for e in agent.events if e["ev"] == "connected")
    flooder, _never_reads = peers

    agent.pause()
    flood = os.urandom(8 << 20)

    def flood_it():
        try:
            flooder.settimeout(20)
            flooder.sendall(flood)
        except OSError:
            pass

    commands = b"".join((json.dumps({"op": "send", "conn": sink, "hex": os.urandom(4096).hex()}) + "\n").encode()
                        for _ in range(2000)) + b'{"op": "quit"}\n'
    written = threading.Event()

    def write_them():
        try:
            os_write_all(agent.proc.stdin.fileno(), commands)
            written.set()
        except OSError:
            pass

    threads = [threading.Thread(target=flood_it, daemon=True), threading.Thread(target=write_them, daemon=True)]
    for thread in threads:
        thread.start()
    finished = written.wait(10)
    if not finished:
        agent.proc.kill()  # unblocks the writer (EPIPE) and the flooder (RST)
    agent.resume()
    for thread in threads:
        thread.join(10)
    assert finished, "the agent stopped reading its stdin while nobody read its stdout"
    agent.expect("bye", timeout=30)
    assert agent.proc.wait(5) == 0
    assert agent.events[-1]["ev"] == "bye"
    assert not [e for e in agent.events if e["ev"] == "bad-command"]
    assert 0 < len(agent.of(sink, "sent")) <= 2000
    got = b"".join(bytes.fromhex(e["hex"]) for e in agent.of(flooded, "data"))
    assert flood.startswith(got) and got


def rss_octets(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), None)


def test_unread_output_stops_the_network_reads_not_stdin(agent, sockets):
    server = sockets(socket.create_server(("127.0.0.1", 0)))
    server.settimeout(5)
    agent.send(op="connect", host="127.0.0.1", port=server.getsockname()[1], record=256 << 20)
    conn = agent.expect("connecting")["conn"]
    flooder = sockets(server.accept()[0])
    agent.expect("connected", conn=conn)
    flooder.setblocking(False)
    chunk = os.urandom(1 << 16)
    sent = 0

    def flood_until_stalled(limit: int, patience: float) -> int:
        """Send up to ``limit`` octets, stopping when the agent takes nothing for ``patience`` s; the octets sent."""
        nonlocal sent
        start = sent
        deadline = time.monotonic() + 20
        while sent - start < limit and time.monotonic() < deadline:
            if not select.select([], [flooder], [], patience)[1]:
                break
            try:
                sent += flooder.send(chunk)
            except BlockingIOError:
                pass
        return sent - start

    agent.pause()
    first = flood_until_stalled(96 << 20, 1.0)
    # Output over 32 MiB stops the reading; kernel buffers on loopback hold a few MiB more.
    assert 14 << 20 < first < 64 << 20, f"the agent took {first} octets with nobody reading its events"
    rss = rss_octets(agent.proc.pid)
    assert rss is None or rss < 400 << 20, f"agent RSS {rss}"

    # stdin is still read while the network is not.
    agent.send(op="keepalive", conn=conn, keepalive=None)
    commands = b"".join((json.dumps({"op": "hold", "conn": "c99"}) + "\n").encode() for _ in range(20000))
    writer = threading.Thread(target=os_write_all, args=(agent.proc.stdin.fileno(), commands), daemon=True)
    writer.start()
    writer.join(5)
    assert not writer.is_alive(), "the agent did not read stdin while its output was throttled"

    agent.resume()
    assert flood_until_stalled(4 << 20, 10.0) >= 4 << 20, "the agent did not read again once its output drained"
    flooder.close()
    agent.expect("eof", conn=conn, timeout=20)
    assert agent.expect("keepalive-set", conn=conn)
    assert len([e for e in agent.events if e["ev"] == "bad-command"]) == 20000
    assert total(agent.of(conn, "data")) == sent
