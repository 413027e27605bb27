"""A CoAP-over-UDP server that keeps RFC 7252 §4.2/§4.3 unless a flag plants a defect.

    coapbroken.py PORT [--flag ...]

Conformant behaviour: an Empty Confirmable (a ping) or a malformed Confirmable gets a Reset with its Message
ID; a Confirmable GET gets a piggybacked 2.05 "hello"; a Non-confirmable GET a Non-confirmable 2.05; ACKs,
Resets and anything else Non-confirmable are ignored.

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
"""
import argparse
import socket
import sys

from fixtures.coapwire import ACK, CON, CONTENT, EMPTY, GET, NON, RST, decode_udp, encode_udp

FLAGS = ("ignore-ping", "ack-ping", "wrong-mid", "reset-not-empty", "answers-ack", "ack-non", "ack-malformed",
         "silent-malformed", "crash-malformed")


def reset(args, mid):
    if args.wrong_mid:
        mid = (mid + 1) & 0xFFFF
    return encode_udp(RST, EMPTY, mid, token=b"\x99" if args.reset_not_empty else b"")


def answer(args, data):
    """The datagram to send back for ``data`` (None: nothing)."""
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
        return encode_udp(RST, EMPTY, msg.mid) if args.answers_ack else None
    if msg.empty:
        if msg.mtype == NON:
            return encode_udp(ACK, EMPTY, msg.mid) if args.ack_non else None
        if args.ignore_ping:
            return None
        return encode_udp(ACK, EMPTY, msg.mid) if args.ack_ping else reset(args, msg.mid)
    if msg.code == GET:
        mtype = ACK if msg.mtype == CON else NON
        return encode_udp(mtype, CONTENT, msg.mid, token=msg.token, payload=b"hello")
    return reset(args, msg.mid) if msg.mtype == CON else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    for flag in FLAGS:
        parser.add_argument(f"--{flag}", action="store_true")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", args.port))
    print(f"listening on port {args.port}", flush=True)
    while True:
        data, peer = sock.recvfrom(65535)
        reply = answer(args, data)
        print(f"{decode_udp(data).describe()} -> {decode_udp(reply).describe() if reply else 'nothing'}", flush=True)
        if reply is not None:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
