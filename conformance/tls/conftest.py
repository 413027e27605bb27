"""The ``tls`` fixture: a TLS (or DTLS) IUT, and sessions between the tester and it, each a fresh connection.

Over TLS each session is a TCP connection the tester's agent opens to the IUT (or takes from a client IUT),
with tlslite-ng in the pytest process on the other end of a relay (fixtures/testers/relay.py): the bytes
leave from the tester pod, and the capture in the IUT's namespace sees them. Over DTLS
(conformance/dtls/conftest.py opens the world for the ``dtls`` protocol) a session is a UDP association
through the agent's UDP socket, with the DTLS tester (fixtures/testers/dtls.py) on the relay's datagram
socket; the same cases run over both. Several reference servers (gnutls-serv, openssl s_server) serve one
connection at a time, so opening a session closes the one before.

What a case judges comes from the tester's decrypted records (each case's ``tls.txt``, with times); the
capture's record view (``records.txt``) shows the same exchange as the wire carried it.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from fixtures.sessions import CaseWorld
from fixtures.testers import dtls as dtlsmod
from fixtures.testers import tls as tlsmod
from fixtures.testers.dtls import DtlsTester
from fixtures.testers.relay import DatagramRelay, StreamRelay
from fixtures.testers.tcp import TcpTester
from fixtures.testers.tls import PEER_ALLOWED_TO_SEND, REQUEST, RESPONSE, HeartbeatMessage, Record, TlsTester
from fixtures.timeline import conn_key
from fixtures.tlswire import tls_records

# Seconds the suite waits for the IUT's answer to a heartbeat (or its alert): an answer takes a few
# milliseconds; the bound only has to tell "answered" from "never" on a loaded machine.
ANSWER_BOUND = 2.0
HANDSHAKE_TIMEOUT = 10.0
TESTER_PORT = 9443
RECONNECT_WAIT = 5.0  # seconds a client IUT is given to dial the tester for a session
CAPTURE_CATCH_UP = 3.0  # seconds the capture may lag behind what the tester saw (a loaded machine)
VERSIONS = ("1.2", "1.3")
RECORD_ALL = 1 << 40  # a DTLS session's UDP socket hands every octet over (the agent records this many)


def label(version: str) -> str:
    """How texts name a version: "TLS 1.2", "DTLS 1.2"."""
    return "DTLS 1.2" if version == dtlsmod.VERSION else f"TLS {version}"


def payload(size: int, label: str) -> bytes:
    """``size`` octets starting with ``label``, every octet value included from 300 octets on."""
    body = label.encode() + b":" + (bytes(range(256)) if size >= 300 else b"") + os.urandom(size)
    return body[:size]


class Session:
    """One TLS connection of the tester's: its agent connection, relay and tlslite-ng endpoint.

    A server IUT is dialled; a client IUT's connection (``conn``, accepted by the tester) is taken, and the
    tester then plays the server, with the run's server certificate.
    """

    def __init__(self, case: TlsCase, version: str, mode: int | None, conn: str | None = None) -> None:
        self.case = case
        self.version = version
        self.mode = mode
        world = case.world
        self.peer: tuple[str, int] | None = None  # a client IUT's DTLS address and port
        if case.datagram:
            self._open_datagram(case, conn)
        elif conn is None:
            self.conn = case.agent.connect(world.iut_address, case.port)
            opened = case.agent.find(lambda e: e.conn == self.conn and e.ev == "connected")
            self.local_port = int(opened.data["local"][1]) if opened else None
            self.iut_port = case.port
        else:
            self.conn = conn
            accepted = case.agent.find(lambda e: e.conn == conn and e.ev == "accepted")
            self.local_port = TESTER_PORT
            self.iut_port = int(accepted.data["peer"][1]) if accepted and "peer" in accepted.data else None
        if not case.datagram:
            self.relay = StreamRelay(case.agent, self.conn)
            self.tls = TlsTester(self.relay.socket, timeout=HANDSHAKE_TIMEOUT)
        server = None
        if conn is not None:
            creds = world.credentials
            server = (creds.server_cert.decode(), creds.server_key.decode())
        self.handshake = self.tls.handshake(version, mode, server=server)
        if self.handshake.ok:
            self.tls.start_reading()

    def _open_datagram(self, case: TlsCase, peer: tuple[str, int] | None) -> None:
        """A UDP socket of the agent's connected to a server IUT; or, for a client IUT, its datagrams on the
        tester's port (``peer``: where it sends from)."""
        world = case.world
        if peer is None:
            self.conn = case.agent.udp_open(peer=(world.iut_address, case.port), record=RECORD_ALL)
            self.local_port = int(case.agent.opened(self.conn).data["local"][1])
            self.iut_port = case.port
            self.relay = DatagramRelay(case.agent, self.conn)
        else:
            self.conn, self.peer = case.udp_conn, peer
            self.local_port, self.iut_port = TESTER_PORT, peer[1]
            self.relay = DatagramRelay(case.agent, self.conn, peer)
        self.tls = DtlsTester(self.relay.socket, timeout=HANDSHAKE_TIMEOUT)

    def request(self, data: bytes, padding: int = 16, declared: int | None = None) -> Record:
        return self.tls.send_heartbeat(REQUEST, data, padding, declared)

    def responses(self, after: float | None = None) -> list[tuple[Record, HeartbeatMessage]]:
        return self.tls.heartbeats(RESPONSE, after)

    def requests(self, after: float | None = None) -> list[tuple[Record, HeartbeatMessage]]:
        return self.tls.heartbeats(REQUEST, after)

    def answer_to(self, sent: Record, data: bytes, bound: float = ANSWER_BOUND) -> HeartbeatMessage | None:
        """The first HeartbeatResponse after ``sent`` carrying ``data`` as its payload (None at the bound)."""
        found = self.tls.wait_for(
            lambda: next((hb for _, hb in self.responses(sent.t) if hb.payload == data), None), bound,
            what="the IUT's HeartbeatResponse")
        return found

    def quiet_for(self, seconds: float, after: float) -> list[Record]:
        """What the IUT sent in ``seconds`` after ``after`` (watched until then, or until the connection ended)."""
        self.tls.wait_for(lambda: self.tls.ended is not None, seconds, what="a quiet connection")
        return self.tls.received(after)

    @property
    def key(self):
        world = self.case.world
        return conn_key((world.iut_address, self.iut_port), (world.tester_address, self.local_port))

    def wire(self):
        """The records the capture shows from the IUT on this session's connection."""
        world = self.case.world
        return [w for w in tls_records(world.capture.segments()).records if w.src == world.iut_address and w.conn == self.key]

    def wire_from_tester(self):
        """The records the capture shows from the tester on this session's connection."""
        world = self.case.world
        return [w for w in tls_records(world.capture.segments()).records
                if w.src == world.tester_address and w.conn == self.key]

    def iut_requests_on_wire(self):
        """The IUT's heartbeat records on the wire: content type 24 (TLS 1.2); in TLS 1.3 every record after its
        handshake, since the type is hidden (the cases that count them send the IUT nothing to answer)."""
        mine = self.wire()
        if self.version != "1.3":
            return [w for w in mine if w.content_type == tlsmod.HEARTBEAT]
        handshake_end = self.tls.records[0].t if self.tls.records else 0.0
        return [w for w in mine if w.content_type == tlsmod.APPLICATION_DATA and w.t >= handshake_end - 0.05]

    def iut_end(self, after: float) -> float | None:
        """Capture time of the IUT's first FIN, RST or alert on this connection after wall time ``after``."""
        log = tls_records(self.case.world.capture.segments())
        ends = [t for t, src, _, key in log.ends if src == self.case.world.iut_address and key == self.key and t > after]
        alerts = [w.t for w in self.wire() if w.content_type == tlsmod.ALERT and w.t > after]
        return min(ends + alerts, default=None)

    def acks_after(self, records) -> int:
        """How many of ``records`` (the IUT's, on the wire) a pure ACK from the tester followed within 1 s."""
        world = self.case.world
        acks = [s.t for s in world.capture.segments() if s.src == world.tester_address and s.conn == self.key
                and s.proto == "tcp" and s.payload_len == 0 and s.has_ack and not (s.is_fin or s.is_rst)]
        return sum(1 for r in records if any(r.t <= t <= r.t + 1.0 for t in acks))

    def clear_alert(self) -> str | None:
        """The first alert the IUT sent in clear on this connection (during a TLS 1.2 handshake), by name.

        What the capture shows, for when the tester could not read it: an alert followed at once by a reset can
        be lost at the tester's socket.
        """
        def alert():
            return next((tlsmod.alert_name(w.body[1]) for w in self.wire()
                         if w.content_type == tlsmod.ALERT and not w.encrypted and len(w.body) >= 2), None)

        def ended(_timeline) -> bool:  # the capture has caught up: it shows the IUT's alert, FIN or RST
            log = tls_records(self.case.world.capture.segments())
            return alert() is not None or any(src == self.case.world.iut_address and key == self.key
                                              for _, src, _, key in log.ends)

        self.case.world.capture.wait_for(ended, CAPTURE_CATCH_UP)
        return alert()

    def capture_times(self, records: list[Record]) -> list[float] | None:
        """The capture's time for each of ``records`` (received from the IUT), or None if they cannot be matched.

        The tester reads the IUT's records in order, so the last N records the capture shows from the IUT on
        this connection, up to the moment the tester read its last one, are the N the tester received (the
        capture in the IUT's namespace sees a record before the tester does: one the IUT sent while the case
        stopped watching is on the wire but not in the tester's list, and must not shift the match). The match
        is trusted only when every pair differs in length by the same cipher overhead (and, below TLS 1.3, has
        the same content type).
        """
        received = self.tls.received()
        if not received:
            return None
        wire = [w for w in self.wire() if w.t <= received[-1].t]
        if not received or len(wire) < len(received):
            return None
        pairs = list(zip(wire[-len(received):], received, strict=True))
        if len({w.length - len(r.body) for w, r in pairs}) != 1:
            return None
        if self.version != "1.3" and any(w.content_type != r.content_type for w, r in pairs):
            return None
        at = {id(r): w.t for w, r in pairs}
        times = [at.get(id(r)) for r in records]
        return None if None in times else times

    def alerts(self, after: float | None = None) -> list[Record]:
        return self.tls.alerts(after)

    def trigger(self) -> Record:
        """Send the IUT's request trigger (application data that makes it send a HeartbeatRequest)."""
        return self.tls.send(tlsmod.APPLICATION_DATA, self.case.trigger.encode())

    def ended_text(self) -> str:
        if self.tls.ended:
            return self.tls.ended[1]
        return "no alert ended the association" if self.case.datagram else "the connection is still open"

    def close(self) -> None:
        self.tls.close()
        self.relay.close()
        if self.peer is not None:
            return  # the tester's port stays open for the client IUT's next association
        with contextlib.suppress(Exception):  # the IUT may have closed it already
            self.case.agent.close(self.conn)


@dataclass
class Finding:
    version: str
    outcome: str  # "pass" | "fail" | "inconclusive" | "not-applicable"
    message: str
    measured: dict = field(default_factory=dict)


class PerVersion:
    """One requirement judged once per TLS version in one case, recorded as a single verdict.

    The verdict fails if any version failed, is inconclusive if any could not be judged (and none failed),
    passes if at least one passed and the rest did not apply; its message gives each version's finding,
    failures first, and its measured values are keyed by version.
    """

    def __init__(self, verdict, requirement: str) -> None:
        self.verdict = verdict
        self.requirement = requirement
        self.findings: list[Finding] = []

    def check(self, version: str, ok: bool, message: str, **measured) -> None:
        self.findings.append(Finding(version, "pass" if ok else "fail", message, measured))

    def inconclusive(self, version: str, message: str) -> None:
        self.findings.append(Finding(version, "inconclusive", message))

    def not_applicable(self, version: str, message: str) -> None:
        self.findings.append(Finding(version, "not-applicable", message))

    def judged(self, version: str) -> bool:
        return any(f.version == version for f in self.findings)

    def record(self, tolerance: str | None = None) -> None:
        order = {"fail": 0, "inconclusive": 1, "pass": 2, "not-applicable": 3}
        findings = sorted(self.findings, key=lambda f: (order[f.outcome], f.version))
        text = "; ".join(f"{label(f.version)}: {f.message}" for f in findings) or "no TLS version was tried"
        measured = {f"tls{f.version}": {"outcome": f.outcome, **f.measured} for f in self.findings}
        outcomes = {f.outcome for f in self.findings}
        if "fail" in outcomes:
            self.verdict.check(self.requirement, False, text, measured=measured, tolerance=tolerance)
        elif "inconclusive" in outcomes:
            self.verdict.inconclusive(self.requirement, text, measured=measured)
        elif "pass" in outcomes:
            self.verdict.check(self.requirement, True, text, measured=measured, tolerance=tolerance)
        else:
            self.verdict.not_applicable_for(self.requirement, text)


class TlsCase:
    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.agent: TcpTester | None = None
        self.datagram = world.protocol == "dtls"
        self.udp_conn: str | None = None  # DTLS with a client IUT: the tester's UDP socket on TESTER_PORT
        self.sessions: list[Session] = []  # open
        self.history: list[Session] = []  # every session of the case, for its tls.txt

    def start(self, needs_heartbeat: bool = False, knobs: dict | None = None) -> TlsCase:
        """Start the IUT, with its keepalive command and ``knobs`` if given (not applicable when it lacks
        heartbeat and the case needs it, or has no keepalive command when knobs are given)."""
        world = self.world
        world.require(keepalive=knobs is not None, needs_container=knobs is not None)
        if needs_heartbeat and not self.claims("heartbeat"):
            world.verdicts.not_applicable(f"{world.manifest.name} does not claim the RFC 6520 heartbeat extension")
        world.build(knobs, tester_port=TESTER_PORT)
        self.agent = TcpTester(world.tester_pod)
        world.cleanups.append(self.close_all)
        world.cleanups.append(self.agent.stop)
        world.logs["tester.log"] = self.agent.log
        world.logs["tls.txt"] = self.log
        world.logs["records.txt"] = lambda: tls_records(world.capture.segments()).to_text()
        if world.external:
            self.port = world.iut_port
            return self
        if world.role == "client" and self.datagram:
            self.udp_conn = self.agent.udp_open(host=world.net.any_address, port=TESTER_PORT, record=RECORD_ALL)
        elif world.role == "client":
            self.agent.listen(TESTER_PORT, host=world.net.any_address)
        world.iut.start()
        world.iut.wait_ready(probe=lambda: self.agent.find(lambda e: e.ev in ("accepted", "datagram")))
        self.port = world.iut.port
        return self

    @property
    def client(self) -> bool:
        """The IUT is the client: it dials the tester, which plays the server."""
        return self.world.role == "client"

    @property
    def versions(self) -> list[str]:
        """The TLS versions the manifest says the IUT speaks, of those the tester speaks (1.2, 1.3); DTLS 1.2."""
        if self.datagram:
            return [dtlsmod.VERSION]
        spec = self.world.manifest.role("tls", self.world.role) if "tls" in self.world.manifest.protocols else None
        listed = spec.option("versions") if spec is not None else list(VERSIONS)
        return [v for v in VERSIONS if v in listed]

    def claims(self, feature: str) -> bool:
        section = self.world.manifest.protocols.get(self.world.protocol)
        return section is not None and feature in section.features

    @property
    def trigger(self) -> str:
        spec = self.world.manifest.role(self.world.protocol, self.world.role)
        return spec.option("request-trigger") if spec is not None else ""

    def session(self, version: str, mode: int | None = PEER_ALLOWED_TO_SEND) -> Session | None:
        """A fresh connection and handshake (the one before is closed first).

        For a client IUT, the tester takes the IUT's next connection (its first, or the one it dials after
        the last ended); None if it dials no more within ``RECONNECT_WAIT``.
        """
        self.close_all()
        conn = None
        if self.client and self.datagram:  # a datagram from an address and port no session has had
            taken = {s.peer for s in self.history}
            found = self.agent.maybe(lambda e: e.ev == "datagram" and e.conn == self.udp_conn
                                     and tuple(e.data.get("peer") or ())[:2] not in taken, RECONNECT_WAIT)
            if found is None:
                return None
            conn = tuple(found.data["peer"][:2])
        elif self.client:
            taken = {s.conn for s in self.history}
            found = self.agent.maybe(lambda e: e.ev == "accepted" and e.conn not in taken, RECONNECT_WAIT)
            if found is None:
                return None
            conn = found.conn
        session = Session(self, version, mode, conn)
        self.sessions.append(session)
        self.history.append(session)
        return session

    def each_version(self, *judges: PerVersion, mode: int | None = PEER_ALLOWED_TO_SEND,
                     send_requests: bool = False, only: str | None = None) -> Iterator[tuple[str, Session]]:
        """A session per TLS version the IUT speaks, its handshake completed; a version that cannot be tried
        is marked on every judge (inconclusive: the handshake failed; not applicable: see send_requests).

        ``send_requests``: the case will send HeartbeatRequests, which RFC 6520 §2 allows only to an IUT whose
        Hello said peer_allowed_to_send; for any other answer the version is not applicable.
        """
        for version in [only] if only else self.versions:
            session = self.session(version, mode)
            why, inconclusive = None, True
            if session is None:
                why = f"the IUT client did not dial the tester again within {RECONNECT_WAIT:g} s"
            elif not session.handshake.ok:
                why = f"the handshake failed ({session.handshake.describe()}), so nothing could be sent"
            elif send_requests and session.handshake.peer_mode != PEER_ALLOWED_TO_SEND:
                said = tlsmod.MODE_NAMES.get(session.handshake.peer_mode, "no heartbeat extension")
                why, inconclusive = (f"the IUT's Hello carried {said}: RFC 6520 lets the tester send HeartbeatRequests"
                                     " only to a peer that said peer_allowed_to_send"), False
            if why is not None:
                for judge in judges:
                    (judge.inconclusive if inconclusive else judge.not_applicable)(version, why)
                continue
            yield version, session

    def still_serving(self, version: str) -> tuple[bool, str]:
        """A fresh handshake on a new connection: does the IUT still serve after what a case sent it?

        For a client IUT: does its process still run, and does it dial again (when its command redials)?
        """
        if not self.world.external and self.world.iut.container.status() == "exited":
            return False, (f"the IUT's process exited (exit {self.world.iut.container.exit_code()}; last log: "
                           f"{self.world.iut.container.logs(tail=3).strip()!r})")
        session = self.session(version)
        if session is None:
            return True, "the IUT's process still runs (it did not dial again)"
        if session.handshake.ok:
            return True, "a fresh handshake afterwards succeeded"
        return False, f"a fresh handshake afterwards failed: {session.handshake.describe()}"

    def revive(self) -> bool:
        """Restart a server IUT that stopped serving, so the next probe of the case meets a fresh one (the
        timeline marks it); False for a client IUT or one the suite does not run."""
        if self.world.external or self.client:
            return False
        self.close_all()
        self.world.mark(time.time(), "IUT restarted: it stopped serving")
        self.world.iut.container.c.restart(timeout=1)
        self.world.iut.wait_ready()
        return True

    def close_all(self) -> None:
        while self.sessions:
            self.sessions.pop().close()

    def log(self) -> str:
        return "\n".join(f"session {i + 1} ({label(s.version)}, heartbeat mode {s.mode}):\n{s.tls.log()}"
                         for i, s in enumerate(self.history))

    def evidence(self):
        return self.world.evidence()


@pytest.fixture
def tls(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "tls") as world:
        yield TlsCase(world)
