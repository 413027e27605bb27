"""aliveness's own DOTS signal-channel agents (RFC 9132), client and server, on aiocoap and cbor2, over DTLS 1.2
with a pre-shared key (aiocoap's tinydtls transports, "coaps") or over TLS with certificates (its TLS transports,
"coaps+tcp", ALPN coap).

    dotsagent.py server PORT (--psk IDENTITY_FILE KEY_FILE | --tls CERT_FILE KEY_FILE) [options]
    dotsagent.py client HOST PORT (--psk IDENTITY_FILE KEY_FILE | --ca CA_FILE) [options]

No DOTS agent installs from Debian, PyPI or npm, so this project wrote one to hold to its own DOTS cases, as a
reference peer like any other. It is small and follows the text: the session configuration (§4.5), the
heartbeat (§4.7) and mitigation requests (§4.4, only what the cases need: PUT and GET of one request).

Server: GET /.well-known/dots/config answers the acceptable ranges and current values of both sets
(mitigating-config and idle-config) with a Max-Age; PUT /config/sid=N installs values (2.01 new, 2.04 again),
4.22 for a value out of range, 4.00 for a missing sid, an unknown key or a body that is not DOTS CBOR, and
changes nothing then; DELETE puts the defaults back (2.02). Heartbeats (Non-confirmable PUT /hb with
peer-hb-status) are answered 2.04 and sent to the client every heartbeat-interval of the set in force
(mitigating-config while a mitigation is active). After missing-hb-allowed of its heartbeats go unanswered it
ends the session only if it heard nothing from the client in that span, and then triggers the pre-configured
mitigation (--preconfigured), which it logs.

Client: GET /config, then PUT /config/sid=1 with its --heartbeat-interval and --missing-hb-allowed (when given),
then heartbeats every heartbeat-interval and answers the server's. After missing-hb-allowed unanswered ones,
under normal conditions the session is over and it starts a new one (a new DTLS handshake), retrying no more
often than --retry-interval (300 s, RFC 9132's SHOULD; never under 60 s). While an attack is on (the file
--attack-flag exists, as a manifest's attack trigger makes it) it never gives the session up: it keeps
heartbeating on it, sends its mitigation request on it, and opens a second session in parallel; whichever
answers first is kept.

Over TLS (RFC 9132 §4.7's last paragraph): a heartbeat's reply is waited for up to heartbeat-interval, as over
DTLS; missing-hb-allowed is not negotiated there (§4.5: only over unreliable transports), so the client does not
PUT it but still counts its own --missing-hb-allowed unanswered heartbeats before it recovers the same way. A new
session is a new TCP connection and TLS handshake (aiocoap resumes no TLS session).

Every message it sends and every decision is logged on stdout with a timestamp.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import ssl
import sys
import time
from decimal import Decimal

import aiocoap
import aiocoap.resource as resource
from aiocoap import Code, Message
from aiocoap.credentials import CredentialsMap
from aiocoap.numbers.types import NON

# The suite's codec: in the image beside this file (project-files.txt), in a checkout two folders up.
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")]
from fixtures.dotswire import (  # noqa: E402
    CONFIG_SETS,
    CONTENT_FORMAT,
    HEARTBEAT,
    MITIGATION_SCOPE,
    SIGNAL_CONFIG,
    config_values,
    decode,
    encode,
    heartbeat,
    signal_config,
)

MIN_RETRY = 60.0  # RFC 9132 §4.7: never retry a failed session more often than this
MAX_AGE = 3600  # seconds a configuration is valid (the Max-Age option of config answers)
DEFAULTS = {"heartbeat-interval": 30, "missing-hb-allowed": 15, "probing-rate": 5, "max-retransmit": 3,
            "ack-timeout": Decimal("2.00"), "ack-random-factor": Decimal("1.50")}
RANGES = {"heartbeat-interval": (1, 240), "missing-hb-allowed": (1, 20), "probing-rate": (5, 20),
          "max-retransmit": (2, 15), "ack-timeout": (Decimal("1.00"), Decimal("30.00")),
          "ack-random-factor": (Decimal("1.10"), Decimal("4.00"))}
T0 = time.time()


def log(text: str) -> None:
    print(f"{time.time() - T0:9.3f}  {text}", flush=True)


def patch_server_requests() -> None:
    """aiocoap 0.4.17's DTLS server cannot send a request to a client on its session (the server's heartbeats):
    its recognize_remote checks for the plain UDP server's address class. Accept the DTLS server's own."""
    from aiocoap.transports import tinydtls_server

    async def recognize_remote(self, remote):
        return isinstance(remote, tinydtls_server._AddressDTLS) and remote._protocol is self._pool

    tinydtls_server.MessageInterfaceTinyDTLSServer.recognize_remote = recognize_remote


class NamedContext(ssl.SSLContext):
    """A client context that checks the server's certificate for a given name, whatever address it dials (the
    tester is reached by address; the run's certificate names it "tester")."""

    server_name = ""

    def wrap_bio(self, incoming, outgoing, server_side=False, server_hostname=None, session=None):
        return super().wrap_bio(incoming, outgoing, server_side, self.server_name or server_hostname, session)


def patch_tls_client(ca_file: str, server_name: str) -> None:
    """aiocoap's TLS client checks the certificate for the host it dials, from a per-URI credentials entry: give
    it a context that trusts ``ca_file``, checks ``server_name`` and offers ALPN coap."""
    from aiocoap.transports import tls

    def factory(self, hostinfo):
        context = NamedContext(ssl.PROTOCOL_TLS_CLIENT)
        context.server_name = server_name
        context.load_verify_locations(ca_file)
        context.set_alpn_protocols(["coap"])
        return context

    tls.TLSClient._ssl_context_factory = factory


def dots_message(code, path, body: bytes | None = None, mtype=None) -> Message:
    msg = Message(code=code, uri_path=path, payload=body or b"")
    if body:
        msg.opt.content_format = CONTENT_FORMAT
    if mtype is not None:
        msg.mtype = mtype
    return msg


def reply(code, body: bytes = b"", max_age: int | None = None) -> Message:
    msg = Message(code=code, payload=body)
    if body:
        msg.opt.content_format = CONTENT_FORMAT
    if max_age is not None:
        msg.opt.max_age = max_age
    return msg


class Heartbeats:
    """One agent's half of the heartbeat: when it last heard its peer, how many of its own went unanswered."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.heard = 0.0  # time.monotonic() of the peer's last message of any kind
        self.peer_heartbeat = 0.0  # of the peer's last heartbeat
        self.missed = 0

    def status(self) -> bool:
        """peer-hb-status: a heartbeat from the peer in the last two intervals."""
        return time.monotonic() - self.peer_heartbeat <= 2 * self.interval


class HeartbeatResource(resource.Resource):
    def __init__(self, beats: Heartbeats, args) -> None:
        super().__init__()
        self.beats, self.args = beats, args

    async def render_put(self, request):
        body = decode(request.payload)
        status = body.get(HEARTBEAT, "peer-hb-status")
        if self.args.fault == "crashes-on-garbage" and body.value is None:
            log("planted: exiting on a body that is not CBOR")
            os._exit(3)
        if self.args.fault == "accepts-unknown-keys":
            body.unknown = []
        if body.value is None or body.unknown or not isinstance(status, bool):
            log(f"heartbeat refused (4.00): {body.error or body.unknown or 'no peer-hb-status'}")
            return reply(Code.BAD_REQUEST)
        now = time.monotonic()
        self.beats.heard = self.beats.peer_heartbeat = now
        if self.args.fault == "answers-hb-201":
            log(f"heartbeat from the peer (peer-hb-status {str(status).lower()}), answered 2.01 (planted)")
            return reply(Code.CREATED)
        log(f"heartbeat from the peer (peer-hb-status {str(status).lower()}), answered 2.04")
        return reply(Code.CHANGED)


# -- server -------------------------------------------------------------------------------------------------------
class Server:
    def __init__(self, args) -> None:
        self.args = args
        self.values = {name: self.defaults() for name in CONFIG_SETS}
        self.sid: int | None = None
        self.mitigations: dict[tuple[str, str], dict] = {}
        self.beats = Heartbeats(self.current("heartbeat-interval"))
        self.client = None  # the remote of the session's client
        self.context = None
        self.session_task: asyncio.Task | None = None
        self.dropped: set = set()
        self.lost_sessions = 0

    def refusing(self) -> bool:
        """Planted (refuses-returning-client): once a session is lost, every request is answered 5.03."""
        return self.args.fault == "refuses-returning-client" and self.lost_sessions > 0

    def defaults(self) -> dict:
        values = dict(DEFAULTS)
        values["heartbeat-interval"] = self.args.heartbeat_interval
        values["missing-hb-allowed"] = self.args.missing_hb_allowed
        return values

    def active_set(self) -> str:
        return "mitigating-config" if self.mitigations else "idle-config"

    def current(self, parameter: str):
        return self.values[self.active_set()][parameter]

    def heard_from(self, remote, heartbeat: bool = False) -> None:
        if heartbeat or self.args.fault != "hears-heartbeats-only":  # planted: only heartbeats count as heard
            self.beats.heard = time.monotonic()
        if remote in self.dropped:
            return  # planted (drops-heard-session): a session it dropped is never heartbeated again
        if self.client is None or self.client != remote:
            self.client = remote
            log(f"session with {remote.hostinfo}")
            if self.session_task is None or self.session_task.done():
                self.session_task = asyncio.ensure_future(self.heartbeat_loop())

    async def heartbeat_loop(self) -> None:
        """The server's heartbeats to its client; the session ends when neither heartbeats nor anything else come."""
        beats = self.beats
        beats.missed = 0
        last = time.monotonic()
        while True:
            # The set in force may change (a PUT, a mitigation): its interval is read again at every step.
            interval = self.current("heartbeat-interval")
            if self.args.fault == "ignores-interval":
                interval = self.args.heartbeat_interval
            beats.interval = interval
            if interval == 0 or time.monotonic() < last + interval:
                await asyncio.sleep(0.05)
                continue
            last = time.monotonic()
            if self.args.fault == "no-heartbeat":
                continue
            status = True if self.args.fault == "hb-status-always-true" else beats.status()
            msg = dots_message(Code.PUT, [".well-known", "dots", "hb"], heartbeat(status), NON)
            msg.remote = self.client
            log(f"heartbeat to the client (peer-hb-status {str(status).lower()})")
            try:
                answer = await asyncio.wait_for(self.context.request(msg).response, interval)
                beats.missed = 0 if answer.code == Code.CHANGED else beats.missed + 1
            except (TimeoutError, aiocoap.error.Error) as err:
                beats.missed += 1
                log(f"heartbeat unanswered ({beats.missed} in a row): {type(err).__name__}")
            allowed = self.current("missing-hb-allowed")
            if beats.missed >= allowed:
                quiet = time.monotonic() - beats.heard
                if quiet < allowed * interval and self.args.fault != "drops-heard-session":
                    log(f"{beats.missed} heartbeats unanswered, but the client was heard {quiet:.1f} s ago: "
                        "the session stays (its inbound link may be saturated)")
                    continue
                log(f"session lost: {beats.missed} heartbeats unanswered and nothing heard for {quiet:.1f} s")
                if self.args.fault == "drops-heard-session":
                    self.dropped.add(self.client)
                self.lost_sessions += 1
                if self.args.preconfigured:
                    log(f"pre-configured mitigation triggered: {self.args.preconfigured}")
                self.client = None
                return

    def site(self) -> resource.Site:
        site = resource.Site()
        server = self

        class Tracked(HeartbeatResource):
            async def render_put(self, request):
                if server.refusing():
                    return reply(Code.SERVICE_UNAVAILABLE)
                server.heard_from(request.remote, heartbeat=True)
                return await super().render_put(request)

        class Config(resource.Resource, resource.PathCapable):
            async def render(self, request):
                if server.refusing():
                    return reply(Code.SERVICE_UNAVAILABLE)
                server.heard_from(request.remote)
                return server.config(request)

        class Mitigate(resource.Resource, resource.PathCapable):
            async def render(self, request):
                server.heard_from(request.remote)
                return server.mitigate(request)

        site.add_resource([".well-known", "dots", "hb"], Tracked(self.beats, self.args))
        class ConfigItself(resource.Resource):  # aiocoap's Site routes the bare path only to a plain resource
            async def render(self, request):
                if server.refusing():
                    return reply(Code.SERVICE_UNAVAILABLE)
                server.heard_from(request.remote)
                return server.config(request)

        site.add_resource([".well-known", "dots", "config"], Config())
        site.add_resource([".well-known", "dots", "config"], ConfigItself())
        site.add_resource([".well-known", "dots", "mitigate"], Mitigate())
        return site

    def config_body(self, ranges: bool) -> bytes:
        spans = {name: dict(RANGES) for name in CONFIG_SETS} if ranges and self.args.fault != "no-ranges" else None
        return signal_config(self.values, spans)

    def config(self, request) -> Message:
        path = list(request.opt.uri_path)
        params = dict(p.split("=", 1) for p in path if "=" in p)
        if request.code == Code.GET:
            log(f"configuration asked for{' (sid ' + params['sid'] + ')' if 'sid' in params else ''}: 2.05")
            return reply(Code.CONTENT, self.config_body(ranges=True), MAX_AGE)
        if request.code == Code.DELETE:
            self.values = {name: self.defaults() for name in CONFIG_SETS}
            self.sid = None
            log("configuration deleted: defaults again (2.02)")
            return reply(Code.DELETED)
        if request.code != Code.PUT:
            return reply(Code.METHOD_NOT_ALLOWED)
        if self.args.fault == "sid-optional":
            params.setdefault("sid", str(self.sid or 1))
        if "sid" not in params or not params["sid"].isdigit() or "cuid" in params:
            log("configuration PUT without a sid (or with a cuid): 4.00")
            return reply(Code.BAD_REQUEST)
        body = decode(request.payload)
        if body.value is None or body.unknown or body.problems or not isinstance(body.get(SIGNAL_CONFIG), dict):
            log(f"configuration PUT refused (4.00): {body.error or body.unknown or body.problems or 'no signal-config'}")
            return reply(Code.BAD_REQUEST)
        wanted = config_values(body)
        if not any(wanted.values()):
            log("configuration PUT with no parameter: 4.00")
            return reply(Code.BAD_REQUEST)
        for name, values in wanted.items():
            for parameter, value in values.items():
                low, high = RANGES[parameter]
                if not low <= value <= high and self.args.fault != "accepts-out-of-range":
                    log(f"configuration PUT refused (4.22): {name} {parameter} {value} is outside [{low}, {high}]")
                    if self.args.fault == "refuses-but-applies":
                        for set_name, set_values in wanted.items():
                            self.values[set_name].update(set_values)
                    return reply(Code.UNPROCESSABLE_ENTITY)
        for name, values in wanted.items():
            self.values[name].update(values)
        created = self.sid != int(params["sid"]) or self.args.fault == "always-created"
        self.sid = int(params["sid"])
        log(f"configuration sid {self.sid} installed: {wanted} ({'2.01' if created else '2.04'})")
        return reply(Code.CREATED if created else Code.CHANGED)

    def mitigate(self, request) -> Message:
        params = dict(p.split("=", 1) for p in request.opt.uri_path if "=" in p)
        key = (params.get("cuid", ""), params.get("mid", ""))
        if request.code == Code.PUT:
            body = decode(request.payload)
            if body.value is None or not isinstance(body.get(MITIGATION_SCOPE), dict) or not all(key):
                return reply(Code.BAD_REQUEST)
            created = key not in self.mitigations
            self.mitigations[key] = {"status": 2}  # 2: mitigation in progress
            log(f"mitigation request cuid={key[0]} mid={key[1]} ({'2.01' if created else '2.04'})")
            return reply(Code.CREATED if created else Code.CHANGED)
        if request.code == Code.DELETE:
            self.mitigations.pop(key, None)
            return reply(Code.DELETED)
        if request.code == Code.GET:
            scope = [{"cuid": c, "mid": int(m), "status": v["status"]} for (c, m), v in self.mitigations.items()
                     if c == key[0] and (not key[1] or m == key[1])]
            return reply(Code.CONTENT, encode({MITIGATION_SCOPE: {"scope": scope}})) if scope else reply(Code.NOT_FOUND)
        return reply(Code.METHOD_NOT_ALLOWED)

    async def run(self) -> None:
        if self.args.tls:
            # aiocoap's TLS server listens on the bind port plus one (coaps+tcp's default port less CoAP's).
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(*self.args.tls)
            tls.set_alpn_protocols(["coap"])
            self.context = await aiocoap.Context.create_server_context(
                self.site(), bind=(self.args.bind, self.args.port - 1), transports=["tlsserver"], _ssl_context=tls)
            transport = "TLS"
        else:
            patch_server_requests()
            identity, key = read_psk(self.args.psk)
            creds = CredentialsMap()
            creds.load_from_dict({":client": {"dtls": {"psk": {"ascii": key}, "client-identity": {"ascii": identity}}}})
            # aiocoap's DTLS server listens on the bind port plus one, on one address.
            self.context = await aiocoap.Context.create_server_context(
                self.site(), bind=(self.args.bind, self.args.port - 1), transports=["tinydtls_server"],
                server_credentials=creds)
            transport = "DTLS"
        log(f"DOTS server on {transport} port {self.args.port} (heartbeat-interval {self.args.heartbeat_interval}, "
            f"missing-hb-allowed {self.args.missing_hb_allowed})")
        await asyncio.get_running_loop().create_future()


# -- client -------------------------------------------------------------------------------------------------------
class Session:
    """One DTLS session of the client's: its own aiocoap context (a new context is a new handshake)."""

    numbers = itertools.count(1)

    def __init__(self, client: Client) -> None:
        self.client = client
        self.number = next(self.numbers)
        self.context = None
        self.beats = Heartbeats(client.interval)
        self.answered = 0.0  # time.monotonic() of the server's last answer on this session

    async def open(self) -> None:
        args, client = self.client.args, self.client
        if args.ca:
            patch_tls_client(args.ca, args.server_name)
            self.context = await aiocoap.Context.create_client_context(transports=["tlsclient"])
        else:
            self.context = await aiocoap.Context.create_client_context(transports=["tinydtls"])
            identity, key = read_psk(args.psk)
            self.context.client_credentials.load_from_dict(
                {f"coaps://{client.authority}*": {"dtls": {"psk": {"ascii": key}, "client-identity": {"ascii": identity}}}})
        site = resource.Site()
        site.add_resource([".well-known", "dots", "hb"], HeartbeatResource(self.beats, args))
        self.context.serversite = site
        log(f"session {self.number}: opening (a new {'TCP connection and TLS' if args.ca else 'DTLS'} handshake)")

    async def request(self, code, path, body=None, mtype=None, timeout=None) -> Message:
        msg = dots_message(code, path, body, mtype)
        msg.set_request_uri(f"{self.client.scheme}://{self.client.authority}/" + "/".join(path))
        answer = await asyncio.wait_for(self.context.request(msg).response, timeout or self.client.interval)
        self.answered = self.beats.heard = time.monotonic()
        return answer

    async def close(self) -> None:
        if self.context is not None:
            await self.context.shutdown()


class Client:
    def __init__(self, args) -> None:
        self.args = args
        self.interval = args.heartbeat_interval or DEFAULTS["heartbeat-interval"]
        self.allowed = args.missing_hb_allowed or DEFAULTS["missing-hb-allowed"]
        host = f"[{args.host}]" if ":" in args.host else args.host
        self.authority = f"{host}:{args.port}"
        self.scheme = "coaps+tcp" if args.ca else "coaps"
        self.sid = 0
        self.mid = 0
        self.lost = False  # a session of its was lost (it is on a new one)

    def under_attack(self) -> bool:
        return bool(self.args.attack_flag) and os.path.exists(self.args.attack_flag)

    async def configure(self, session: Session) -> bool:
        try:
            got = await session.request(Code.GET, [".well-known", "dots", "config"], timeout=10)
            log(f"session {session.number}: configuration {got.code}")
            if not (self.args.heartbeat_interval or self.args.missing_hb_allowed):
                return True
            values = {}
            if self.args.heartbeat_interval:
                values["heartbeat-interval"] = self.args.heartbeat_interval
            if self.args.missing_hb_allowed and not self.args.ca:  # over TLS it is not negotiated (§4.5)
                values["missing-hb-allowed"] = self.args.missing_hb_allowed
            if not values:
                return True
            self.sid += 1
            got = await session.request(Code.PUT, [".well-known", "dots", "config", f"sid={self.sid}"],
                                        signal_config({name: values for name in CONFIG_SETS}), timeout=10)
            log(f"session {session.number}: configuration sid {self.sid} PUT: {got.code}")
            return got.code.is_successful()
        except (TimeoutError, aiocoap.error.Error) as err:
            log(f"session {session.number}: configuration failed: {type(err).__name__}")
            return False

    async def heartbeat(self, session: Session) -> bool:
        """One heartbeat on ``session``; True when it was answered within the interval."""
        status = True if self.args.fault == "hb-status-always-true" else session.beats.status()
        log(f"session {session.number}: heartbeat (peer-hb-status {str(status).lower()})")
        path = [".well-known", "dots", "hb"] + ([f"cuid={self.args.cuid}"] if self.args.fault == "hb-with-cuid" else [])
        mtype = None if self.args.fault == "confirmable-heartbeat" else NON  # None: aiocoap's default, Confirmable
        wait = self.interval / 4 if self.args.fault == "short-reply-wait" else None  # None: heartbeat-interval
        try:
            got = await session.request(Code.PUT, path, heartbeat(status), mtype, timeout=wait)
            return got.code == Code.CHANGED
        except (TimeoutError, aiocoap.error.Error):
            return False

    async def mitigation(self, session: Session) -> None:
        self.mid += 1
        body = encode({MITIGATION_SCOPE: {"scope": [{"target-prefix": ["203.0.113.0/24"], "lifetime": 3600}]}})
        path = [".well-known", "dots", "mitigate", f"cuid={self.args.cuid}", f"mid={self.mid}"]
        log(f"session {session.number}: mitigation request mid={self.mid}")
        try:
            got = await session.request(Code.PUT, path, body, timeout=self.interval)
            log(f"session {session.number}: mitigation request answered {got.code}")
        except (TimeoutError, aiocoap.error.Error) as err:
            log(f"session {session.number}: mitigation request unanswered: {type(err).__name__}")

    async def run(self) -> None:
        last_try = None
        while True:
            if last_try is not None:
                floor = 5.0 if self.args.fault == "retries-fast" else max(self.args.retry_interval, MIN_RETRY)
                wait = last_try + floor - time.monotonic()
                if wait > 0:
                    log(f"next session attempt in {wait:.0f} s")
                    await asyncio.sleep(wait)
            last_try = time.monotonic()
            session = Session(self)
            await session.open()
            if not await self.configure(session):
                await session.close()
                continue
            if self.lost and self.args.fault == "recovers-silently":
                log(f"planted: session {session.number} configured, but no heartbeat on it")
                await asyncio.get_running_loop().create_future()
            await self.keep(session)
            self.lost = True
            if self.args.fault == "never-reestablishes":
                log("planted: no new session after a lost one")
                await asyncio.get_running_loop().create_future()
            last_try = None  # the session worked: a new one may be tried at once

    async def keep(self, session: Session) -> None:
        """Heartbeat on ``session`` until it is lost (never while under attack: then a second session is tried)."""
        missed, spare, spare_task, attack_sent = 0, None, None, False
        while True:
            started = time.monotonic()
            answered = await self.heartbeat(session)
            if self.args.fault == "stops-when-unanswered" and not answered and missed:
                log("planted: no more heartbeats once they go unanswered")
                await asyncio.get_running_loop().create_future()
            missed = 0 if answered else missed + 1
            if missed:
                log(f"session {session.number}: {missed} heartbeats unanswered in a row")
            attack = self.under_attack()
            if attack and not attack_sent and self.args.fault != "no-mitigation-under-attack":
                attack_sent = True
                asyncio.ensure_future(self.mitigation(session))
            allowed = 1 if self.args.fault == "gives-up-early" else self.allowed
            if missed >= allowed:
                if not attack or self.args.fault == "gives-up-under-attack":
                    log(f"session {session.number}: lost after {missed} unanswered heartbeats")
                    if spare_task:
                        spare_task.cancel()
                    await session.close()
                    return
                if spare is None and self.args.fault != "no-spare-under-attack":
                    log(f"session {session.number}: {missed} unanswered under attack: kept; a new session in parallel")
                    spare = Session(self)
                    spare_task = asyncio.ensure_future(self.try_spare(spare, session))
            if spare is not None and spare_task.done() and spare_task.result():
                log(f"session {spare.number} works: session {session.number} dropped")
                await session.close()
                session, spare, spare_task, missed = spare, None, None, 0
            elif spare is not None and answered:
                log(f"session {session.number} answers again: the attempt of session {spare.number} stopped")
                spare_task.cancel()
                await spare.close()
                spare, spare_task = None, None
            interval = DEFAULTS["heartbeat-interval"] if self.args.fault == "ignores-interval" else self.interval
            await asyncio.sleep(max(interval - (time.monotonic() - started), 0))

    async def try_spare(self, spare: Session, current: Session) -> bool:
        await spare.open()
        if not await self.configure(spare):
            return False
        await self.mitigation(spare)
        return True


def own_address() -> str:
    """The first address this host's name resolves to that is not a loopback one (a container's own address)."""
    found = [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_DGRAM)]
    return next((a for a in found if not a.startswith(("127.", "::1"))), "127.0.0.1")


def read_psk(files) -> tuple[str, str]:
    with open(files[0]) as identity, open(files[1]) as key:
        return identity.read().strip(), key.read().strip()


FAULTS = ("no-heartbeat", "ignores-interval", "hb-status-always-true", "drops-heard-session", "accepts-out-of-range",
          "refuses-but-applies", "no-ranges", "always-created", "sid-optional", "answers-hb-201",
          "confirmable-heartbeat", "hb-with-cuid", "stops-when-unanswered", "gives-up-under-attack", "gives-up-early",
          "never-reestablishes", "retries-fast", "no-spare-under-attack", "no-mitigation-under-attack",
          "accepts-unknown-keys", "crashes-on-garbage", "refuses-returning-client", "short-reply-wait",
          "recovers-silently", "hears-heartbeats-only")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    for role in ("server", "client"):
        p = sub.add_parser(role)
        if role == "client":
            p.add_argument("host")
        p.add_argument("port", type=int)
        security = p.add_mutually_exclusive_group(required=True)
        security.add_argument("--psk", nargs=2, metavar=("IDENTITY_FILE", "KEY_FILE"), help="DTLS with this key")
        if role == "server":
            security.add_argument("--tls", nargs=2, metavar=("CERT_FILE", "KEY_FILE"), help="TLS with this certificate")
        else:
            security.add_argument("--ca", help="TLS, the server's certificate checked against this CA")
        p.add_argument("--heartbeat-interval", type=int, default=30 if role == "server" else 0)
        p.add_argument("--missing-hb-allowed", type=int, default=15 if role == "server" else 0)
        p.add_argument("--fault", choices=FAULTS, help="plant a defect (the faulty agents' manifests)")
        if role == "server":
            p.add_argument("--bind", default="", help="the address to listen on (aiocoap's DTLS server takes one, "
                                                     "not the any-address); default: this host name's first")
            p.add_argument("--preconfigured", default="", help="the mitigation triggered when a session is lost")
        else:
            p.add_argument("--retry-interval", type=float, default=300.0)
            p.add_argument("--attack-flag", default="/tmp/under-attack")
            p.add_argument("--cuid", default="aliveness-dots-client")
            p.add_argument("--server-name", default="", help="over TLS, the name the server's certificate must carry "
                                                            "(default: the host dialled)")
    args = parser.parse_args()
    for absent in ("tls", "ca"):
        setattr(args, absent, getattr(args, absent, None))
    if args.role == "server" and not args.bind:
        args.bind = own_address()
    agent = Server(args) if args.role == "server" else Client(args)
    try:
        asyncio.run(agent.run())
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
