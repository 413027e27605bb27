"""A CoAP server that keeps RFC 7252 §4.2/§4.3 (over UDP) or RFC 8323 §3.3/§5 (over TCP, with --tcp) unless
a flag plants a defect.

    coapbroken.py PORT [--tcp [--tls CERT KEY]] [--flag ...]
    coapbroken.py PORT --client HOST [--flag ...]    one Confirmable GET to HOST:PORT (UDP)

Conformant behaviour: an Empty Confirmable (a ping) or a malformed Confirmable gets a Reset with its Message
ID; a Confirmable GET gets a piggybacked 2.05 "hello"; a Non-confirmable GET a Non-confirmable 2.05; ACKs,
Resets and anything else Non-confirmable are ignored. /aliveness is observable (RFC 7641): a GET with Observe 0
registers its sender, and a PUT to it (answered 2.04) sends every observer a Confirmable 2.05 notification,
retransmitted as a client's request is (the schedule and its defects below) until an ACK or a Reset comes.

The defects (one per faulty manifest):
  --ignore-ping       never answer an Empty Confirmable
  --ack-ping          answer an Empty Confirmable with an Empty ACK instead of a Reset
  --wrong-mid         put another Message ID in the Reset
  --reset-not-empty   put a token in the Reset (so it is not Empty)
  --answers-ack       answer an ACK or a Reset with a Reset
  --ack-non           acknowledge an Empty Non-confirmable message
  --ack-malformed     acknowledge a malformed Confirmable instead of rejecting it
  --silent-malformed  drop a malformed Confirmable without a Reset
  --crash-malformed   exit on a malformed message
  --ack-wrong-mid     piggyback the response to a Confirmable GET on an ACK with another Message ID
  --ack-request       acknowledge a Confirmable GET with an ACK that carries a request code (0.01) and no response
  --ignore-duplicates answer nothing to a Confirmable message whose Message ID it already had from that client
  --non-keepalive     every second, send an unprompted Empty Non-confirmable message to the last client heard
  --hostile-flood     HOSTILE: answer the first datagram with an endless flood (garbage and 60000-octet datagrams
                      in turn, about 1.4 MB/s) to its sender, and never read another

Over TCP (--tcp; inside TLS with --tls, offering ALPN "coap"), conformant behaviour: a CSM first on every
connection; a connection whose first message is not a CSM, or a signalling message with an unknown critical
(odd) option, or a message that cannot be framed, is aborted (7.05, then close); a Ping gets a Pong with its
token (and Custody when the Ping asks for it); an Empty message is ignored; a GET gets 2.05 "hello". The
defects:
  --no-pong           never answer a Ping
  --pong-token        answer a Ping with a Pong whose token is not the Ping's
  --pong-late         answer a Ping after 1 s
  --no-csm            send no CSM
  --accept-no-csm     carry on with a connection that did not open with a CSM
  --keep-critical     answer a Ping with an unknown critical option instead of aborting
  --elective-aborts   abort on any option it does not know, elective ones too
  --answers-empty     answer an Empty message with 4.04
  --silent-abort      abort connections without a 7.05 Abort
  --crash-garbage     exit on a message that cannot be framed
  --hostile-flood     HOSTILE: after its CSM, send 16 KiB messages and Pongs without end and never read

As a TCP client (--tcp --client HOST, with --keepalive N), conformant behaviour: its CSM at once, then an
Observe GET, a 7.02 Ping after N s of silence, and the connection closed when a Ping's Pong has not come N s
later. The defects:
  --waits-for-csm     send its CSM only once the server's has come
  --slow-keepalive    Ping after 2 N s of silence
  --never-gives-up    keep Pinging a server that never answers

As a UDP client (--client), conformant behaviour: the GET is retransmitted until acknowledged, first after a
random 2 to 3 s, each wait twice the one before, at most 4 times; then it gives up. With --keepalive N, once
the GET is acknowledged, an Empty Confirmable after N s of silence. The defects (the first four apply to a
UDP server's notifications too):
  --no-backoff        keep the first wait (2 to 3 s) for every retransmission
  --endless           never give up (and keep doubling)
  --fast-start        first retransmission after 1 s
  --triple            each wait three times the one before (the first 2 s)
  --slow-keepalive    ping after 2 N s of silence
"""
import argparse
import os
import random
import socket
import socketserver
import ssl
import sys
import threading
import time

from fixtures.coapwire import (
    ABORT,
    ACK,
    CHANGED,
    CON,
    CONTENT,
    CSM,
    EMPTY,
    GET,
    NON,
    NOT_FOUND,
    OPTION_CUSTODY,
    OPTION_OBSERVE,
    OPTION_URI_PATH,
    PING,
    PONG,
    PUT,
    RST,
    StreamReader,
    decode_udp,
    encode_tcp,
    encode_udp,
)

FLAGS = ("ignore-ping", "ack-ping", "wrong-mid", "reset-not-empty", "answers-ack", "ack-non", "ack-malformed",
         "silent-malformed", "crash-malformed",
         "no-pong", "pong-token", "pong-late", "no-csm", "accept-no-csm", "keep-critical", "elective-aborts",
         "answers-empty", "silent-abort", "crash-garbage", "no-backoff", "endless", "fast-start", "triple",
         "waits-for-csm", "slow-keepalive", "never-gives-up", "ack-wrong-mid", "ack-request", "non-keepalive",
         "ignore-duplicates", "hostile-flood")
KNOWN_SIGNAL_OPTIONS = {CSM: {2, 4}, PING: {OPTION_CUSTODY}, PONG: {OPTION_CUSTODY}}


def reset(args, mid):
    if args.wrong_mid:
        mid = (mid + 1) & 0xFFFF
    return encode_udp(RST, EMPTY, mid, token=b"\x99" if args.reset_not_empty else b"")


OBSERVERS = {}  # (host, port) -> token of its Observe registration
ACKED = {}  # Message ID of a notification in flight -> threading.Event set by its ACK or Reset
SOCK = []  # the server's socket, for the notification threads


def schedule(args):
    """The first wait and how each next one follows (the retransmission defects), as a client's request has."""
    first = 1.0 if args.fast_start else 2.0 if args.triple else random.uniform(2.0, 3.0)
    return first, (lambda w: w) if args.no_backoff else (lambda w: w * (3 if args.triple else 2))


def notify(args, observer, token):
    """A Confirmable notification to ``observer``, retransmitted until acknowledged or given up on."""
    mid, seq = random.randrange(0x10000), int(time.time()) & 0xFFFF
    done = ACKED.setdefault(mid, threading.Event())
    data = encode_udp(CON, CONTENT, mid, token=token, options=[(OPTION_OBSERVE, seq.to_bytes(2, "big"))], payload=b"changed")
    wait, grow = schedule(args)
    sent = 0
    while True:
        SOCK[0].sendto(data, observer)
        sent += 1
        print(f"notification mid={mid:#06x} to {observer}: transmission {sent}; next wait {wait:.3f} s", flush=True)
        if done.wait(wait):
            print("notification acknowledged", flush=True)
            return
        if sent > 4 and not args.endless:
            print("notification given up after 4 retransmissions; observer removed", flush=True)
            OBSERVERS.pop(observer, None)
            return
        wait = grow(wait)


def answer(args, data, peer=None):
    """The datagram to send back for ``data`` from ``peer`` (None: nothing)."""
    msg = decode_udp(data)
    if msg.error:
        if args.crash_malformed:
            print(f"malformed message ({msg.error}): exiting (planted defect)", flush=True)
            sys.exit(3)
        if msg.mtype != CON or msg.mid is None:
            return None
        if args.ack_malformed:
            return encode_udp(ACK, EMPTY, msg.mid)
        return None if args.silent_malformed else reset(args, msg.mid)
    if msg.mtype in (ACK, RST):
        if msg.mid in ACKED:
            ACKED[msg.mid].set()
            return None
        return encode_udp(RST, EMPTY, msg.mid) if args.answers_ack else None
    if msg.empty:
        if msg.mtype == NON:
            return encode_udp(ACK, EMPTY, msg.mid) if args.ack_non else None
        if args.ignore_ping:
            return None
        return encode_udp(ACK, EMPTY, msg.mid) if args.ack_ping else reset(args, msg.mid)
    if msg.code == PUT and msg.option(OPTION_URI_PATH) == [b"aliveness"] and msg.mtype == CON:
        for observer, token in list(OBSERVERS.items()):
            threading.Thread(target=notify, args=(args, observer, token), daemon=True).start()
        return encode_udp(ACK, CHANGED, msg.mid, token=msg.token)
    if msg.code == GET:
        observe = []
        if msg.option(OPTION_OBSERVE) == [b""] and msg.option(OPTION_URI_PATH) == [b"aliveness"] and peer is not None:
            OBSERVERS[peer] = msg.token
            observe = [(OPTION_OBSERVE, b"\x01")]
        if msg.mtype == CON and args.ack_request:
            return encode_udp(ACK, GET, msg.mid, token=msg.token)
        mtype = ACK if msg.mtype == CON else NON
        mid = (msg.mid + 1) & 0xFFFF if mtype == ACK and args.ack_wrong_mid else msg.mid
        return encode_udp(mtype, CONTENT, mid, token=msg.token, options=observe, payload=b"hello")
    return reset(args, msg.mid) if msg.mtype == CON else None


class Abort(Exception):
    """The connection must be aborted, for the reason given."""


def broken(args, why):
    """A message that cannot be read, or a stream that cannot be framed any more: abort (or, planted, exit)."""
    if args.crash_garbage:
        print(f"malformed input ({why}): exiting (planted defect)", flush=True)
        os._exit(3)
    raise Abort(why)


def tcp_answers(args, msg, first):
    """What to send back for ``msg`` over TCP (a list of frames); raises Abort when the connection must end."""
    if msg.error:
        broken(args, msg.error)
    if first and msg.code != CSM and not args.accept_no_csm:
        raise Abort("the first message was not a CSM")
    if msg.code >> 5 == 7:
        known = KNOWN_SIGNAL_OPTIONS.get(msg.code, set())
        unknown = [n for n, _ in msg.options if n not in known]
        if any(n % 2 for n in unknown) and not args.keep_critical:
            raise Abort(f"unknown critical option {unknown[0]}")
        if unknown and args.elective_aborts:
            raise Abort(f"unknown option {unknown[0]} (planted defect: elective ones too)")
    if msg.code == PING:
        if args.no_pong:
            return []
        token = msg.token + b"x" if args.pong_token else msg.token
        custody = [(OPTION_CUSTODY, b"")] if msg.option(OPTION_CUSTODY) else []
        if args.pong_late:
            threading.Event().wait(1.0)
        return [encode_tcp(PONG, token=token, options=custody)]
    if msg.code == EMPTY:
        return [encode_tcp(NOT_FOUND)] if args.answers_empty else []
    if msg.code == GET:
        return [encode_tcp(CONTENT, token=msg.token, payload=b"hello")]
    if msg.code >> 5 == 0:
        return [encode_tcp(NOT_FOUND, token=msg.token)]
    return []


def serve_tcp(args):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            sock, reader, first = self.request, StreamReader(), True
            if args.tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*args.tls)
                context.set_alpn_protocols(["coap"])
                try:
                    sock = context.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError) as err:
                    print(f"TLS handshake failed: {err}", flush=True)
                    return
            if not args.no_csm:
                sock.sendall(encode_tcp(CSM))
            if args.hostile_flood:
                try:
                    tcp_flood(sock)
                except OSError:
                    return
            try:
                while data := sock.recv(65536):
                    for msg in reader.feed(data):
                        replies = tcp_answers(args, msg, first)
                        first = False
                        print(f"{msg.describe()} -> {len(replies)} messages", flush=True)
                        for reply in replies:
                            sock.sendall(reply)
                    if reader.error:
                        broken(args, reader.error)
            except Abort as why:
                print(f"aborting the connection: {why}", flush=True)
                if not args.silent_abort:
                    sock.sendall(encode_tcp(ABORT, payload=str(why).encode()[:60]))
            except OSError:
                pass

    class Server(socketserver.ThreadingTCPServer):
        address_family = socket.AF_INET6
        allow_reuse_address = True
        daemon_threads = True

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    with Server(("::", args.port), Handler) as server:
        print(f"listening on port {args.port} (tcp)", flush=True)
        server.serve_forever()


def tcp_client(args):
    sock = socket.create_connection((args.client, args.port))
    reader, interval = StreamReader(), args.keepalive * (2 if args.slow_keepalive else 1)
    if not args.waits_for_csm:
        sock.sendall(encode_tcp(CSM))
    csm_sent, awaiting, last = not args.waits_for_csm, None, time.monotonic()
    while True:
        sock.settimeout(max(min(last + interval, awaiting or last + interval) - time.monotonic(), 0.01) if interval else None)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            now = time.monotonic()
            if awaiting is not None and now >= awaiting:
                if not args.never_gives_up:
                    print("no Pong in time: closing the connection", flush=True)
                    sock.close()
                    return
                awaiting = None  # planted defect: forget the missing Pong
            if now >= last + interval:
                sock.sendall(encode_tcp(PING))
                print("sent a Ping", flush=True)
                last, awaiting = now, now + args.keepalive
            continue
        if not data:
            print("the server closed the connection", flush=True)
            return
        last = time.monotonic()
        for msg in reader.feed(data):
            print(f"received {msg.describe()}", flush=True)
            if msg.code == CSM and not csm_sent:
                sock.sendall(encode_tcp(CSM) + encode_tcp(GET, token=b"\x0b", options=[(6, b""), (11, b"aliveness")]))
                csm_sent = True
            elif msg.code == CSM:
                sock.sendall(encode_tcp(GET, token=b"\x0b", options=[(6, b""), (11, b"aliveness")]))
            if msg.code == PONG:
                awaiting = None
            if msg.code == PING:
                sock.sendall(encode_tcp(PONG, token=msg.token))


def udp_keepalive(args, sock, mid, send):
    """After the request: an Empty Confirmable after every keepalive interval of silence (twice it, planted)."""
    interval = args.keepalive * (2 if args.slow_keepalive else 1)
    while True:
        sock.settimeout(interval)
        try:
            sock.recv(65535)
            continue  # anything from the server ends a silence
        except TimeoutError:
            pass
        mid = (mid + 1) & 0xFFFF
        send(encode_udp(CON, EMPTY, mid))
        print(f"sent a ping, mid={mid:#06x}", flush=True)


def client(args, sock=None, send=None):
    """One Confirmable GET to args.client:args.port; ``sock`` and ``send``: another way there and back (dtlsbroken.py
    gives a socket pair whose other end is a DTLS association), else a UDP socket of its own."""
    if sock is None:
        sock = socket.socket(socket.AF_INET6 if ":" in args.client else socket.AF_INET, socket.SOCK_DGRAM)
    if send is None:
        def send(data):
            sock.sendto(data, (args.client, args.port))
    mid = random.randrange(0x10000)
    request = encode_udp(CON, GET, mid, token=b"\xc1", options=[(11, b"aliveness")])
    timeout, grow = schedule(args)
    sent = 0
    while True:
        send(request)
        print(f"sent {decode_udp(request).describe()} (transmission {sent + 1}); next wait {timeout:.3f} s", flush=True)
        sent += 1
        sock.settimeout(timeout)
        try:
            while decode_udp(sock.recv(65535)).mid != mid:
                pass
            print("acknowledged", flush=True)
            if args.keepalive:
                udp_keepalive(args, sock, mid, send)
            return
        except TimeoutError:
            pass
        if sent > 4 and not args.endless:
            print("gave up after 4 retransmissions", flush=True)
            return
        timeout = grow(timeout)


def non_keepalive(sock, last_peer):
    """Planted defect: an Empty NON every second to the last client (the CoAP ping is an Empty CON)."""
    mid = 0x7000
    while True:
        time.sleep(1.0)
        if last_peer:
            mid = (mid + 1) & 0xFFFF
            sock.sendto(encode_udp(NON, EMPTY, mid), last_peer[0])


def udp_flood(sock, peer):
    """HOSTILE: never read again; garbage and near-maximal datagrams to ``peer``, paced to about 1.4 MB/s."""
    print(f"flooding {peer} and never reading again (hostile)", flush=True)
    garbage, huge = bytes(range(256)) * 4, b"\x50\x45" + os.urandom(59998)
    while True:
        for _ in range(8):
            sock.sendto(garbage, peer)
        sock.sendto(huge, peer)
        time.sleep(0.05)


def tcp_flood(sock):
    """HOSTILE: 16 KiB 2.05 messages and Pongs without end (about 1 MB/s); never read."""
    print("flooding the connection and never reading (hostile)", flush=True)
    big = encode_tcp(CONTENT, token=b"\x01", payload=bytes(16384))
    while True:
        sock.sendall(big + encode_tcp(PONG, token=b"\x02"))
        time.sleep(0.016)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--tcp", action="store_true")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--client", metavar="HOST")
    parser.add_argument("--keepalive", type=float, default=0.0)
    for flag in FLAGS:
        parser.add_argument(f"--{flag}", action="store_true")
    args = parser.parse_args()
    if args.tcp and args.client:
        tcp_client(args)
        return
    if args.tcp:
        serve_tcp(args)
        return
    if args.client:
        client(args)
        return
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", args.port))
    SOCK.append(sock)
    print(f"listening on port {args.port}", flush=True)
    last_peer, seen = [], set()
    if args.non_keepalive:
        threading.Thread(target=non_keepalive, args=(sock, last_peer), daemon=True).start()
    while True:
        data, peer = sock.recvfrom(65535)
        last_peer[:] = [peer]
        if args.hostile_flood:
            udp_flood(sock, peer)
        key = (peer, data[2:4])
        if args.ignore_duplicates and data[:1] and ((data[0] >> 4) & 3) == CON and key in seen:
            print(f"{decode_udp(data).describe()} -> nothing (a duplicate: planted defect)", flush=True)
            continue
        seen.add(key)
        reply = answer(args, data, peer)
        print(f"{decode_udp(data).describe()} -> {decode_udp(reply).describe() if reply else 'nothing'}", flush=True)
        if reply is not None:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
