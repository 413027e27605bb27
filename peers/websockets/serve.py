"""An echo server on the `websockets` library, unmodified: its own ping/pong and keepalive handling.

Usage: serve.py PORT [PING_INTERVAL PING_TIMEOUT]; without the two numbers the library's keepalive
is switched off (ping_interval=None), so the plain run shows no pings of its own.
"""
import asyncio
import sys

import websockets


async def echo(connection, path=None):
    async for message in connection:
        await connection.send(message)


async def main():
    port = int(sys.argv[1])
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else None
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else None
    async with websockets.serve(echo, "0.0.0.0", port, ping_interval=interval, ping_timeout=timeout):
        print(f"websockets {websockets.__version__} listening on {port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
