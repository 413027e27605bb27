"""A TLS client on tlslite-ng: a thin driver; heartbeats are the library's own handling.

    connect.py HOST PORT CA_CERT

Connections one after the other (each ended one is followed 0.2 s later by the next): a handshake offering
TLS 1.2 and 1.3 and the heartbeat extension (peer_allowed_to_send, as tlslite-ng always offers it), then it
reads until the server closes, echoing what it receives. tlslite-ng
answers a HeartbeatRequest while it reads. (tlslite-ng does not check the server's certificate against a
CA unless given a checker; the CA file is accepted for symmetry with the other clients and not used.)
"""
import socket
import sys
import time

from tlslite.api import HandshakeSettings, TLSConnection


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    while True:
        try:
            once(host, port)
        except OSError as err:
            print(f"connect: {err}", flush=True)
        time.sleep(0.2)


def once(host, port):
    sock = socket.create_connection((host, port))
    conn = TLSConnection(sock)
    settings = HandshakeSettings()
    settings.maxVersion = (3, 4)
    try:
        conn.handshakeClientCert(settings=settings)
        print(f"TLS {conn.version} handshake done, heartbeat {'on' if conn.heartbeat_supported else 'off'}", flush=True)
        while True:
            data = conn.read()
            if not data:
                break
            conn.write(data)
    except Exception as err:
        print(f"{type(err).__name__}: {err}", flush=True)
    finally:
        print("closed", flush=True)
        sock.close()


if __name__ == "__main__":
    main()
