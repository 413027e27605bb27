"""A TCP echo endpoint whose keep-alive is forged in user space, with switchable defects.

The kernel carries the connection; a packet socket watches it (to learn SND.NXT, RCV.NXT and the
peer's MAC) and sends probe segments itself. Defects, for the suite's faulty-peer tests:
  --ignore-traffic   probe every --interval seconds whatever traffic flows (breaks RFC 9293 MUST-26)
  --garbage-octet    put one garbage octet in every probe (SHLD-12 says none)
Without a defect flag it behaves: probes after --idle seconds without a segment from the peer,
repeats every --interval, and resets the connection after --count unanswered probes.
"""
import argparse
import socket
import struct
import threading
import time

ETH_P_IP = 0x0800


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Watch:
    """What the packet socket has seen of one connection."""

    def __init__(self, local, peer):
        self.local, self.peer = local, peer  # (ip, port)
        self.snd_nxt = self.rcv_nxt = None
        self.window = 502
        self.macs = None
        self.last_from_peer = time.monotonic()
        self.lock = threading.Lock()

    def observe(self, frame, outgoing):
        if len(frame) < 54 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
            return
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            return
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
        off = (tcp[12] >> 4) * 4
        flags = tcp[13]
        length = total - ihl - off + (1 if flags & 0x03 else 0)  # SYN and FIN take a number
        with self.lock:
            if (src, sport) == self.local and (dst, dport) == self.peer:
                end = (seq + length) & 0xFFFFFFFF
                if self.snd_nxt is None or (end - self.snd_nxt) & 0xFFFFFFFF < 0x80000000:
                    self.snd_nxt = end
                self.window = struct.unpack("!H", tcp[14:16])[0]
                self.macs = (frame[0:6], frame[6:12])  # (peer, ours)
            elif (src, sport) == self.peer and (dst, dport) == self.local:
                self.last_from_peer = time.monotonic()
                self.macs = (frame[6:12], frame[0:6])
                if flags & 0x10 and (self.snd_nxt is None or (ack - self.snd_nxt) & 0xFFFFFFFF < 0x80000000):
                    self.snd_nxt = ack  # everything up to the peer's ACK was sent by us
                end = (seq + length) & 0xFFFFFFFF
                if self.rcv_nxt is None or (end - self.rcv_nxt) & 0xFFFFFFFF < 0x80000000:
                    self.rcv_nxt = end

    def probe_frame(self, garbage):
        with self.lock:
            if self.macs is None or self.snd_nxt is None:
                return None
            payload = b"\x00" if garbage else b""
            seq = (self.snd_nxt - 1) & 0xFFFFFFFF
            tcp = struct.pack("!HHIIBBHHH", self.local[1], self.peer[1], seq, self.rcv_nxt, 5 << 4, 0x10, self.window, 0, 0)
            src, dst = socket.inet_aton(self.local[0]), socket.inet_aton(self.peer[0])
            pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
            tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp + payload)) + tcp[18:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
            ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
            peer_mac, our_mac = self.macs
            return peer_mac + our_mac + struct.pack("!H", ETH_P_IP) + ip + tcp + payload


def sniff(raw, watch, stop):
    while not stop.is_set():
        frame, addr = raw.recvfrom(65535)
        watch.observe(frame, addr[2] == socket.PACKET_OUTGOING)


def keepalive(conn, raw, watch, args, stop):
    """The forged keep-alive loop (the defects live here)."""
    unanswered, last_probe, started = 0, None, time.monotonic()
    while not stop.wait(0.02):
        now = time.monotonic()
        if args.ignore_traffic:  # the defect: a plain timer from the connection's start, blind to traffic
            due = (last_probe is None and now - started >= args.idle) or (
                last_probe is not None and now - last_probe >= args.interval)
        else:
            if last_probe is not None and watch.last_from_peer > last_probe:
                unanswered, last_probe = 0, None  # the peer answered: back to idle
            quiet = now - watch.last_from_peer
            due = (last_probe is None and quiet >= args.idle) or (last_probe is not None and now - last_probe >= args.interval)
            if due and unanswered >= args.count:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                print("peer dead after", unanswered, "unanswered probes: connection reset", flush=True)
                stop.set()
                return
        if due:
            frame = watch.probe_frame(args.garbage_octet)
            if frame:
                raw.send(frame)
                last_probe = now
                unanswered += 1


def serve(conn, args):
    local, peer = conn.getsockname()[:2], conn.getpeername()[:2]
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    raw.bind(("eth0", ETH_P_IP))  # CPython applies htons to the bind protocol itself
    watch = Watch(local, peer)
    stop = threading.Event()
    threading.Thread(target=sniff, args=(raw, watch, stop), daemon=True).start()
    if args.keepalive:
        threading.Thread(target=keepalive, args=(conn, raw, watch, args, stop), daemon=True).start()
    print("connection", local, "<->", peer, flush=True)
    try:
        while not stop.is_set():
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
    except OSError as err:
        print("connection ended:", err, flush=True)
    stop.set()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int)
    parser.add_argument("--connect")
    parser.add_argument("--keepalive", action="store_true")
    parser.add_argument("--idle", type=float, default=7200)
    parser.add_argument("--interval", type=float, default=75)
    parser.add_argument("--count", type=int, default=9)
    parser.add_argument("--ignore-traffic", action="store_true")
    parser.add_argument("--garbage-octet", action="store_true")
    args = parser.parse_args()
    if args.listen:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", args.listen))
        server.listen(8)
        print("listening on", args.listen, flush=True)
        while True:
            conn, _ = server.accept()
            threading.Thread(target=serve, args=(conn, args), daemon=True).start()
    host, port = args.connect.rsplit(":", 1)
    serve(socket.create_connection((host, int(port))), args)


if __name__ == "__main__":
    main()
