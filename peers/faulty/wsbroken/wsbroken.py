"""A small WebSocket echo server with switchable Ping defects, for the suite's faulty-peer tests.

  --pong altered   answer a Ping with a Pong whose data differs (breaks RFC 6455 §5.5.3)
  --pong none      never answer a Ping (breaks §5.5.2)
Everything else (handshake, echo of data frames, Close) behaves.
"""
import argparse
import asyncio
import base64
import hashlib
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload):
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 65536:
        head += bytes([126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([127]) + struct.pack("!Q", len(payload))
    return head + payload


async def read_frame(reader):
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    if length > 1 << 20:
        raise ValueError("frame too large")
    key = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(length)
    return b0 & 0x0F, bytes(c ^ key[i % 4] for i, c in enumerate(data))


async def serve(reader, writer, pong):
    head = await reader.readuntil(b"\r\n\r\n")
    headers = dict(
        line.split(":", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ":" in line
    )
    key = {k.strip().lower(): v.strip() for k, v in headers.items()}["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
    )
    while True:
        opcode, data = await read_frame(reader)
        if opcode == 9:
            if pong == "altered":
                writer.write(frame(10, data[::-1] + b"!"))
            # pong == "none": the defect is to say nothing at all
        elif opcode == 8:
            writer.write(frame(8, data[:2]))
            await writer.drain()
            writer.close()
            return
        elif opcode in (1, 2):
            writer.write(frame(opcode, data))
        await writer.drain()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--pong", choices=["altered", "none"], required=True)
    args = parser.parse_args()

    async def handle(reader, writer):
        try:
            await serve(reader, writer, args.pong)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, KeyError):
            writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", args.port)
    print(f"wsbroken listening on {args.port} (pong {args.pong})", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
