"""A TLS client that keeps its session alive with RFC 6520 heartbeats, the RFC 9645 way, on GnuTLS's own API.

    hbdrive.py HOST PORT CA_CERT [--max-wait S --max-attempts N]

No Debian program pings periodically (gnutls-cli pings only when told), so this thin driver calls
libgnutls (through ctypes) for everything TLS: the handshake (TLS 1.2 or 1.3, the server's certificate
checked against CA_CERT for the name "tester"), the heartbeat extension (gnutls_heartbeat_enable: it may
send Requests and answers the peer's), the HeartbeatRequests themselves (gnutls_heartbeat_ping, which
builds the message) and the answers to the peer's Requests (gnutls_heartbeat_pong).

Its own part is the RFC 9645 test-peer-aliveness policy: when nothing has been received for --max-wait
seconds it sends a HeartbeatRequest; any record from the server (a Response included) resets the clock;
after --max-attempts Requests in a row have each gone --max-wait seconds without an answer, the server
is taken for dead and the connection closed (an unresponsive server is dropped about max-wait x
max-attempts after it last answered). Without the options it never pings, and only answers. Application
data from the server is echoed back. Every step is logged to stdout.

    --fault never-drop    keep sending Requests to a dead server, never closing (for the suite's faulty peers)
    --fault slow-wait     wait twice max-wait of silence before each Request (likewise)
"""
import argparse
import ctypes
import select
import socket
import sys
import time

GNUTLS_CLIENT = 2
GNUTLS_CRD_CERTIFICATE = 1
GNUTLS_X509_FMT_PEM = 1
GNUTLS_NAME_DNS = 1
GNUTLS_HB_PEER_ALLOWED_TO_SEND = 1
GNUTLS_HB_LOCAL_ALLOWED_TO_SEND = 1 << 2

lib = ctypes.CDLL("libgnutls.so.30")
lib.gnutls_strerror_name.restype = ctypes.c_char_p
lib.gnutls_strerror.restype = ctypes.c_char_p


def name(code):
    return (lib.gnutls_strerror_name(code) or b"?").decode()


def check(code, what):
    if code < 0:
        raise RuntimeError(f"{what}: {name(code)} ({(lib.gnutls_strerror(code) or b'').decode()})")
    return code


def log(text):
    print(f"{time.monotonic():.3f} {text}", flush=True)


def connect(host, port, ca):
    check(lib.gnutls_global_init(), "gnutls_global_init")
    cred = ctypes.c_void_p()
    check(lib.gnutls_certificate_allocate_credentials(ctypes.byref(cred)), "allocate credentials")
    check(lib.gnutls_certificate_set_x509_trust_file(cred, ca.encode(), GNUTLS_X509_FMT_PEM), "trust file")
    session = ctypes.c_void_p()
    check(lib.gnutls_init(ctypes.byref(session), GNUTLS_CLIENT), "gnutls_init")
    check(lib.gnutls_priority_set_direct(session, b"NORMAL", None), "priority")
    check(lib.gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred), "credentials")
    check(lib.gnutls_server_name_set(session, GNUTLS_NAME_DNS, b"tester", 6), "server name")
    lib.gnutls_session_set_verify_cert(session, b"tester", 0)
    check(lib.gnutls_heartbeat_enable(session, GNUTLS_HB_LOCAL_ALLOWED_TO_SEND | GNUTLS_HB_PEER_ALLOWED_TO_SEND),
          "heartbeat_enable")
    sock = socket.create_connection((host, port))
    lib.gnutls_transport_set_int2(session, sock.fileno(), sock.fileno())
    while True:
        code = lib.gnutls_handshake(session)
        if code >= 0:
            break
        if lib.gnutls_error_is_fatal(code):
            lib.gnutls_alert_send_appropriate(session, code)  # GnuTLS leaves the alert to the application
            check(code, "handshake")
    log(f"handshake done; heartbeat {'allowed to send' if lib.gnutls_heartbeat_allowed(session, 1) else 'not allowed to send'}")
    return session, sock


def serve(session, sock, max_wait, max_attempts, fault=None):
    if fault == "slow-wait" and max_wait is not None:
        max_wait *= 2
    buf = ctypes.create_string_buffer(65536)
    last_heard = time.monotonic()
    unanswered = 0
    while True:
        pending = lib.gnutls_record_check_pending(session)
        timeout = None if max_wait is None else max(0.0, last_heard + max_wait * (unanswered + 1) - time.monotonic())
        if not pending:
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                if unanswered >= max_attempts and fault != "never-drop":
                    log(f"{unanswered} HeartbeatRequests unanswered for {max_wait} s each: the server is dead; closing")
                    return
                code = lib.gnutls_heartbeat_ping(session, 64, 1, 0)  # send only: the pong comes through recv
                unanswered += 1
                log(f"HeartbeatRequest {unanswered} of {max_attempts} sent ({name(code) if code < 0 else 'ok'})")
                continue
        code = lib.gnutls_record_recv(session, buf, len(buf))
        if code == 0:
            log("the server closed the connection")
            return
        if code > 0:
            last_heard, unanswered = time.monotonic(), 0
            lib.gnutls_record_send(session, buf, code)
            continue
        error = name(code)
        if error == "GNUTLS_E_HEARTBEAT_PING_RECEIVED":
            last_heard, unanswered = time.monotonic(), 0
            lib.gnutls_heartbeat_pong(session, 0)
            log("answered a HeartbeatRequest")
        elif error == "GNUTLS_E_HEARTBEAT_PONG_RECEIVED":
            last_heard, unanswered = time.monotonic(), 0
            log("HeartbeatResponse received")
        elif error in ("GNUTLS_E_AGAIN", "GNUTLS_E_INTERRUPTED"):
            continue
        elif lib.gnutls_error_is_fatal(code):
            lib.gnutls_alert_send_appropriate(session, code)  # as GnuTLS's own tools do
            log(f"connection ended: {error}")
            return
        else:
            log(f"non-fatal: {error}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("ca")
    parser.add_argument("--max-wait", type=float)
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--fault", choices=("never-drop", "slow-wait"))
    args = parser.parse_args()
    session, sock = connect(args.host, args.port, args.ca)
    try:
        serve(session, sock, args.max_wait, args.max_attempts, args.fault)
    finally:
        sock.close()
        log("closed")


if __name__ == "__main__":
    sys.exit(main())
