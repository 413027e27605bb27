"""An echo server on the `websockets` library, unmodified: its own ping/pong and keepalive handling.

Usage: serve.py PORT [PING_INTERVAL PING_TIMEOUT]; without the two numbers the library's keepalive
is switched off (ping_interval=None), so the plain run shows no pings of its own. The numbers are
seconds and may be fractional. Every connection's opening and end (with the close codes) is logged
to stdout with a UTC timestamp.
"""
import asyncio
import sys
import time

import websockets


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} {message}", flush=True)


def peer_name(connection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"


def close_summary(connection) -> str:
    """What the library knows about the end: the Close frames received and sent (None: no frame)."""
    received = getattr(connection, "close_rcvd", None)
    sent = getattr(connection, "close_sent", None)
    return (
        f"close_code={connection.close_code} close_reason={connection.close_reason!r} "
        f"(received Close: {received}; sent Close: {sent})"
    )


async def echo(connection, path=None):
    name = peer_name(connection)
    log(f"connection from {name} open, path {connection.path}")
    try:
        async for message in connection:
            await connection.send(message)
    except websockets.ConnectionClosed:
        pass
    await connection.wait_closed()
    log(f"connection from {name} closed: {close_summary(connection)}")


async def main():
    port = int(sys.argv[1])
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else None
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else None
    # host None: every address of every family the container has (IPv4, and IPv6 on a dual-stack network).
    async with websockets.serve(echo, None, port, ping_interval=interval, ping_timeout=timeout):
        log(f"websockets {websockets.__version__} listening on {port}, ping_interval={interval} ping_timeout={timeout}")
        await asyncio.Future()


asyncio.run(main())
