"""A DTLS 1.2 heartbeat server on the suite's own DTLS tester, conformant unless a flag plants a defect.

    dtlsbroken.py PORT CERT KEY [--trigger TEXT] [--flag ...]
    dtlsbroken.py PORT CERT KEY --psk IDENTITY_FILE KEY_FILE --coap [COAPFLAG ...]
    dtlsbroken.py PORT --client HOST --psk IDENTITY_FILE KEY_FILE [--keepalive N] [--coap COAPFLAG ...]

The handshake is GnuTLS's (through the tester's ctypes calls), the records after it the tester's own, so
this program decides every heartbeat itself. One association at a time, as gnutls-serv --udp serves them:
the first datagram of a new client picks the peer, a close_notify or fatal alert (or the give-up) ends it.

Conformant behaviour: Requests in the current epoch are answered with an exact copy and 16 random octets
of padding; records of an older epoch are discarded; the trigger makes it send a HeartbeatRequest, which
is retransmitted 1, 2 and 4 s later (the DTLS timer, doubling) until the right Response comes, and after
four unanswered transmissions the association is ended with a fatal alert. Other application data is
echoed back.

  --no-retransmit   send a triggered Request once and never again
  --never-give-up   retransmit an unanswered Request every second for ever, never ending the association
  --old-epoch       answer HeartbeatRequests that come in an older epoch (in clear, epoch 0)
  --keep-timer      go on retransmitting an unanswered Request when the client starts a new handshake
  --hostile-flood   HOSTILE: after the handshake, a HeartbeatRequest and a 1200-octet record of application data
                    every 5 ms, without end, and never read a datagram

A handshake message from the client in the current epoch (a renegotiation) stops the retransmission of an
unanswered Request, as RFC 6520 §3 says, and is refused with a no_renegotiation warning.

With --psk the handshake is PreSharedKey mode (the identity and key read from the two files), and with --coap
every record of application data is one CoAP message answered as coapbroken.py answers it ("coaps", RFC 7252
§9.1): the COAPFLAGs are coapbroken.py's UDP flags without their dashes (wrong-mid, ignore-ping, ...).
With --client it is coapbroken.py's UDP client instead, its GET and keepalive pings (--keepalive) sent over a
DTLS association with HOST:PORT in PreSharedKey mode (COAPFLAGs such as slow-keepalive plant its defects).
"""
import argparse
import os
import socket
import sys
import threading
import time

from fixtures.testers.dtls import DtlsTester, psk_password_file
from fixtures.testers.heartbeat import ALERT, APPLICATION_DATA, HANDSHAKE, HEARTBEAT, REQUEST, RESPONSE, heartbeat

TRIES = 4
INTERNAL_ERROR = 80
NO_RENEGOTIATION = 100


def log(text):
    print(f"{time.monotonic():.3f} {text}", flush=True)


def next_peer(port):
    """A UDP socket on ``port`` connected to the next client that sends a datagram (which stays queued)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("::", port))
    _, peer = sock.recvfrom(1, socket.MSG_PEEK)
    sock.connect(peer[:2])
    return sock, peer


def ping(dtls, args, done, stop):
    """One triggered HeartbeatRequest, retransmitted by the flags' rules until answered or given up."""
    payload = b"dtlsbroken " + str(time.monotonic()).encode()
    wait, sent = 1.0, 0
    while not done.is_set() and not stop.is_set():
        dtls.send_heartbeat(REQUEST, payload)
        sent += 1
        log(f"HeartbeatRequest sent ({sent})")
        if args.no_retransmit:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not done.is_set() and not stop.is_set():
            if any(hb.payload == payload for _, hb in dtls.heartbeats(RESPONSE)):
                log("HeartbeatResponse received")
                return
            time.sleep(0.01)
        if not args.never_give_up:
            if sent >= TRIES:
                log(f"{sent} transmissions unanswered: ending the association")
                dtls.send(ALERT, bytes([2, INTERNAL_ERROR]))
                dtls.ended = (time.time(), "gave the association up")
                done.set()
                return
            wait *= 2


def coapbroken_with(flags, **more):
    """coapbroken.py (copied in from project-files.txt) and its arguments with ``flags`` planted."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "faulty", "coapbroken"))
    import coapbroken

    unknown = set(flags) - set(coapbroken.FLAGS)
    if unknown:
        sys.exit(f"unknown coapbroken flags: {', '.join(sorted(unknown))}")
    return coapbroken, argparse.Namespace(**{flag.replace("-", "_"): flag in flags for flag in coapbroken.FLAGS}, **more)


def coap_answers(flags):
    """coapbroken.py's answer function with ``flags`` planted, and its decoder."""
    coapbroken, planted = coapbroken_with(flags)
    return lambda body, peer: coapbroken.answer(planted, body, peer), coapbroken.decode_udp


def coap_client(args):
    """--client: coapbroken.py's UDP client (with its --keepalive) inside a DTLS association with HOST:PORT, in
    PreSharedKey mode. coapbroken reads and writes one end of a datagram socket pair; each datagram is one
    record of application data on the association."""
    coapbroken, planted = coapbroken_with(args.coap or [], client=args.client, port=args.port, keepalive=args.keepalive)
    sock = socket.socket(socket.AF_INET6 if ":" in args.client else socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((args.client, args.port))
    dtls = DtlsTester(sock, timeout=10)
    with open(args.psk[0], "rb") as identity, open(args.psk[1], "rb") as key:
        got = dtls.handshake(mode=None, psk=(identity.read().strip(), key.read().strip()))
    log(got.describe())
    if not got.ok:
        return 1
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)

    def delivered(record):  # the DTLS reader thread: the server's CoAP messages, to coapbroken
        if record.direction == "in" and record.content_type == APPLICATION_DATA:
            theirs.send(record.body)

    def sealed():  # what coapbroken writes, as records
        while True:
            dtls.send(APPLICATION_DATA, theirs.recv(65535))

    dtls.on_record = delivered
    dtls.start_reading()
    threading.Thread(target=sealed, daemon=True).start()
    coapbroken.client(planted, sock=mine, send=mine.send)
    dtls.close()
    return 0


def psk_file(identity_file, key_file):
    """A GnuTLS password file (identity:hex-key) for the run's pre-shared key."""
    with open(identity_file, "rb") as identity, open(key_file, "rb") as key:
        return psk_password_file(identity.read().strip(), key.read().strip())


def serve(sock, args, cert, key, peer=None):
    dtls = DtlsTester(sock, timeout=10)
    got = dtls.handshake(mode=None, psk_file=args.passwd) if args.passwd else dtls.handshake(server=(cert, key))
    log(got.describe())
    if not got.ok:
        return
    if args.hostile_flood:
        log("flooding and never reading (hostile)")
        while True:
            dtls.send_heartbeat(REQUEST, b"flood " + str(time.monotonic()).encode())
            dtls.send(APPLICATION_DATA, bytes(1200))
            time.sleep(0.005)
    dtls.start_reading()
    done = threading.Event()
    stop = threading.Event()  # a handshake began: the Request in flight is no longer retransmitted
    seen = 0
    while not done.is_set() and dtls.ended is None:
        records = dtls.received()
        for record in records[seen:]:
            if record.content_type == HEARTBEAT and (hb := record.heartbeat) is not None and hb.kind == REQUEST:
                old = id(record) in dtls.clear_records
                if hb.complete and (not old or args.old_epoch):
                    dtls.send(HEARTBEAT, heartbeat(RESPONSE, hb.payload))
                    log("answered a HeartbeatRequest" + (" from an older epoch" if old else ""))
            elif record.content_type == HANDSHAKE and id(record) not in dtls.clear_records:
                log("a handshake message in the current epoch: renegotiation refused")
                if not args.keep_timer:
                    stop.set()
                dtls.send(ALERT, bytes([1, NO_RENEGOTIATION]))
            elif record.content_type == APPLICATION_DATA and args.coap is not None:
                answer, decode = args.coap
                reply = answer(record.body, peer)
                log(f"{decode(record.body).describe()} -> {decode(reply).describe() if reply else 'nothing'}")
                if reply is not None:
                    dtls.send(APPLICATION_DATA, reply)
            elif record.content_type == APPLICATION_DATA:
                if args.trigger and record.body == args.trigger.encode():
                    stop.clear()
                    threading.Thread(target=ping, args=(dtls, args, done, stop), daemon=True).start()
                else:
                    dtls.send(APPLICATION_DATA, record.body)
        seen = len(records)
        time.sleep(0.01)
    log(f"association over: {dtls.ended[1] if dtls.ended else 'given up'}")
    dtls.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("cert", nargs="?")
    parser.add_argument("key", nargs="?")
    parser.add_argument("--client", metavar="HOST")
    parser.add_argument("--keepalive", type=float, default=0.0)
    parser.add_argument("--trigger", default="")
    parser.add_argument("--no-retransmit", action="store_true")
    parser.add_argument("--never-give-up", action="store_true")
    parser.add_argument("--old-epoch", action="store_true")
    parser.add_argument("--keep-timer", action="store_true")
    parser.add_argument("--hostile-flood", action="store_true")
    parser.add_argument("--psk", nargs=2, metavar=("IDENTITY_FILE", "KEY_FILE"))
    parser.add_argument("--coap", nargs="*", metavar="COAPFLAG")
    args = parser.parse_args()
    if args.client:
        if not args.psk:
            parser.error("--client needs --psk")
        return coap_client(args)
    if not (args.cert and args.key):
        parser.error("a server needs CERT and KEY")
    args.passwd = psk_file(*args.psk) if args.psk else None
    if args.coap is not None:
        args.coap = coap_answers(args.coap)
    args.trigger = args.trigger.encode().decode("unicode_escape")
    cert, key = open(args.cert).read(), open(args.key).read()
    log(f"listening on UDP port {args.port}")
    while True:
        sock, peer = next_peer(args.port)
        log(f"association with {peer[0]} port {peer[1]}")
        serve(sock, args, cert, key, peer)


if __name__ == "__main__":
    sys.exit(main())
