"""A TLS echo server on tlslite-ng: a thin driver; heartbeats are the library's own handling.

    serve.py PORT CERT KEY

Every connection gets its own thread: a handshake (TLS 1.2 or 1.3, the heartbeat extension answered with
peer_allowed_to_send when the client offers it, as tlslite-ng does), then application data echoed back
until the client closes. tlslite-ng answers a HeartbeatRequest while it reads, so the echo loop's read()
is what serves heartbeats. Each connection's start, handshake and end is logged to stdout.
"""
import socket
import sys
import threading

from tlslite import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey


def serve(sock, peer, chain, key):
    conn = TLSConnection(sock)
    settings = HandshakeSettings()
    settings.maxVersion = (3, 4)
    try:
        conn.handshakeServer(certChain=chain, privateKey=key, settings=settings)
        print(f"{peer}: TLS {conn.version} handshake done, heartbeat {'on' if conn.heartbeat_supported else 'off'}", flush=True)
        while True:
            data = conn.read()
            if not data:
                break
            conn.write(data)
    except Exception as err:  # one client's trouble ends only its connection
        print(f"{peer}: {type(err).__name__}: {err}", flush=True)
    finally:
        print(f"{peer}: closed", flush=True)
        sock.close()


def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    chain = X509CertChain()
    chain.parsePemList(open(cert).read())
    private = parsePEMKey(open(key).read(), private=True)
    listener = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
    print(f"listening on {port}", flush=True)
    while True:
        sock, peer = listener.accept()
        threading.Thread(target=serve, args=(sock, peer[0], chain, private), daemon=True).start()


if __name__ == "__main__":
    main()
