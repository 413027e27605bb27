"""A TLS server whose RFC 6520 heartbeat is its own code, conformant unless a flag plants a defect.

    tlsbroken.py PORT CERT KEY [--flag ...]

tlslite-ng does the handshake; after it this program reads and writes records itself (tlslite-ng's record
layer, below the library's own heartbeat handling), so that each rule can be broken on purpose:

  --answer-unnegotiated  answer heartbeats on a connection that did not negotiate them (no unexpected_message)
  --always-extension     put the heartbeat extension in the Hello even when the ClientHello had none
  --request-in-handshake send a HeartbeatRequest in clear before the handshake
  --accept-any-mode      take an unknown heartbeat mode for peer_allowed_to_send (no illegal_parameter)
  --say-not-allowed      the Hello says peer_not_allowed_to_send (conformant on its own)
  --answer-anyway        answer Requests even after saying peer_not_allowed_to_send
  --no-response          never answer a HeartbeatRequest
  --alter-payload        flip the last octet of every Response's payload
  --padding N            pad Responses with N octets (default 16)
  --zero-padding         pad with zero octets, not random ones
  --strict-padding       answer only Requests with exactly 16 octets of padding
  --heartbleed           trust payload_length: answer with that many octets, from a buffer of "memory"
  --lenient              answer Requests whose padding is under 16 octets
  --trigger TEXT         on this application data, send a HeartbeatRequest (retransmitted after 1, 2 s; 3 tries)
  --ignore-mode          send triggered Requests even to a peer that said peer_not_allowed_to_send
  --two-in-flight        send each triggered Request twice, back to back
  --alert-on-bad-response answer a Response with the wrong payload (or none expected) with unexpected_message
  --keep-retransmitting  retransmit a Request even after its right Response
  --hostile-flood        HOSTILE: after the handshake, a HeartbeatRequest (where negotiated) and a 16 KiB record of
                         application data every 5 ms, without end, and never read a record

Application data other than the trigger is echoed back.
"""
import argparse
import os
import queue
import socket
import threading
import time

from tlslite import tlsconnection
from tlslite.api import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey
from tlslite.constants import ExtensionType
from tlslite.extensions import HeartbeatExtension, TLSExtension
from tlslite.messages import ClientHello

HEARTBEAT, ALERT, APPLICATION_DATA = 24, 21, 23
REQUEST, RESPONSE = 1, 2
MEMORY = b"SECRET-KEY-MATERIAL:" + os.urandom(64).hex().encode() + b":user=admin:password=hunter2:" * 600


class Raw:
    def __init__(self, content_type, body):
        self.contentType = content_type
        self.body = bytearray(body)

    def write(self):
        return self.body


def send(conn, content_type, body):
    for _ in conn._recordLayer.sendRecord(Raw(content_type, body)):
        pass


def receive(conn):
    result = None
    for result in conn._recordLayer.recvRecord():
        if result in (0, 1):
            continue
        break
    header, parser = result
    return header.type, bytes(parser.bytes)


def plant_hello(args):
    """Patch tlslite-ng's extension handling for the Hello-level defects."""
    mode = 2 if args.say_not_allowed else 1

    class Extension(HeartbeatExtension):
        def create(self, _mode):
            return super().create(mode)

        def parse(self, parser):
            parsed = super().parse(parser)
            if args.accept_any_mode and parsed.mode not in (1, 2):
                parsed.mode = 1
            return parsed

    tlsconnection.HeartbeatExtension = Extension
    TLSExtension._universalExtensions[ExtensionType.heartbeat] = Extension
    if args.always_extension:
        original = ClientHello.getExtension

        def get_extension(self, ext_type):
            found = original(self, ext_type)
            if found is None and ext_type == ExtensionType.heartbeat:
                return Extension().create(1)
            return found

        ClientHello.getExtension = get_extension


def heartbeat(kind, data, args, declared=None):
    pad = bytes(args.padding) if args.zero_padding else os.urandom(args.padding)
    length = len(data) if declared is None else declared
    return bytes([kind]) + length.to_bytes(2, "big") + data + pad


class Session:
    def __init__(self, sock, peer, args, chain, key):
        self.sock, self.peer, self.args = sock, peer, args
        self.conn = TLSConnection(sock)
        self.chain, self.key = chain, key
        self.outstanding = None  # (payload, tries, next deadline)

    def log(self, text):
        print(f"{self.peer}: {text}", flush=True)

    def run(self):
        args = self.args
        if args.request_in_handshake:
            self.sock.sendall(bytes([HEARTBEAT, 3, 3, 0, 19]) + heartbeat(REQUEST, b"", args)[:19])
        settings = HandshakeSettings()
        settings.maxVersion = (3, 4)
        # With a response callback tlslite-ng records whether the client allowed us to send Requests.
        settings.heartbeat_response_callback = lambda message: None
        self.conn.handshakeServer(certChain=self.chain, privateKey=self.key, settings=settings)
        self.negotiated = self.conn.heartbeat_supported
        self.log(f"handshake done, heartbeat {'on' if self.negotiated else 'off'}")
        if args.hostile_flood:
            self.flood()
            return
        # A reader thread feeds a queue: tlslite-ng may hold a record it read with the handshake's last
        # flight, so waiting on the socket itself could sleep on data already in.
        inbox = queue.Queue()

        def read():
            while True:
                try:
                    inbox.put(receive(self.conn))
                except Exception as err:
                    inbox.put(err)
                    return

        threading.Thread(target=read, daemon=True).start()
        while True:
            timeout = None
            if self.outstanding:
                timeout = max(0.0, self.outstanding[2] - monotonic())
            try:
                item = inbox.get(timeout=timeout)
            except queue.Empty:
                self.retransmit()
                continue
            if isinstance(item, Exception):
                raise item
            content_type, body = item
            if content_type == HEARTBEAT:
                if not self.on_heartbeat(body):
                    return
            elif content_type == APPLICATION_DATA:
                if args.trigger and body == args.trigger.encode():
                    self.ping()
                elif body:
                    send(self.conn, APPLICATION_DATA, body)
            elif content_type == ALERT:
                return

    def flood(self):
        """HOSTILE: records without end, nothing read; the peer's writes back up once its window fills."""
        self.log("flooding and never reading (hostile)")
        data = bytes(16384)
        while True:
            if self.negotiated:
                send(self.conn, HEARTBEAT, heartbeat(REQUEST, os.urandom(16), self.args))
            send(self.conn, APPLICATION_DATA, data)
            time.sleep(0.005)

    def fatal(self, description):
        send(self.conn, ALERT, bytes([2, description]))
        return False

    def on_heartbeat(self, body):
        args = self.args
        if not self.negotiated and not args.answer_unnegotiated:
            return self.fatal(10)  # unexpected_message
        if len(body) < 3:
            return True
        kind, declared = body[0], int.from_bytes(body[1:3], "big")
        if kind == REQUEST:
            if args.no_response:
                return True
            if args.say_not_allowed and not args.answer_anyway:
                return True
            padding = len(body) - 3 - declared
            if padding < 0:  # payload_length too large
                if not args.heartbleed:
                    return True  # discarded silently
                data = (body[3:] + MEMORY)[:declared]  # Heartbleed: trust payload_length, read past the record
            else:
                if padding < 16 and not args.lenient:
                    return True
                if args.strict_padding and padding != 16:
                    return True
                data = body[3:3 + declared]
            if args.alter_payload and data:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            send(self.conn, HEARTBEAT, heartbeat(RESPONSE, data, args))
        elif kind == RESPONSE:
            data = body[3:3 + declared]
            if self.outstanding and data == self.outstanding[0] and not args.keep_retransmitting:
                self.outstanding = None
            elif not (self.outstanding and data == self.outstanding[0]) and args.alert_on_bad_response:
                return self.fatal(10)
        return True

    def ping(self):
        if not self.negotiated:
            return
        if not self.conn.heartbeat_can_send and not self.args.ignore_mode:
            self.log("the peer did not allow HeartbeatRequests")
            return
        data = os.urandom(32)
        self.outstanding = [data, 1, monotonic() + 1.0]
        send(self.conn, HEARTBEAT, heartbeat(REQUEST, data, self.args))
        if self.args.two_in_flight:
            send(self.conn, HEARTBEAT, heartbeat(REQUEST, data, self.args))

    def retransmit(self):
        data, tries, _ = self.outstanding
        if tries >= 3:
            self.outstanding = None
            return
        send(self.conn, HEARTBEAT, heartbeat(REQUEST, data, self.args))
        self.outstanding = [data, tries + 1, monotonic() + 2.0 ** tries]


def monotonic():
    return time.monotonic()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("cert")
    parser.add_argument("key")
    for flag in ("answer-unnegotiated", "always-extension", "request-in-handshake", "accept-any-mode",
                 "say-not-allowed", "answer-anyway", "no-response", "alter-payload", "zero-padding",
                 "strict-padding", "heartbleed", "lenient", "ignore-mode", "two-in-flight",
                 "alert-on-bad-response", "keep-retransmitting", "hostile-flood"):
        parser.add_argument(f"--{flag}", action="store_true")
    parser.add_argument("--padding", type=int, default=16)
    parser.add_argument("--trigger", default="")
    args = parser.parse_args()
    args.trigger = args.trigger.encode().decode("unicode_escape")
    plant_hello(args)
    chain = X509CertChain()
    chain.parsePemList(open(args.cert).read())
    key = parsePEMKey(open(args.key).read(), private=True)
    listener = socket.create_server(("::", args.port), family=socket.AF_INET6, dualstack_ipv6=True)
    print(f"listening on {args.port}", flush=True)
    while True:
        sock, peer = listener.accept()

        def serve(sock=sock, peer=peer[0]):
            session = Session(sock, peer, args, chain, key)
            try:
                session.run()
            except Exception as err:
                session.log(f"{type(err).__name__}: {err}")
            finally:
                sock.close()
                session.log("closed")

        threading.Thread(target=serve, daemon=True).start()


if __name__ == "__main__":
    main()
