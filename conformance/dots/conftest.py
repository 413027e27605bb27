"""The ``dots`` fixture: a DOTS agent as IUT (RFC 9132), the tester as its peer agent over DTLS with the run's
pre-shared key, and the capture rebuilt in clear.

The tester is the CoAP-over-DTLS one (conformance/coap_dtls/conftest.py: the suite's own CoAP codec inside the
DTLS tester's association) speaking DOTS with fixtures/dotswire.py. Against a server IUT it is the DOTS client:
it asks and PUTs the configuration, heartbeats when the case says so, and answers the server's heartbeats 2.04
while ``answering``. Against a client IUT it is the DOTS server: it answers the configuration GET with its
ranges, takes the PUT, answers heartbeats 2.04 and sends its own every ``interval`` while ``heartbeating``.

Everything is timed on the capture: ``from_iut()`` and ``to_iut()`` give the decoded messages with their capture
times, and ``heartbeats_from_iut()`` the IUT's heartbeats with their peer-hb-status.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

import pytest

from conformance.coap_dtls.conftest import CoapDtlsCase
from fixtures.coapwire import ACK, CHANGED, CON, CONTENT, DELETE, GET, NON, PUT, Message, code, decode_udp, encode_udp
from fixtures.dotswire import (
    CONFIG_PATH,
    CONTENT_FORMAT,
    HEARTBEAT,
    HEARTBEAT_PATH,
    MITIGATE_PATH,
    OPTION_CONTENT_FORMAT,
    OPTION_MAX_AGE,
    config_values,
    decode,
    heartbeat,
    path_of,
    path_parameters,
    signal_config,
    uri_path,
)
from fixtures.protocols.dots import is_heartbeat
from fixtures.sessions import CaseWorld
from fixtures.testers.heartbeat import APPLICATION_DATA
from fixtures.waiting import TimedOut, wait_until

CREATED, DELETED = code(2, 1), code(2, 2)
BAD_REQUEST, UNPROCESSABLE = code(4, 0), code(4, 22)
ANSWER_BOUND = 5.0  # seconds a configuration request may take to be answered (CoAP's first retransmission is at 2-3 s)
# The tester as a DOTS server announces these ranges (RFC 9132's recommended ones, but heartbeat-interval from 1 s
# and missing-hb-allowed from 1, so a case can run at a short interval).
TESTER_RANGES = {"heartbeat-interval": (1, 240), "missing-hb-allowed": (1, 20)}
TESTER_DEFAULTS = {"heartbeat-interval": 30, "missing-hb-allowed": 15}


@dataclass(frozen=True)
class Seen:
    """One message of the IUT's, decoded, at its capture time."""

    t: float
    msg: Message

    @property
    def path(self) -> tuple[str, ...]:
        return path_of(self.msg.options)

    @property
    def status(self) -> bool | None:
        """A heartbeat's peer-hb-status (None when it has none)."""
        value = decode(self.msg.payload).get(HEARTBEAT, "peer-hb-status")
        return value if isinstance(value, bool) else None


class DotsPeer:
    """The tester as a DOTS agent, whatever carries it: its state, its answers, its heartbeats and requests. A
    transport's case class provides ``_request_bytes``, ``_reply_bytes``, ``_send`` and ``from_iut``."""

    reliable = False  # over TCP: no message types, and missing-hb-allowed is not negotiated (RFC 9132 §4.5)

    def _dots_init(self) -> None:
        self._tokens = itertools.count(0xD0)
        self.interval = 2.0  # seconds between the tester's own heartbeats (its agreed heartbeat-interval)
        self.heartbeating = False  # the tester sends heartbeats (client-role cases: its own thread)
        self.answering = True  # the tester answers the IUT's requests (heartbeats 2.04; as server, config too)
        self.answer_delay = 0.0  # seconds the tester holds each answer to an IUT heartbeat back
        self.answer_heartbeats = True  # cleared: the IUT's heartbeats go unanswered (its other requests do not)
        self.tester_heartbeats: list[tuple[float, bytes]] = []  # (time.time(), token) of each heartbeat the tester sent
        self.config = {name: dict(TESTER_DEFAULTS) for name in ("mitigating-config", "idle-config")}
        self.sids: set[int] = set()
        self._stop = threading.Event()

    def _start_heartbeats(self) -> None:
        threading.Thread(target=self._heartbeat_loop, daemon=True, name="dots-heartbeats").start()
        self.world.cleanups.insert(0, self._stop.set)

    def token(self) -> bytes:
        return (next(self._tokens) & 0xFFFF).to_bytes(2, "big")

    def answer(self, msg: Message, send) -> None:
        """Answer one request of the IUT's as the case's peer agent does (``send`` puts the reply on the session
        it came on); heartbeat answers are held back ``answer_delay`` seconds, on a thread of their own."""
        if not self.answering or msg.error or msg.cls != 0 or not msg.code:
            return
        if not self.answer_heartbeats and is_heartbeat(path_of(msg.options)):
            return
        answer_code, body, max_age = self.serve(msg)
        if answer_code is None:
            return
        options = [(OPTION_CONTENT_FORMAT, CONTENT_FORMAT.to_bytes(2, "big"))] if body else []
        if max_age is not None:
            options.append((OPTION_MAX_AGE, max_age.to_bytes(4, "big")))
        reply = self._reply_bytes(msg, answer_code, options, body)
        if self.answer_delay and is_heartbeat(path_of(msg.options)):
            timer = threading.Timer(self.answer_delay, self._held_answer, (send, reply))
            timer.daemon = True
            timer.start()
            return
        send(reply)

    def _held_answer(self, send, reply: bytes) -> None:
        """A held-back answer's thread: it goes out unless the tester stopped answering, or the case ended, or the
        session it belongs to is gone (closed under it: the answer has nowhere to go, as for any peer)."""
        if not self.answering or self._stop.is_set():
            return
        try:
            send(reply)
        except OSError:
            pass

    def serve(self, msg: Message) -> tuple[int | None, bytes, int | None]:
        """(code, body, Max-Age) of the tester's answer to a request: heartbeats always; as the DOTS server the
        configuration and mitigation requests too."""
        path = path_of(msg.options)
        if is_heartbeat(path):
            return CHANGED, b"", None
        if self.world.role != "client":
            return None, b"", None
        if path[:len(CONFIG_PATH)] == CONFIG_PATH:
            if msg.code == GET:
                ranges = {name: dict(TESTER_RANGES) for name in self.config}
                return CONTENT, signal_config(self.config, ranges), 3600
            if msg.code == PUT:
                params = path_parameters(path)
                if "sid" not in params:
                    return BAD_REQUEST, b"", None
                for name, values in config_values(decode(msg.payload)).items():
                    self.config.setdefault(name, {}).update(values)
                    if "heartbeat-interval" in values:
                        self.interval = float(values["heartbeat-interval"])
                new = params["sid"] not in self.sids
                self.sids.add(params["sid"])
                return (CREATED if new else CHANGED), b"", None
            if msg.code == DELETE:
                return DELETED, b"", None
        if path[:len(MITIGATE_PATH)] == MITIGATE_PATH:
            return (CREATED if msg.code == PUT else CONTENT), b"", None
        return code(4, 4), b"", None

    def _heartbeat_loop(self) -> None:
        """The tester's own heartbeats: one every interval while ``heartbeating``."""
        while not self._stop.wait(0.05):
            last = self.tester_heartbeats[-1][0] if self.tester_heartbeats else 0.0
            if self.heartbeating and time.time() >= last + self.interval:
                self.send_heartbeat(self.peer_status())

    def peer_status(self) -> bool:
        """The tester's own peer-hb-status: a heartbeat of the IUT's in the last two intervals."""
        beats = self.heartbeats_from_iut()
        return bool(beats) and time.time() - beats[-1].t <= 2 * self.interval

    def send_heartbeat(self, status: bool = True) -> float:
        token = self.token()
        data = self._request_bytes(PUT, token, uri_path(*HEARTBEAT_PATH) + [(OPTION_CONTENT_FORMAT,
                                                                             CONTENT_FORMAT.to_bytes(2, "big"))],
                                   heartbeat(status), confirmable=False)
        sent = time.time()
        self.tester_heartbeats.append((sent, token))
        self._send(data)
        return sent

    def request(self, method: int, path: tuple[str, ...], body: bytes = b"", bound: float = ANSWER_BOUND) -> Seen | None:
        """A request of the tester's (Confirmable over UDP) and the IUT's response (piggybacked or separate, matched
        by token), from the capture; None when none came within ``bound`` seconds."""
        token = self.token()
        options = uri_path(*path) + ([(OPTION_CONTENT_FORMAT, CONTENT_FORMAT.to_bytes(2, "big"))] if body else [])
        data = self._request_bytes(method, token, options, body, confirmable=True)
        sent = time.time()
        self._send(data)
        return self.response_to(token, sent, bound)

    def response_to(self, token: bytes, sent: float, bound: float = ANSWER_BOUND) -> Seen | None:
        """The IUT's response with ``token`` to a request sent at ``sent``, from the capture (None after ``bound``)."""
        def response():
            return next((s for s in self.from_iut(sent - 0.005) if s.msg.token == token and s.msg.cls in (2, 4, 5)), None)

        try:
            return wait_until(response, bound, poll_max=0.05, what="the IUT's response")
        except TimedOut:
            return None

    def heartbeats_from_iut(self, after: float = 0.0, **where) -> list[Seen]:
        """The IUT's heartbeats after ``after`` (``where``: what a transport's from_iut also takes, e.g. conn)."""
        return [s for s in self.from_iut(after, **where) if s.msg.cls == 0 and s.msg.code and is_heartbeat(s.path)]


class DotsCase(DotsPeer, CoapDtlsCase):
    def __init__(self, world: CaseWorld) -> None:
        super().__init__(world)
        self._dots_init()

    # -- the two ways in ----------------------------------------------------------------------------------------
    def start(self) -> DotsCase:
        """Server IUT: the tester's association as a DOTS client."""
        self.on_record = self._answer_record
        super().start()
        self._start_heartbeats()
        return self

    def start_client(self, knobs: dict | None = None, answer: bool = True) -> DotsCase:
        """Client IUT: the tester as its DOTS server (launch() takes the association)."""
        super().start_client(knobs, answer=answer)
        if knobs and "heartbeat-interval" in knobs:
            self.interval = float(knobs["heartbeat-interval"])
        return self

    def launch(self) -> None:
        super().launch()
        self._start_heartbeats()

    # -- over DTLS ------------------------------------------------------------------------------------------------
    def _answer_record(self, record, dtls=None) -> None:
        """The DTLS reader thread: answer what the IUT asks on the association the request came on (``dtls``; the
        current one by default)."""
        dtls = dtls or self.dtls
        if record.direction != "in" or record.content_type != APPLICATION_DATA:
            return
        msg = decode_udp(record.body)
        if msg.mtype not in (CON, NON):
            return

        def send(reply: bytes) -> None:
            self.sent.append((time.time(), self.tester_port, reply))
            dtls.send(APPLICATION_DATA, reply)

        self.answer(msg, send)

    def _request_bytes(self, method: int, token: bytes, options: list, payload: bytes, confirmable: bool) -> bytes:
        return encode_udp(CON if confirmable else NON, method, self.mid(), token=token, options=options, payload=payload)

    def _reply_bytes(self, msg: Message, answer_code: int, options: list, payload: bytes) -> bytes:
        if msg.mtype == CON:
            return encode_udp(ACK, answer_code, msg.mid, token=msg.token, options=options, payload=payload)
        return encode_udp(NON, answer_code, self.mid(), token=msg.token, options=options, payload=payload)

    def _send(self, data: bytes) -> None:
        self.sent.append((time.time(), self.tester_port, data))
        self._transmit(data)

    # -- what the IUT sent ---------------------------------------------------------------------------------------
    def from_iut(self, after: float = 0.0) -> list[Seen]:  # type: ignore[override]
        return [Seen(d.t, decode_udp(d.head)) for d in self.datagrams()
                if d.src == self.iut and d.destination == self.origin and d.t > after]

    def to_iut(self, after: float = 0.0) -> list[Seen]:
        """The tester's messages that reached the IUT (its capture) after ``after``."""
        return [Seen(d.t, decode_udp(d.head)) for d in self.datagrams()
                if d.src == self.world.tester_address and d.dst == self.iut and d.t > after]


@pytest.fixture
def dots(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "dots") as world:
        yield DotsCase(world)
