"""Tornado's WebSocket support, unmodified: an echo server or an echo client.

Usage:
  ws-peer.py server PORT [PING_INTERVAL PING_TIMEOUT]
  ws-peer.py client HOST PORT [PING_INTERVAL PING_TIMEOUT]

The two numbers (seconds, fractional allowed) go to the library: the server's Application settings
websocket_ping_interval / websocket_ping_timeout, the client's websocket_connect(ping_interval=,
ping_timeout=). Without them there are no keepalive pings. Tornado answers Pings itself; text and binary
messages are echoed. Tornado has no reconnect: the client exits when its connection ends. Every
connection's opening and end (close code and reason) is logged to stdout with a UTC timestamp.
"""
import asyncio
import logging
import sys
import time

import tornado
import tornado.web
import tornado.websocket


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} {message}", flush=True)


class Echo(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True  # the tester is not a browser; accept any Origin

    def open(self, *args) -> None:
        self.name = f"connection from {self.request.remote_ip}"
        log(f"{self.name} open, path {self.request.path}")

    def on_message(self, message) -> None:
        self.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        log(f"{self.name} closed: close_code={self.close_code} close_reason={self.close_reason!r}")


async def server(port: int, interval: float | None, timeout: float | None) -> None:
    settings = {}
    if interval is not None:
        settings["websocket_ping_interval"] = interval
    if timeout is not None:
        settings["websocket_ping_timeout"] = timeout
    app = tornado.web.Application([(r"/.*", Echo)], **settings)
    app.listen(port, address="0.0.0.0")
    log(f"tornado {tornado.version} listening on {port}, {settings or 'no ping settings'}")
    await asyncio.Future()


async def client(host: str, port: int, interval: float | None, timeout: float | None) -> None:
    url = f"ws://[{host}]:{port}/" if ":" in host else f"ws://{host}:{port}/"
    log(f"tornado {tornado.version} client for {url}, ping_interval={interval} ping_timeout={timeout}")
    log(f"connecting to {url}")
    try:
        conn = await tornado.websocket.websocket_connect(url, ping_interval=interval, ping_timeout=timeout)
    except Exception as err:
        log(f"connect failed: {type(err).__name__}: {err}; tornado does not retry, exiting")
        sys.exit(1)
    log(f"connection open to {url}")
    while True:
        message = await conn.read_message()
        if message is None:
            break
        await conn.write_message(message, binary=isinstance(message, bytes))
    log(f"connection closed: close_code={conn.close_code} close_reason={conn.close_reason!r}")
    log("tornado has no reconnect: exiting")


def main() -> None:
    logging.Formatter.converter = time.gmtime
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, datefmt="%Y-%m-%dT%H:%M:%S",
        format="%(asctime)s.%(msecs)03dZ %(name)s %(levelname)s %(message)s",
    )
    role = sys.argv[1]
    numbers = [float(a) for a in sys.argv[3 if role == "server" else 4:]]
    interval, timeout = (numbers + [None, None])[:2]
    if role == "server":
        asyncio.run(server(int(sys.argv[2]), interval, timeout))
    elif role == "client":
        asyncio.run(client(sys.argv[2], int(sys.argv[3]), interval, timeout))
    else:
        sys.exit(f"unknown role {role!r}: use server or client")


main()
