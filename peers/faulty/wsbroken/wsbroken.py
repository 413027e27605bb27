"""A small RFC 6455 endpoint (stdlib asyncio only) with switchable planted defects, for the faulty peers.

With no defect switch it is a conformant echo endpoint: it answers every Ping at once with a Pong carrying
the same data, ignores unsolicited Pongs, echoes text and binary messages (fragmented ones reassembled,
control frames between fragments handled at once), fails the connection (Close 1002, then TCP closed) on a
protocol error, echoes a Close's status code and closes TCP, and bounds messages (Close 1009). With
--ping-interval it also sends keepalive Pings and closes a peer (1011) that leaves one unanswered for
--ping-timeout seconds.

  wsbroken.py PORT [options]              a server (any request path)
  wsbroken.py --connect HOST:PORT [opts]  a client (path --path, default "/"); it exits when the
                                          connection ends unless --reconnect is given

Planted defects (each off by default):
  --pong altered|none|late:SECONDS   Pong data differs / no Pong / Pong SECONDS after the Ping
  --accept-long-control              a control frame over 125 octets is accepted (a long Ping is answered)
  --accept-fragmented-control        a control frame with FIN=0 is reassembled from continuations and handled
  --fail-on-interleaved              a control frame between fragments of a message fails the connection
  --never-close                      a keepalive Ping left unanswered never ends the connection
  --fixed-interval SECONDS           keepalive Pings every SECONDS whatever --ping-interval says
  --ignore-pongs                     keepalive counts every Pong as missing (closes a healthy peer)
  --mask-wrong                       a server masks the frames it sends, a client leaves them unmasked
  --ping-rsv                         its own keepalive Pings have RSV1 set (a defect only in unprompted frames)
  --reserved-opcode                  after each echoed message, a frame with the reserved opcode 0x3
  --long-length                      every frame length in the 64-bit form, however short
  --close-code CODE                  every Close it sends carries CODE (e.g. 1005, which no Close may carry)
  --hostile garbage|huge-frame|endless-fragments|no-handshake|flood   (server) misbehave on the wire
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import codecs
import hashlib
import os
import struct
import sys
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OPCODES = {CONT, TEXT, BINARY, CLOSE, PING, PONG}
OPNAMES = {CONT: "continuation", TEXT: "text", BINARY: "binary", CLOSE: "close", PING: "ping", PONG: "pong"}

# Close codes a peer may put in a Close frame (RFC 6455 §7.4.1 and the IANA registry); 3000-4999 too.
VALID_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}

LINGER = 2.0  # seconds to wait for the peer's side of a TCP close, or for a blocked write to drain


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} {message}", flush=True)


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def xor_mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = False, rsv: int = 0,
           long_length: bool = False) -> bytes:
    n = len(payload)
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mbit = 0x80 if mask else 0
    if long_length:  # the 64-bit form whatever the length (a defect: §5.2 wants the shortest)
        head = bytes([first, mbit | 127]) + struct.pack("!Q", n)
    elif n < 126:
        head = bytes([first, mbit | n])
    elif n < 65536:
        head = bytes([first, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        return head + key + xor_mask(payload, key)
    return head + payload


def show(data: bytes, limit: int = 24) -> str:
    text = repr(data[:limit])
    return text + ("..." if len(data) > limit else "")


def parse_head(raw: bytes) -> tuple[str, dict[str, str]]:
    """The first line of an HTTP head and its fields (names lower-cased, repeated fields joined by ', ')."""
    lines = raw.decode("latin-1").split("\r\n")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line!r}")
        name = name.strip().lower()
        fields[name] = f"{fields[name]}, {value.strip()}" if name in fields else value.strip()
    return lines[0], fields


def tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",") if t.strip()}


class Finish(Exception):
    """Ends a connection's read loop (a Close was sent or received); the TCP close follows."""


class Options:
    def __init__(self, args: argparse.Namespace) -> None:
        self.pong_mode, self.pong_delay = args.pong
        self.accept_long_control = args.accept_long_control
        self.accept_fragmented_control = args.accept_fragmented_control
        self.fail_on_interleaved = args.fail_on_interleaved
        self.never_close = args.never_close
        self.fail_without_close = args.fail_without_close
        self.ignore_pongs = args.ignore_pongs
        self.max_size = args.max_size
        self.mask_wrong = args.mask_wrong
        self.ping_rsv = args.ping_rsv
        self.reserved_opcode = args.reserved_opcode
        self.long_length = args.long_length
        self.close_code = args.close_code
        self.ping_timeout = args.ping_timeout if args.ping_timeout is not None else 20.0
        self.ping_interval = None
        if args.ping_interval is not None:
            self.ping_interval = args.fixed_interval if args.fixed_interval is not None else args.ping_interval

    def describe(self, args: argparse.Namespace) -> str:
        defects = []
        if self.pong_mode != "normal":
            defects.append(f"pong {self.pong_mode}" + (f":{self.pong_delay:g}" if self.pong_mode == "late" else ""))
        for flag in ("accept_long_control", "accept_fragmented_control", "fail_on_interleaved", "never_close",
                     "ignore_pongs", "fail_without_close", "mask_wrong", "ping_rsv", "reserved_opcode", "long_length"):
            if getattr(self, flag):
                defects.append(flag.replace("_", "-"))
        if args.fixed_interval is not None:
            defects.append(f"fixed-interval {args.fixed_interval:g}")
        if args.close_code is not None:
            defects.append(f"close-code {args.close_code}")
        if args.hostile:
            defects.append(f"hostile {args.hostile}")
        keepalive = (
            f"keepalive ping every {self.ping_interval:g} s, timeout {self.ping_timeout:g} s"
            if self.ping_interval else "keepalive off"
        )
        if args.hostile and self.ping_interval:
            keepalive = "keepalive options ignored (hostile)"
        return f"{keepalive}; defects: {', '.join(defects) or 'none'}; max message {self.max_size} octets"


class Connection:
    """One open WebSocket connection (after the handshake), either role."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, role: str,
                 opts: Options, tag: str) -> None:
        self.reader = reader
        self.writer = writer
        self.role = role
        self.opts = opts
        self.tag = tag
        self.close_sent = False  # no frame may follow our Close
        self.close_received = False
        self.main: asyncio.Task | None = None
        self.helpers: set[asyncio.Task] = set()
        # the data message being reassembled
        self.msg_op: int | None = None
        self.msg_parts: list[bytes] = []
        self.msg_size = 0
        self.msg_utf8 = None
        # a fragmented control frame being reassembled (only with --accept-fragmented-control)
        self.ctl_op: int | None = None
        self.ctl_parts: list[bytes] = []
        # keepalive: Ping payload -> [sent at, acknowledged event], oldest first
        self.outstanding: dict[bytes, tuple[float, asyncio.Event]] = {}

    def log(self, message: str) -> None:
        log(f"[{self.tag}] {message}")

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.helpers.add(task)
        task.add_done_callback(self.helpers.discard)

    # ---- output

    def send(self, opcode: int, payload: bytes, rsv: int = 0) -> bool:
        if self.close_sent or self.writer.is_closing():
            return False
        masked = (self.role == "client") != self.opts.mask_wrong
        self.writer.write(encode(opcode, payload, mask=masked, rsv=rsv, long_length=self.opts.long_length))
        if opcode == CLOSE:
            self.close_sent = True
        return True

    def send_close(self, code: int | None, reason: str = "") -> None:
        if code is not None and self.opts.close_code is not None:
            code = self.opts.close_code
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
        if self.send(CLOSE, payload):
            self.log(f"close sent ({code if code is not None else 'no status code'}{' ' + reason if reason else ''})")

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    def fail(self, code: int, why: str) -> None:
        """Fail the WebSocket connection (RFC 6455 §7.1.7): Close with `code`, then stop reading."""
        self.log(f"failing the connection: {why}")
        if self.opts.fail_without_close:
            self.log("closing TCP without a Close frame (planted defect)")
        else:
            self.send_close(code, why[:100])
        raise Finish

    def stop_from_helper(self, code: int, reason: str) -> None:
        """Called from a helper task: send a Close and end the read loop, whatever it is waiting for."""
        if self.close_sent:
            return
        self.send_close(code, reason)
        if self.main is not None:
            self.main.cancel()

    # ---- the connection's life

    async def run(self) -> bool:
        """Serve the connection until it ends; True if it ended with a Close handshake from the peer."""
        self.main = asyncio.current_task()
        if self.opts.ping_interval:
            self.spawn(self.keepalive())
        wait_peer_first = False
        try:
            await self.read_loop()
        except Finish:
            wait_peer_first = self.role == "client" and self.close_received
        except asyncio.CancelledError:
            if not self.close_sent:
                raise
            asyncio.current_task().uncancel()
        except asyncio.IncompleteReadError:
            self.log("peer closed TCP without a Close frame")
        except (ConnectionError, OSError) as err:
            self.log(f"connection lost: {err!r}")
        finally:
            for task in list(self.helpers):
                task.cancel()
        await self.close_tcp(wait_peer_first)
        return self.close_received

    async def close_tcp(self, wait_peer_first: bool) -> None:
        """Close TCP: a server (or a client that sent the first Close) sends its FIN right away; a client that
        answered the server's Close gives the server LINGER seconds to close first (RFC 6455 §7.1.1)."""
        transport = self.writer.transport
        try:
            await asyncio.wait_for(self.writer.drain(), LINGER)
        except (TimeoutError, ConnectionError, OSError):
            self.log("could not flush the last frames: aborting TCP")
            transport.abort()
            return
        if not wait_peer_first and self.writer.can_write_eof() and not transport.is_closing():
            try:
                self.writer.write_eof()
            except OSError:
                pass
        # Read and drop whatever the peer still sends until it closes too, so the kernel does not answer
        # unread data with a reset (which could destroy our Close before the peer reads it).
        deadline = asyncio.get_running_loop().time() + LINGER
        try:
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0 or not await asyncio.wait_for(self.reader.read(65536), left):
                    break
        except (TimeoutError, ConnectionError, OSError):
            pass
        transport.close()
        self.log("TCP closed")

    async def read_loop(self) -> None:
        while True:
            fin, opcode, payload = await self.read_frame()
            await self.on_frame(fin, opcode, payload)
            await self.drain()

    async def read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        fin, rsv, opcode = bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F
        masked, length = bool(b1 & 0x80), b1 & 0x7F
        if rsv:
            self.fail(1002, f"RSV bits set ({rsv >> 4:03b}) with no extension negotiated")
        if opcode not in OPCODES:
            self.fail(1002, f"reserved opcode {opcode:#x}")
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            if length >> 63:
                self.fail(1002, "64-bit payload length with the most significant bit set")
        if self.role == "server" and not masked:
            self.fail(1002, "unmasked frame from a client")
        if self.role == "client" and masked:
            self.fail(1002, "masked frame from a server")
        name = OPNAMES[opcode]
        if opcode >= 0x8:
            if length > 125:
                if not self.opts.accept_long_control:
                    self.fail(1002, f"{name} frame with {length} octets of payload (over 125)")
                self.log(f"DEFECT accept-long-control: taking a {name} frame of {length} octets")
                if length > self.opts.max_size:
                    self.fail(1009, f"{name} frame of {length} octets is too big")
            if not fin:
                if not self.opts.accept_fragmented_control:
                    self.fail(1002, f"fragmented {name} frame (FIN=0)")
        else:
            so_far = self.msg_size if opcode == CONT else 0
            if length > self.opts.max_size - so_far:
                self.fail(1009, f"message over {self.opts.max_size} octets")
        key = await self.reader.readexactly(4) if masked else None
        payload = await self.reader.readexactly(length)
        if key is not None:
            payload = xor_mask(payload, key)
        return fin, opcode, payload

    async def on_frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode == CONT:
            if self.ctl_op is not None:  # only with --accept-fragmented-control
                self.ctl_parts.append(payload)
                if sum(map(len, self.ctl_parts)) > self.opts.max_size:
                    self.fail(1009, "fragmented control frame too big")
                if fin:
                    op, data = self.ctl_op, b"".join(self.ctl_parts)
                    self.ctl_op, self.ctl_parts = None, []
                    self.log(f"DEFECT accept-fragmented-control: reassembled a {OPNAMES[op]} of {len(data)} octets")
                    await self.on_control(op, data)
                return
            if self.msg_op is None:
                self.fail(1002, "continuation frame without a message started")
            self.add_fragment(payload)
            if fin:
                self.deliver()
            return
        if opcode in (TEXT, BINARY):
            if self.msg_op is not None:
                self.fail(1002, f"new {OPNAMES[opcode]} message while a fragmented one is unfinished")
            self.msg_op, self.msg_parts, self.msg_size = opcode, [], 0
            self.msg_utf8 = codecs.getincrementaldecoder("utf-8")() if opcode == TEXT else None
            self.add_fragment(payload)
            if fin:
                self.deliver()
            else:
                self.log(f"fragmented {OPNAMES[opcode]} message started")
            return
        # control frames
        if self.msg_op is not None and self.opts.fail_on_interleaved:
            self.log(f"DEFECT fail-on-interleaved: a {OPNAMES[opcode]} arrived between fragments of a message")
            self.fail(1002, f"{OPNAMES[opcode]} frame between fragments of a message")
        if not fin:  # only reached with --accept-fragmented-control
            self.log(f"DEFECT accept-fragmented-control: {OPNAMES[opcode]} with FIN=0, waiting for continuations")
            self.ctl_op, self.ctl_parts = opcode, [payload]
            return
        await self.on_control(opcode, payload)

    def add_fragment(self, payload: bytes) -> None:
        self.msg_parts.append(payload)
        self.msg_size += len(payload)
        if self.msg_utf8 is not None:
            try:
                self.msg_utf8.decode(payload, final=False)
            except UnicodeDecodeError:
                self.fail(1007, "text message is not valid UTF-8")

    def deliver(self) -> None:
        op, data, parts = self.msg_op, b"".join(self.msg_parts), len(self.msg_parts)
        if self.msg_utf8 is not None:
            try:
                self.msg_utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self.fail(1007, "text message is not valid UTF-8")
        self.msg_op, self.msg_parts, self.msg_size, self.msg_utf8 = None, [], 0, None
        self.log(f"{OPNAMES[op]} message of {len(data)} octets in {parts} frame(s) {show(data)}: echoed")
        self.send(op, data)
        if self.opts.reserved_opcode:
            self.send(0x3, b"reserved")  # a data opcode no extension defines

    async def on_control(self, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            self.on_ping(payload)
        elif opcode == PONG:
            self.on_pong(payload)
        else:
            self.on_close(payload)

    def on_ping(self, payload: bytes) -> None:
        mode = self.opts.pong_mode
        if mode == "normal":
            self.send(PONG, payload)
            self.log(f"ping received {show(payload)} ({len(payload)} octets): pong sent")
        elif mode == "none":
            self.log(f"ping received {show(payload)}: DEFECT pong none, no pong")
        elif mode == "altered":
            # Other data, but never over 125 octets: the defect is the content, not a malformed frame.
            self.send(PONG, (b"!" + payload[::-1])[:125])
            self.log(f"ping received {show(payload)}: DEFECT pong altered, pong sent with other data")
        else:
            self.log(f"ping received {show(payload)}: DEFECT pong late, pong in {self.opts.pong_delay:g} s")
            self.spawn(self.late_pong(payload))

    async def late_pong(self, payload: bytes) -> None:
        await asyncio.sleep(self.opts.pong_delay)
        if self.send(PONG, payload):
            self.log(f"DEFECT pong late: pong sent {show(payload)}")
            await self.drain()

    def on_pong(self, payload: bytes) -> None:
        if payload not in self.outstanding:
            self.log(f"pong received {show(payload)}: unsolicited, ignored")
            return
        if self.opts.ignore_pongs:
            self.log(f"pong received {show(payload)}: DEFECT ignore-pongs, not counted")
            return
        sent_at = self.outstanding[payload][0]
        # A Pong answers its Ping and every earlier one (RFC 6455 §5.5.3 lets a peer answer only the latest).
        for data in list(self.outstanding):
            self.outstanding.pop(data)[1].set()
            if data == payload:
                break
        rtt = asyncio.get_running_loop().time() - sent_at
        self.log(f"pong received {show(payload)} after {rtt * 1000:.0f} ms")

    def on_close(self, payload: bytes) -> None:
        self.close_received = True
        if len(payload) == 1:
            self.fail(1002, "close frame with a 1-octet payload")
        code = struct.unpack("!H", payload[:2])[0] if payload else None
        if code is not None and code not in VALID_CLOSE_CODES and not 3000 <= code <= 4999:
            self.fail(1002, f"close frame with invalid status code {code}")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            self.fail(1007, "close reason is not valid UTF-8")
        self.log(f"close received ({code if code is not None else 'no status code'}"
                 f"{' ' + repr(reason) if reason else ''})")
        self.send_close(code)
        raise Finish

    # ---- keepalive

    async def keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.opts.ping_interval
        start = loop.time()
        count = 0
        while not self.close_sent:
            count += 1
            await asyncio.sleep(max(0.0, start + count * interval - loop.time()))
            payload = f"keepalive {count}".encode()
            event = asyncio.Event()
            self.outstanding[payload] = (loop.time(), event)
            if not self.send(PING, payload, rsv=0b100 if self.opts.ping_rsv else 0):
                return
            self.log(f"ping sent {payload.decode()!r}")
            self.spawn(self.await_pong(payload, event))
            await self.drain()

    async def await_pong(self, payload: bytes, event: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(event.wait(), self.opts.ping_timeout)
            return
        except TimeoutError:
            pass
        self.outstanding.pop(payload, None)
        if self.opts.never_close:
            self.log(f"no pong for {payload.decode()!r} within {self.opts.ping_timeout:g} s: "
                     "DEFECT never-close, keeping the connection")
            return
        self.log(f"no pong for {payload.decode()!r} within {self.opts.ping_timeout:g} s: closing")
        self.stop_from_helper(1011, "keepalive timeout")


# ---- server


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def server_handshake(reader, writer, tag: str) -> bool:
    def refuse(status: str, why: str, extra: str = "") -> bool:
        log(f"[{tag}] handshake refused ({status}): {why}")
        writer.write(f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n{extra}\r\n".encode())
        return False

    raw = await read_head(reader)
    try:
        request_line, fields = parse_head(raw)
    except ValueError as err:
        return refuse("400 Bad Request", str(err))
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/1."):
        return refuse("400 Bad Request", f"request line {request_line!r}")
    if parts[2] == "HTTP/1.0":
        return refuse("400 Bad Request", "HTTP/1.0 request")
    if "host" not in fields:
        return refuse("400 Bad Request", "no Host field")
    if "websocket" not in tokens(fields.get("upgrade", "")):
        return refuse("400 Bad Request", f"Upgrade is {fields.get('upgrade')!r}")
    if "upgrade" not in tokens(fields.get("connection", "")):
        return refuse("400 Bad Request", f"Connection is {fields.get('connection')!r}")
    if fields.get("sec-websocket-version") != "13":
        return refuse("426 Upgrade Required", f"version {fields.get('sec-websocket-version')!r}",
                      "Sec-WebSocket-Version: 13\r\n")
    key = fields.get("sec-websocket-key", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except ValueError:
        return refuse("400 Bad Request", f"Sec-WebSocket-Key {key!r}")
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
    )
    log(f"[{tag}] handshake done (path {parts[1]})")
    return True


async def hostile(reader, writer, mode: str, tag: str) -> None:
    def say(message: str) -> None:
        log(f"[{tag}] {message}")

    if mode == "no-handshake":
        await read_head(reader)
        say("DEFECT hostile no-handshake: request read, never answering")
    elif not await server_handshake(reader, writer, tag):
        return
    sent = 0

    async def sink() -> None:  # read and drop whatever the peer sends, until it closes
        while await reader.read(65536):
            pass

    async def pump() -> None:
        nonlocal sent

        async def put(data: bytes) -> None:
            nonlocal sent
            writer.write(data)
            sent += len(data)
            await writer.drain()

        if mode == "garbage":
            # 0x7F 0x05: FIN=0, RSV1-3 set, opcode 0xF (reserved), unmasked, 5 octets: not a frame any endpoint
            # may accept; what follows is random.
            say("DEFECT hostile garbage: 4 KiB of random octets, then 1 KiB every 0.2 s")
            await put(b"\x7f\x05" + os.urandom(4094))
            while True:
                await asyncio.sleep(0.2)
                await put(os.urandom(1024))
        elif mode == "huge-frame":
            say("DEFECT hostile huge-frame: binary frame declaring 2**63-1 octets, 1 KiB every 0.1 s")
            await put(bytes([0x82, 127]) + struct.pack("!Q", 2**63 - 1))
            while True:
                await put(os.urandom(1024))
                await asyncio.sleep(0.1)
        elif mode == "endless-fragments":
            say("DEFECT hostile endless-fragments: text with FIN=0, then 1 KiB continuations every 0.05 s")
            await put(encode(TEXT, b"a" * 1024, fin=False))
            while True:
                await asyncio.sleep(0.05)
                await put(encode(CONT, b"a" * 1024, fin=False))
        elif mode == "flood":
            # Valid frames, as fast as TCP takes them, while nothing the peer sends is ever read.
            # About 3 MB/s: a flood for the tester's reader, bounded so a test of it cannot fill a disk.
            say("DEFECT hostile flood: a Ping and a 16 KiB text message every 5 ms; never reads")
            ping, text = encode(PING, b"f" * 125), encode(TEXT, b"flood " * 2730)
            while True:
                await put(ping + text)
                await asyncio.sleep(0.005)
        else:
            await asyncio.Event().wait()

    # A flooding peer stops reading too: nothing drains what the tester writes.
    tasks = [asyncio.ensure_future(pump())] + ([] if mode == "flood" else [asyncio.ensure_future(sink())])
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        say(f"peer went away after {sent} hostile octets")
        writer.transport.abort()


async def run_server(args: argparse.Namespace, opts: Options) -> None:
    counter = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter
        counter += 1
        peer = writer.get_extra_info("peername")
        tag = f"conn {counter} {peer[0]}:{peer[1]}" if peer else f"conn {counter}"
        log(f"[{tag}] connection accepted")
        try:
            if args.hostile:
                await hostile(reader, writer, args.hostile, tag)
                return
            if await server_handshake(reader, writer, tag):
                await Connection(reader, writer, "server", opts, tag).run()
                return
            await writer.drain()
            writer.close()
        except asyncio.IncompleteReadError:
            log(f"[{tag}] peer closed TCP before the handshake was complete")
            writer.transport.abort()
        except asyncio.LimitOverrunError:
            log(f"[{tag}] handshake request too long")
            writer.transport.abort()
        except (ConnectionError, OSError) as err:
            log(f"[{tag}] connection lost: {err!r}")
            writer.transport.abort()
        except Exception as err:  # a bug: say so, drop this connection, keep serving
            log(f"[{tag}] internal error {err!r}")
            writer.transport.abort()

    server = await asyncio.start_server(handle, "0.0.0.0", args.port, limit=16 * 1024)
    log(f"wsbroken server listening on {args.port}; {opts.describe(args)}")
    async with server:
        await server.serve_forever()


# ---- client


async def client_once(host: str, port: int, args: argparse.Namespace, opts: Options, tag: str) -> bool | None:
    """One connection; None if the handshake failed, else whether it ended with a Close from the server."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=16 * 1024), 10)
    log(f"[{tag}] TCP connected to {host}:{port}")
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {args.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    try:
        status, fields = parse_head(await asyncio.wait_for(read_head(reader), 10))
        problem = None
        if status.split(" ")[1:2] != ["101"]:
            problem = f"status line {status!r}"
        elif "websocket" not in tokens(fields.get("upgrade", "")):
            problem = f"Upgrade is {fields.get('upgrade')!r}"
        elif "upgrade" not in tokens(fields.get("connection", "")):
            problem = f"Connection is {fields.get('connection')!r}"
        elif fields.get("sec-websocket-accept") != accept_key(key):
            problem = f"Sec-WebSocket-Accept is {fields.get('sec-websocket-accept')!r}"
        elif "sec-websocket-extensions" in fields or "sec-websocket-protocol" in fields:
            problem = "the server chose an extension or subprotocol nobody asked for"
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
        problem = f"no usable response ({err!r})"
    if problem:
        log(f"[{tag}] handshake failed: {problem}")
        writer.transport.abort()
        return None
    log(f"[{tag}] handshake done")
    return await Connection(reader, writer, "client", opts, tag).run()


async def run_client(args: argparse.Namespace, opts: Options) -> int:
    host, _, port = args.connect.rpartition(":")
    host = host.strip("[]")
    log(f"wsbroken client for {host}:{port}{args.path}; {opts.describe(args)}; "
        f"{'reconnects' if args.reconnect else 'exits when the connection ends'}")
    backoff, attempt = 0.5, 0
    while True:
        attempt += 1
        tag = f"client {attempt}"
        try:
            result = await client_once(host, int(port), args, opts, tag)
        except (TimeoutError, OSError) as err:
            log(f"[{tag}] could not connect: {err!r}")
            result = None
        if result is not None:
            backoff = 0.5
        if not args.reconnect:
            log("connection over; not reconnecting")
            return 0 if result else 1
        log(f"reconnecting in {backoff:g} s")
        await asyncio.sleep(backoff)
        if result is None:
            backoff = min(backoff * 2, 4.0)


# ---- command line


def pong_mode(text: str) -> tuple[str, float]:
    if text in ("normal", "altered", "none"):
        return text, 0.0
    if text.startswith("late:"):
        try:
            delay = float(text[5:])
        except ValueError:
            delay = -1.0
        if delay >= 0:
            return "late", delay
    raise argparse.ArgumentTypeError("use normal, altered, none or late:SECONDS")


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a number of seconds above 0")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", nargs="?", type=int, help="listen on this port (server)")
    parser.add_argument("--connect", metavar="HOST:PORT", help="dial this endpoint (client)")
    parser.add_argument("--path", default="/", help="client: request path (default /)")
    parser.add_argument("--ping-interval", type=positive, metavar="S", help="send a keepalive Ping every S s")
    parser.add_argument("--ping-timeout", type=positive, metavar="S",
                        help="close (1011) when a keepalive Ping has no Pong within S s (default 20)")
    parser.add_argument("--max-size", type=int, default=1 << 20, help="largest message in octets (1 MiB)")
    parser.add_argument("--reconnect", action="store_true", help="client: reconnect with backoff")
    parser.add_argument("--no-reconnect", dest="reconnect", action="store_false", help="client: exit (default)")
    defects = parser.add_argument_group("planted defects")
    defects.add_argument("--pong", type=pong_mode, default=("normal", 0.0), metavar="altered|none|late:S")
    defects.add_argument("--accept-long-control", action="store_true")
    defects.add_argument("--accept-fragmented-control", action="store_true")
    defects.add_argument("--fail-on-interleaved", action="store_true")
    defects.add_argument("--never-close", action="store_true")
    defects.add_argument("--fail-without-close", action="store_true",
                         help="on a protocol error close TCP with no Close frame first")
    defects.add_argument("--fixed-interval", type=positive, metavar="S")
    defects.add_argument("--ignore-pongs", action="store_true")
    defects.add_argument("--mask-wrong", action="store_true", help="server masks its frames, client does not")
    defects.add_argument("--ping-rsv", action="store_true", help="keepalive Pings with RSV1 set")
    defects.add_argument("--reserved-opcode", action="store_true", help="after each echo, a frame with opcode 0x3")
    defects.add_argument("--long-length", action="store_true", help="every length in the 64-bit form")
    defects.add_argument("--close-code", type=int, metavar="CODE", help="put CODE in every Close it sends")
    defects.add_argument("--hostile", choices=["garbage", "huge-frame", "endless-fragments", "no-handshake", "flood"])
    args = parser.parse_args()
    if (args.port is None) == (args.connect is None):
        parser.error("give a PORT to listen on or --connect HOST:PORT, not both")
    if args.connect and not args.connect.rpartition(":")[2].isdigit():
        parser.error("--connect needs HOST:PORT")
    if args.hostile and args.connect:
        parser.error("--hostile is for servers")
    if args.ping_timeout is not None and args.ping_interval is None:
        parser.error("--ping-timeout needs --ping-interval")
    opts = Options(args)
    try:
        if args.connect:
            return asyncio.run(run_client(args, opts))
        asyncio.run(run_server(args, opts))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
