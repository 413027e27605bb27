"""An SSH server or client on asyncssh, conformant unless a flag plants a defect.

    sshpeer.py PORT HOST_KEY AUTHORIZED_KEYS [--max-wait S --max-attempts N] [--flag ...]
    sshpeer.py --connect HOST:PORT --user NAME USER_KEY KNOWN_HOSTS [--max-wait S --max-attempts N] [--flag ...]

Logins are by public key only (the keys in AUTHORIZED_KEYS, any user name); a session may ask for a shell
or a command, which does nothing and stays open; remote port forwarding (tcpip-forward) is allowed.
Unknown global and channel requests are refused as RFC 4254 says (asyncssh's own handling). With
--max-wait, asyncssh's keepalive sends keepalive@openssh.com after max-wait seconds and drops the client
after --max-attempts unanswered ones (keepalive_interval and keepalive_count_max).

With --connect it is a client instead: it logs in to HOST:PORT as --user with USER_KEY, trusting the host
keys in KNOWN_HOSTS, opens nothing (as ssh -N), and dials again 0.2 s after each connection ends (or
fails), with the same keepalive knobs on its side.

The defects (for the suite's faulty peers; each patches asyncssh's request handling in this process only):
  --no-reply            never answer a global request, whatever its want-reply
  --disconnect-unknown  disconnect on a global request it does not know (keepalive@openssh.com among them)
  --success-unknown     answer an unknown global request with REQUEST_SUCCESS
  --reply-unwanted      answer global requests without want-reply too
  --out-of-order        answer a tcpip-forward only after the request that follows it
  --channel-success     answer an unknown channel request with CHANNEL_SUCCESS
  --channel-reply-unwanted  answer channel requests without want-reply too
  --keepalive-ignored   take the keepalive knobs and never send a keepalive
  --early-give-up       drop the client one unanswered keepalive early
  --drops-live          drop every client 2 x max-wait after login, answered keepalives or not
                        (as a client: leave the server 2 x max-wait after login)
  --hostile-flood       HOSTILE (server): once the client has logged in, stop reading and send a 16 KiB
                        SSH_MSG_IGNORE every 5 ms without end
  --no-redial           (client) exit when the first connection ends instead of dialling again
  --clock-keepalive     replace asyncssh's keepalive by one on a fixed clock that counts only replies: a
                        keepalive every max-wait seconds whatever the peer sends, the peer dropped after
                        max-attempts unanswered ones in a row
"""
import argparse
import asyncio
import sys
import time

import asyncssh
from asyncssh import channel as _channel
from asyncssh import connection as _connection
from asyncssh.constants import MSG_IGNORE, MSG_REQUEST_SUCCESS
from asyncssh.packet import String

ARGS = None


def log(text):
    print(f"{time.monotonic():.3f} {text}", flush=True)


def plant_defects(args):
    """Patch asyncssh's reply logic for the flags given (class-level: this process only)."""
    conn_cls = _connection.SSHConnection
    original_report = conn_cls._report_global_response
    held = {}

    def report_global(self, result):
        request_handler, packet, want_reply = self._global_request_queue[0]
        known = callable(request_handler)
        if args.no_reply or (args.disconnect_unknown and not known):
            self._global_request_queue.pop(0)
            if args.disconnect_unknown and not known:
                log("disconnecting on an unknown global request")
                self.disconnect(asyncssh.DISC_BY_APPLICATION, "unknown global request")
                return
            if self._global_request_queue:
                self._service_next_global_request()
            return
        if args.success_unknown and not known and not result:
            result = True
        if args.reply_unwanted and not want_reply:
            self._global_request_queue[0] = (request_handler, packet, True)
        if args.out_of_order:
            forward = "tcpip_forward" in getattr(request_handler, "__name__", "")
            if forward and result and held.get(self) is None:  # a granted tcpip-forward: its reply waits
                self._global_request_queue.pop(0)
                held[self] = result
                if self._global_request_queue:
                    self._service_next_global_request()
                return
            original_report(self, result)
            if held.get(self) is not None:
                granted = held.pop(self)
                self.send_packet(MSG_REQUEST_SUCCESS, b"" if granted is True else granted)
            return
        original_report(self, result)

    conn_cls._report_global_response = report_global

    original_channel_report = _channel.SSHChannel._report_response

    def report_channel(self, result):
        request, packet, want_reply = self._request_queue[0]
        standard = request in {"shell", "exec", "subsystem", "pty-req", "env", "window-change", "signal", "break"}
        if args.channel_success and not standard:
            result = True
        if args.channel_reply_unwanted and not want_reply:
            self._request_queue[0] = (request, packet, True)
        original_channel_report(self, result)

    _channel.SSHChannel._report_response = report_channel


class Session(asyncssh.SSHServerSession):
    def shell_requested(self):
        return True

    def exec_requested(self, command):
        return True


class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        self.conn = conn
        peer = conn.get_extra_info("peername")
        log(f"connection from {peer[0]} port {peer[1]}")
        if ARGS.drops_live and ARGS.max_wait:
            asyncio.get_event_loop().call_later(2 * ARGS.max_wait, self._drop)

    def _drop(self):
        log("dropping the client (planted defect)")
        self.conn.close()

    def connection_lost(self, exc):
        log(f"connection closed: {exc or 'by the client'}")

    def session_requested(self):
        return Session()

    def auth_completed(self):
        start_clock_keepalive(self.conn)
        if ARGS.hostile_flood:
            flood(self.conn)

    def server_requested(self, listen_host, listen_port):
        return True  # remote port forwarding allowed, as OpenSSH and Dropbear allow it by default


def flood(conn):
    """HOSTILE: stop reading the connection (asyncio's transport below asyncssh) and send a 16 KiB SSH_MSG_IGNORE
    every 5 ms, without end."""
    log("flooding with SSH_MSG_IGNORE and never reading (hostile)")
    conn._transport.pause_reading()
    filler = String(bytes(16384))

    def more():
        if conn.is_closed():
            return
        conn.send_packet(MSG_IGNORE, filler)
        asyncio.get_event_loop().call_later(0.005, more)

    more()


async def serve(args):
    keepalive = keepalive_options(args)
    await asyncssh.listen(
        "", args.port, server_host_keys=[args.host_key], authorized_client_keys=args.authorized_keys,
        server_factory=Server, reuse_address=True, **keepalive)
    log(f"listening on port {args.port}" + (f"; keepalives {keepalive}" if keepalive else ""))
    await asyncio.Event().wait()


def keepalive_options(args):
    if not args.max_wait or args.keepalive_ignored or args.clock_keepalive:
        return {}
    attempts = args.max_attempts - 1 if args.early_give_up else args.max_attempts
    return {"keepalive_interval": args.max_wait, "keepalive_count_max": max(attempts, 1)}


async def clock_keepalive(conn, interval, attempts):
    """The --clock-keepalive defect: keepalives on a fixed clock, traffic from the peer not counted."""
    pending, missed = None, 0
    while not conn.is_closed():
        await asyncio.sleep(interval)
        missed = missed + 1 if pending is not None and not pending.done() else 0
        if missed >= attempts:
            log("dropping the peer: keepalives unanswered (planted defect: its traffic is not counted)")
            conn.close()
            return
        pending = asyncio.ensure_future(conn._make_global_request(b"keepalive@openssh.com"))


def start_clock_keepalive(conn):
    if ARGS.clock_keepalive and ARGS.max_wait:
        asyncio.ensure_future(clock_keepalive(conn, ARGS.max_wait, ARGS.max_attempts))


class Client(asyncssh.SSHClient):
    def connection_made(self, conn):
        self.conn = conn
        log("connected")
        if ARGS.drops_live and ARGS.max_wait:
            asyncio.get_event_loop().call_later(2 * ARGS.max_wait, self._drop)

    def _drop(self):
        log("leaving the server (planted defect)")
        self.conn.close()

    def connection_lost(self, exc):
        log(f"connection closed: {exc or 'by the server'}")


async def dial(args):
    host, _, port = args.connect.rpartition(":")
    keepalive = keepalive_options(args)
    log(f"dialling {host} port {port}" + (f"; keepalives {keepalive}" if keepalive else ""))
    while True:
        try:
            conn, _ = await asyncssh.create_connection(
                Client, host, int(port), username=args.user, client_keys=[args.host_key],
                known_hosts=args.authorized_keys, **keepalive)
        except (OSError, asyncssh.Error) as exc:
            log(f"could not log in: {exc}")
        else:
            log("logged in")
            start_clock_keepalive(conn)
            await conn.wait_closed()
        if args.no_redial:
            return
        await asyncio.sleep(0.2)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect", metavar="HOST:PORT", help="be a client of HOST:PORT")
    parser.add_argument("--user", default="aliveness")
    parser.add_argument("port", type=int, nargs="?")
    parser.add_argument("host_key", help="the host key (server) or the user key (client)")
    parser.add_argument("authorized_keys", help="the authorized keys (server) or the known hosts (client)")
    parser.add_argument("--max-wait", type=float)
    parser.add_argument("--max-attempts", type=int, default=3)
    for flag in ("no-reply", "disconnect-unknown", "success-unknown", "reply-unwanted", "out-of-order",
                 "channel-success", "channel-reply-unwanted", "keepalive-ignored", "early-give-up", "drops-live",
                 "no-redial", "clock-keepalive", "hostile-flood"):
        parser.add_argument(f"--{flag}", action="store_true")
    ARGS = parser.parse_args()
    if (ARGS.connect is None) == (ARGS.port is None):
        parser.error("give a PORT to serve on, or --connect HOST:PORT to be a client")
    plant_defects(ARGS)
    asyncio.run(dial(ARGS) if ARGS.connect else serve(ARGS))


if __name__ == "__main__":
    sys.exit(main())
