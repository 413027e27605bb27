"""The ``ssh`` fixture: an SSH IUT server, and SSH sessions from the tester to it.

A session is a TCP connection the tester's agent opens to the IUT, with asyncssh in the pytest process on
the other end of a relay (fixtures/testers/relay.py): the bytes leave from the tester pod, so freezing or
blackholing it acts on them, and muting the relay makes the tester silent at the SSH layer while its
kernel keeps acknowledging. The tester logs in as the manifest's user with the run's user key.

What a case judges comes from the tester's message log (``ssh.txt``, with times) and the capture's
packets (``packets.txt``): with aes128-gcm@openssh.com every encrypted packet keeps its length in clear, so
the capture times the IUT's keepalives exactly even though their content is hidden.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from dataclasses import dataclass

import pytest

from fixtures.peers import Manifest
from fixtures.sessions import CaseWorld
from fixtures.sockwatch import SocketWatch
from fixtures.sshwire import WirePacket, ssh_packets
from fixtures.testers.relay import StreamRelay
from fixtures.testers.ssh import SshTester
from fixtures.testers.tcp import TcpTester
from fixtures.timeline import conn_key
from fixtures.waiting import TimedOut, wait_until

LOGIN_TIMEOUT = 20.0
TESTER_PORT = 2222  # where a client IUT dials the tester
RECONNECT_WAIT = 10.0  # seconds a client IUT is given to dial the tester
REPLY_BOUND = 3.0  # seconds a reply to a request may take: milliseconds normally; only "answered" vs "never"
QUIET_WATCH = 2.0  # seconds the suite watches for a reply that must not come
SETTLE_QUIET = 0.5  # seconds without a segment that make a connection idle
# Socket states that mean the IUT itself closed (CLOSE-WAIT is the peer's close, not yet the IUT's).
CLOSED_BY_IUT = {"FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "LAST-ACK", "TIME-WAIT", "gone"}


@dataclass
class Ending:
    """How and when (capture or socket-watch time) the IUT ended the session."""

    t: float
    how: str

    def describe(self) -> str:
        return self.how


class SshSession:
    """One login of the tester's: its agent connection, relay and asyncssh client."""

    def __init__(self, case: SshCase, conn: str | None = None) -> None:
        """Dial a server IUT; or, with ``conn`` (a connection a client IUT opened), play the server on it."""
        self.case = case
        world = case.world
        creds = world.credentials
        if conn is None:
            self.conn = case.agent.connect(world.iut_address, case.port)
            opened = case.agent.find(lambda e: e.conn == self.conn and e.ev == "connected")
            self.local_port = int(opened.data["local"][1]) if opened else None
            self.iut_port = case.port
        else:
            self.conn = conn
            accepted = case.agent.find(lambda e: e.conn == conn and e.ev == "accepted")
            self.local_port = TESTER_PORT
            self.iut_port = int(accepted.data["peer"][1]) if accepted and "peer" in accepted.data else None
        self.relay = StreamRelay(case.agent, self.conn)
        self.ssh = SshTester(self.relay.socket, timeout=LOGIN_TIMEOUT)
        self.error = (self.ssh.connect(case.user, creds.ssh_user_key) if conn is None
                      else self.ssh.accept(creds.ssh_host_key, creds.ssh_user_public_key))

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def key(self):
        world = self.case.world
        return conn_key((world.iut_address, self.iut_port), (world.tester_address, self.local_port))

    def packets(self) -> list[WirePacket]:
        return [p for p in ssh_packets(self.case.world.capture.segments()).packets if p.conn == self.key]

    def wire_end(self, after: float) -> Ending | None:
        """The IUT's FIN or RST on this connection after wall time ``after``, from the capture."""
        log = ssh_packets(self.case.world.capture.segments())
        ends = [(t, kind) for t, src, kind, key in log.ends if key == self.key and src == self.case.world.iut_address
                and t > after]
        return Ending(ends[0][0], f"the IUT's TCP {ends[0][1].upper()}") if ends else None

    def close(self) -> None:
        self.ssh.close()
        self.relay.close()
        with contextlib.suppress(Exception):
            self.case.agent.close(self.conn)


class SshCase:
    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.agent: TcpTester | None = None
        self.sessions: list[SshSession] = []  # open
        self.history: list[SshSession] = []  # every session of the case, for its ssh.txt
        self.sockwatch: SocketWatch | None = None

    def start(self, knobs: dict | None = None, command: str | None = None) -> SshCase:
        """Build the world and start the IUT: plain, with the keepalive knobs, or (``command``, a role key
        such as idle-timeout-command) with that command and ``knobs`` in place of its keepalive command."""
        world = self.world
        world.require(keepalive=knobs is not None and command is None, needs_container=knobs is not None)
        if command is not None:
            spec = world.manifest.role("ssh", world.role)
            if spec.option(command) is None:
                world.verdicts.not_applicable(f"{world.manifest.name} gives no {command} for the SSH {world.role}")
            world.manifest = with_command(world.manifest, world.role, spec.option(command))
        elif knobs is not None and not self.claims("keepalive"):
            world.verdicts.not_applicable(f"{world.manifest.name} does not claim SSH keepalives")
        world.build(knobs, tester_port=TESTER_PORT)
        self.agent = TcpTester(world.tester_pod)
        world.cleanups.append(self.close_all)
        world.cleanups.append(self.agent.stop)
        world.logs["tester.log"] = self.agent.log
        world.logs["ssh.txt"] = self.log
        world.logs["packets.txt"] = lambda: ssh_packets(world.capture.segments()).to_text()
        if world.external:
            self.port = world.iut_port
            return self
        if world.role == "client":
            self.agent.listen(TESTER_PORT, host=world.net.any_address)
        world.iut.start()
        world.iut.wait_ready(probe=lambda: self.agent.find(lambda e: e.ev == "accepted"))
        self.port = world.iut.port
        return self

    def claims(self, feature: str) -> bool:
        section = self.world.manifest.protocols.get("ssh")
        return section is not None and feature in section.features

    def honours(self, knob: str) -> bool:
        """Whether the keepalive command (or its files) takes the knob: one it never mentions is not honoured."""
        spec = self.world.manifest.role("ssh", self.world.role)
        command, files = spec.template(keepalive=True)
        text = " ".join(command or []) + " ".join(files.values()) + " ".join(spec.keepalive_sysctls.values())
        return "{" + knob + "}" in text

    def dead_peer_log(self, bound: float = 3.0) -> str | None:
        """The IUT's log line (its manifest's dead-peer-log) saying it gave up a dead peer, waited for up to
        ``bound`` s; "" when it never showed, None when the manifest names no such line."""
        spec = self.world.manifest.role("ssh", self.world.role)
        pattern = spec.option("dead-peer-log") if spec is not None else ""
        iut = getattr(self.world, "iut", None)
        if not pattern or iut is None or iut.container is None:
            return None

        def found():
            match = re.search(pattern, iut.container.logs(tail=200))
            return match.group(0).replace("\r", "") if match else None

        try:
            return wait_until(found, bound, poll_max=0.2, what="the IUT's log line")
        except TimedOut:
            return ""

    @property
    def user(self) -> str:
        spec = self.world.manifest.role("ssh", self.world.role)
        return spec.option("user") if spec is not None else "aliveness"

    def session(self, wait: float = RECONNECT_WAIT, missing: str | None = None) -> SshSession | None:
        """A login: the tester dials a server IUT, or takes a client IUT's next connection (within ``wait``
        seconds) and plays the server. A client that does not dial makes the rest inconclusive, or, with
        ``missing``, returns None (for a case that judges the dialling itself)."""
        conn = None
        if self.world.role == "client":
            taken = {s.conn for s in self.history}
            found = self.agent.maybe(lambda e: e.ev == "accepted" and e.conn not in taken, wait)
            if found is None:
                if missing is not None:
                    return None
                self.world.verdicts.inconclusive_rest(f"the IUT client did not dial the tester within {wait:g} s")
            conn = found.conn
        session = SshSession(self, conn)
        self.sessions.append(session)
        self.history.append(session)
        if not session.ok:
            what = f"log in as {self.user!r}" if conn is None else "take the IUT client's login"
            self.world.verdicts.inconclusive_rest(f"the tester could not {what}: {session.error}")
        return session

    def watch_socket(self, session: SshSession | None = None) -> None:
        """Follow the IUT's socket of ``session`` (needed for a client IUT, whose redials open more), or
        its first one to the tester."""
        local = session.iut_port if session is not None and self.world.role == "client" else None
        self.sockwatch = SocketWatch(self.world.iut.sidecar, self.world.tester_address, local_port=local)
        self.world.cleanups.append(self.sockwatch.stop)
        self.world.logs["socket-states.txt"] = lambda: "\n".join(f"{t:.3f} {s}" for t, s in self.sockwatch.changes)

    def wait_ending(self, session: SshSession, timeout: float, after: float) -> Ending | None:
        """The IUT's end of ``session`` after ``after``: its FIN or RST on the wire, a DISCONNECT the tester
        read, or (after watch_socket()) its socket leaving ESTABLISHED, whichever shows first."""

        def ended():
            found = session.wire_end(after)
            disconnect = [m for m in session.ssh.received(after, (1,))]
            if disconnect and (found is None or disconnect[0].t < found.t):
                reason = f" (reason {disconnect[0].name})" if disconnect[0].name else ""
                found = Ending(disconnect[0].t, f"SSH_MSG_DISCONNECT from the IUT{reason}")
            if found is None and self.sockwatch is not None:
                closed = self.sockwatch.closed_by_iut(CLOSED_BY_IUT)
                if closed and closed[1] > after:
                    went = "vanished" if closed[2] == "gone" else f"went {closed[2]}"
                    found = Ending(closed[0], f"its socket {went} (seen in its namespace)")
            return found

        try:
            return wait_until(ended, timeout, poll_max=0.1, what="the IUT to end the session")
        except TimedOut:
            return None

    def close_all(self) -> None:
        while self.sessions:
            self.sessions.pop().close()

    def log(self) -> str:
        return "\n".join(f"session {i + 1}:\n{s.ssh.log()}" for i, s in enumerate(self.history))


def with_command(manifest: Manifest, role: str, argv: list[str]) -> Manifest:
    """A copy of ``manifest`` whose SSH ``role`` runs ``argv`` when knobs are given."""
    section = manifest.protocols["ssh"]
    spec = dataclasses.replace(section.roles[role], keepalive_command=argv, keepalive_files={}, keepalive_sysctls={},
                               keepalive_supported=True)
    section = dataclasses.replace(section, roles={**section.roles, role: spec})
    return dataclasses.replace(manifest, protocols={**manifest.protocols, "ssh": section})


def with_sysctls(manifest: Manifest, role: str, sysctls: dict[str, str]) -> Manifest:
    """A copy of ``manifest`` whose SSH ``role`` also gets ``sysctls`` in its namespace when knobs are given."""
    section = manifest.protocols["ssh"]
    spec = section.roles[role]
    spec = dataclasses.replace(spec, keepalive_sysctls={**spec.keepalive_sysctls, **sysctls})
    section = dataclasses.replace(section, roles={**section.roles, role: spec})
    return dataclasses.replace(manifest, protocols={**manifest.protocols, "ssh": section})


def last_packet_from_tester(session: SshSession, before: float) -> float | None:
    """Capture time of the tester's last packet on the session before wall time ``before``."""
    mine = [p.t for p in session.packets() if p.src == session.case.world.tester_address and p.t <= before]
    return mine[-1] if mine else None


def settled(case: SshCase, bound: float = 5.0) -> bool:
    """Wait until the capture shows the connection quiet for SETTLE_QUIET s with every octet acknowledged
    both ways, so a fault that follows starts from an idle session (nothing left to retransmit)."""
    world = case.world

    def quiet(timeline) -> bool:
        if not timeline.events or time.time() - timeline.events[-1].t < SETTLE_QUIET:
            return False
        return (timeline.all_acknowledged(world.iut_address, world.tester_address)
                and timeline.all_acknowledged(world.tester_address, world.iut_address))

    return bool(world.capture.wait_for(quiet, bound))


@pytest.fixture
def ssh(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "ssh") as world:
        yield SshCase(world)
