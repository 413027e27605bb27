"""The ``tls`` fixture: a TLS IUT server, and TLS sessions from the tester to it, each a fresh connection.

Each session is a TCP connection the tester's agent opens to the IUT, with tlslite-ng in the pytest
process on the other end of a relay (fixtures/testers/relay.py): the bytes leave from the tester pod,
and the capture in the IUT's namespace sees them. Several reference servers (gnutls-serv, openssl
s_server) serve one connection at a time, so opening a session closes the one before.

What a case judges comes from the tester's decrypted records (each case's ``tls.txt``, with times); the
capture's record view (``records.txt``) shows the same exchange as the wire carried it.
"""
from __future__ import annotations

import contextlib
import os

import pytest

from fixtures.sessions import CaseWorld
from fixtures.testers import tls as tlsmod
from fixtures.testers.relay import StreamRelay
from fixtures.testers.tcp import TcpTester
from fixtures.testers.tls import PEER_ALLOWED_TO_SEND, REQUEST, RESPONSE, HeartbeatMessage, Record, TlsTester
from fixtures.timeline import conn_key
from fixtures.tlswire import tls_records

# Seconds the suite waits for the IUT's answer to a heartbeat (or its alert): an answer takes a few
# milliseconds; the bound only has to tell "answered" from "never" on a loaded machine.
ANSWER_BOUND = 2.0
HANDSHAKE_TIMEOUT = 10.0
VERSIONS = ("1.2", "1.3")


def payload(size: int, label: str) -> bytes:
    """``size`` octets starting with ``label``, every octet value included from 300 octets on."""
    body = label.encode() + b":" + (bytes(range(256)) if size >= 300 else b"") + os.urandom(size)
    return body[:size]


class Session:
    """One TLS connection of the tester's: its agent connection, relay and tlslite-ng endpoint."""

    def __init__(self, case: TlsCase, version: str, mode: int | None) -> None:
        self.case = case
        self.version = version
        self.mode = mode
        self.conn = case.agent.connect(case.world.iut_address, case.port)
        opened = case.agent.find(lambda e: e.conn == self.conn and e.ev == "connected")
        self.local_port = int(opened.data["local"][1]) if opened else None
        self.relay = StreamRelay(case.agent, self.conn)
        self.tls = TlsTester(self.relay.socket, timeout=HANDSHAKE_TIMEOUT)
        self.handshake = self.tls.handshake(version, mode)
        if self.handshake.ok:
            self.tls.start_reading()

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

    def capture_times(self, records: list[Record]) -> list[float] | None:
        """The capture's time for each of ``records`` (received from the IUT), or None if they cannot be matched.

        The tester reads the IUT's records in order, so the last N records the capture shows from the IUT on
        this connection are the N the tester received. The match is trusted only when every pair differs in
        length by the same cipher overhead (and, below TLS 1.3, has the same content type).
        """
        received = self.tls.received()
        wire = [w for w in tls_records(self.case.world.capture.segments()).records
                if w.src == self.case.world.iut_address
                and w.conn == conn_key((self.case.world.iut_address, self.case.port),
                                       (self.case.world.tester_address, self.local_port))]
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
        return self.tls.ended[1] if self.tls.ended else "the connection is still open"

    def close(self) -> None:
        self.tls.close()
        self.relay.close()
        with contextlib.suppress(Exception):  # the IUT may have closed it already
            self.case.agent.close(self.conn)


class TlsCase:
    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.agent: TcpTester | None = None
        self.sessions: list[Session] = []  # open
        self.history: list[Session] = []  # every session of the case, for its tls.txt

    def start(self, version: str | None = None, needs_heartbeat: bool = False) -> TlsCase:
        """Start the IUT server; not applicable when it does not speak ``version`` or lacks heartbeat (if needed)."""
        world = self.world
        world.require(keepalive=False, needs_container=False)
        spec = world.manifest.role("tls", "server") if world.manifest.protocols.get("tls") else None
        if version is not None and spec is not None and version not in spec.option("versions"):
            world.verdicts.not_applicable(f"{world.manifest.name} does not speak TLS {version} (its versions: "
                                          f"{' '.join(spec.option('versions'))})")
        if needs_heartbeat and not self.claims("heartbeat"):
            world.verdicts.not_applicable(f"{world.manifest.name} does not claim the RFC 6520 heartbeat extension")
        world.build(None)
        self.agent = TcpTester(world.tester_pod)
        world.cleanups.append(self.close_all)
        world.cleanups.append(self.agent.stop)
        world.logs["tester.log"] = self.agent.log
        world.logs["tls.txt"] = self.log
        world.logs["records.txt"] = lambda: tls_records(world.capture.segments()).to_text()
        if world.external:
            self.port = world.iut_port
        else:
            world.iut.start()
            world.iut.wait_ready()
            self.port = world.iut.port
        return self

    def claims(self, feature: str) -> bool:
        section = self.world.manifest.protocols.get("tls")
        return section is not None and feature in section.features

    @property
    def trigger(self) -> str:
        spec = self.world.manifest.role("tls", "server")
        return spec.option("request-trigger") if spec is not None else ""

    def session(self, version: str, mode: int | None = PEER_ALLOWED_TO_SEND) -> Session:
        """A fresh connection and handshake (the one before is closed first)."""
        self.close_all()
        session = Session(self, version, mode)
        self.sessions.append(session)
        self.history.append(session)
        return session

    def open_session(self, version: str, mode: int | None = PEER_ALLOWED_TO_SEND, send_requests: bool = False) -> Session:
        """Like session(), but a failed handshake ends the case inconclusive (it was only the way in).

        ``send_requests``: the case will send HeartbeatRequests, which RFC 6520 §2 allows only to an IUT whose
        Hello said peer_allowed_to_send; any other answer makes the case not applicable.
        """
        session = self.session(version, mode)
        if not session.handshake.ok:
            self.world.verdicts.inconclusive_rest(f"the TLS {version} handshake failed ({session.handshake.describe()}),"
                                                  " so nothing could be sent")
        if send_requests and session.handshake.peer_mode != PEER_ALLOWED_TO_SEND:
            said = tlsmod.MODE_NAMES.get(session.handshake.peer_mode, "no heartbeat extension")
            self.world.verdicts.not_applicable(f"the IUT's TLS {version} Hello carried {said}: RFC 6520 lets the tester"
                                               " send HeartbeatRequests only to a peer that said peer_allowed_to_send")
        return session

    def still_serving(self, version: str) -> tuple[bool, str]:
        """A fresh handshake on a new connection: does the IUT still serve after what a case sent it?"""
        if not self.world.external and self.world.iut.container.status() == "exited":
            return False, (f"the IUT's process exited (exit {self.world.iut.container.exit_code()}; last log: "
                           f"{self.world.iut.container.logs(tail=3).strip()!r})")
        session = self.session(version)
        if session.handshake.ok:
            return True, "a fresh handshake afterwards succeeded"
        return False, f"a fresh handshake afterwards failed: {session.handshake.describe()}"

    def close_all(self) -> None:
        while self.sessions:
            self.sessions.pop().close()

    def log(self) -> str:
        return "\n".join(f"session {i + 1} (TLS {s.version}, heartbeat mode {s.mode}):\n{s.tls.log()}"
                         for i, s in enumerate(self.history))

    def evidence(self):
        return self.world.evidence()


@pytest.fixture
def tls(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "tls") as world:
        yield TlsCase(world)
