"""The echo backend behind nginx: the `websockets` library, unmodified, on 127.0.0.1 only.

Usage: backend.py PORT [PING_INTERVAL PING_TIMEOUT]; without the two numbers the library's keepalive is
switched off (ping_interval=None). The numbers are seconds and may be fractional. Every connection's
opening and end (with the close codes) is logged to stdout with a UTC timestamp.
"""
import asyncio
import sys
import time

import websockets


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} backend: {message}", flush=True)


async def echo(connection, path=None):
    address = connection.remote_address
    name = f"connection from {address[0]}:{address[1]}" if address else "connection"
    log(f"{name} open, path {connection.path}, X-Forwarded-For {connection.request_headers.get('X-Forwarded-For')}")
    try:
        async for message in connection:
            await connection.send(message)
    except websockets.ConnectionClosed:
        pass
    await connection.wait_closed()
    received = getattr(connection, "close_rcvd", None)
    sent = getattr(connection, "close_sent", None)
    log(
        f"{name} closed: close_code={connection.close_code} close_reason={connection.close_reason!r} "
        f"(received Close: {received}; sent Close: {sent})"
    )


async def main():
    port = int(sys.argv[1])
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else None
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else None
    async with websockets.serve(echo, "127.0.0.1", port, ping_interval=interval, ping_timeout=timeout):
        log(f"websockets {websockets.__version__} listening on 127.0.0.1:{port}, ping_interval={interval} ping_timeout={timeout}")
        await asyncio.Future()


asyncio.run(main())
