"""A CoAP server over DTLS 1.2 in PreSharedKey mode ("coaps"), answering every message as coapbroken.py does.

    coapdtlsbroken.py PORT IDENTITY_FILE KEY_FILE [coapbroken.py's UDP flags ...]

The association is the suite's own DTLS tester as a PSK server (GnuTLS's handshake with the identity and key
read from the two files, then the tester's records); one association at a time, the first datagram of a new
client picking the peer, as dtlsbroken.py does. Every record of application data is one CoAP message, and
coapbroken.py's ``answer`` decides the reply, so its flags (--wrong-mid, --ignore-ping, ...) plant the same
defects inside DTLS.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path[:0] = ["/opt/aliveness/peers/faulty/coapbroken", "/opt/aliveness/peers/faulty/dtlsbroken"]

import coapbroken  # noqa: E402 - the paths above first
from dtlsbroken import log, next_peer  # noqa: E402

from fixtures.testers.dtls import DtlsTester  # noqa: E402
from fixtures.testers.heartbeat import APPLICATION_DATA  # noqa: E402


def serve(sock, peer, args, passwd):
    dtls = DtlsTester(sock, timeout=10)
    got = dtls.handshake(mode=None, psk_file=passwd)
    log(got.describe())
    if not got.ok:
        return
    dtls.start_reading()
    seen = 0
    while dtls.ended is None:
        records = dtls.received()
        for record in records[seen:]:
            if record.content_type == APPLICATION_DATA:
                reply = coapbroken.answer(args, record.body, peer)
                log(f"{coapbroken.decode_udp(record.body).describe()} -> "
                    f"{coapbroken.decode_udp(reply).describe() if reply else 'nothing'}")
                if reply is not None:
                    dtls.send(APPLICATION_DATA, reply)
        seen = len(records)
        time.sleep(0.005)
    log(f"association over: {dtls.ended[1]}")
    dtls.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("identity_file")
    parser.add_argument("key_file")
    for flag in coapbroken.FLAGS:
        parser.add_argument(f"--{flag}", action="store_true")
    args = parser.parse_args()
    identity = open(args.identity_file).read().strip()
    key = open(args.key_file, "rb").read().strip()
    fd, passwd = tempfile.mkstemp(prefix="psk-")
    os.write(fd, f"{identity}:{key.hex()}\n".encode())
    os.close(fd)
    log(f"listening on UDP port {args.port} (DTLS, PSK identity {identity})")
    while True:
        sock, peer = next_peer(args.port)
        log(f"association with {peer[0]} port {peer[1]}")
        serve(sock, peer, args, passwd)


if __name__ == "__main__":
    sys.exit(main())
