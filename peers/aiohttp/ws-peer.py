"""aiohttp's WebSocket support, unmodified: an echo server or an echo client.

Usage:
  ws-peer.py server PORT [HEARTBEAT]
  ws-peer.py client HOST PORT [HEARTBEAT]

HEARTBEAT (seconds, fractional allowed) is aiohttp's only keepalive setting: a Ping when the connection
has been quiet for HEARTBEAT seconds, and the connection is dropped when no Pong arrives within
HEARTBEAT/2. Without it there is no heartbeat. The library answers Pings itself (autoping). Text and
binary messages are echoed. aiohttp has no reconnect: the client exits when its connection ends.
Every connection's opening and end (close code, exception) is logged to stdout with a UTC timestamp.
"""
import asyncio
import sys
import time

import aiohttp
from aiohttp import web


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} {message}", flush=True)


async def echo(ws, name: str) -> None:
    """Echo until the connection ends, then log how it ended."""
    while True:
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
        elif msg.type == aiohttp.WSMsgType.CLOSE:
            log(f"{name}: Close received, code {msg.data} reason {msg.extra!r}")
        elif msg.type == aiohttp.WSMsgType.ERROR:
            log(f"{name}: error {msg.data!r}")
        elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            break
    log(f"{name} closed: close_code={ws.close_code} exception={ws.exception()!r}")


async def server(port: int, heartbeat: float | None) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=heartbeat)
        await ws.prepare(request)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        name = f"connection from {peer[0]}:{peer[1]}" if peer else "connection"
        log(f"{name} open, path {request.path}")
        await echo(ws, name)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    log(f"aiohttp {aiohttp.__version__} listening on {port}, heartbeat={heartbeat}")
    await asyncio.Future()


async def client(host: str, port: int, heartbeat: float | None) -> None:
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    log(f"aiohttp {aiohttp.__version__} client for {url} (WebSocket), heartbeat={heartbeat}")
    async with aiohttp.ClientSession() as session:
        log(f"connecting to {url}")
        try:
            ws = await session.ws_connect(url, heartbeat=heartbeat)
        except (aiohttp.ClientError, OSError) as err:
            log(f"connect failed: {type(err).__name__}: {err}; aiohttp does not retry, exiting")
            sys.exit(1)
        log(f"connection open to {url}")
        await echo(ws, "connection")
    log("aiohttp has no reconnect: exiting")


def main() -> None:
    role = sys.argv[1]
    if role == "server":
        port = int(sys.argv[2])
        heartbeat = float(sys.argv[3]) if len(sys.argv) > 3 else None
        asyncio.run(server(port, heartbeat))
    elif role == "client":
        host, port = sys.argv[2], int(sys.argv[3])
        heartbeat = float(sys.argv[4]) if len(sys.argv) > 4 else None
        asyncio.run(client(host, port, heartbeat))
    else:
        sys.exit(f"unknown role {role!r}: use server or client")


main()
