"""An echo client on the `websockets` library, unmodified: it dials ws://HOST:PORT/ and sends back every
message it receives; the library answers Pings itself.

Usage: connect.py HOST PORT [PING_INTERVAL PING_TIMEOUT]; without the two numbers the library's keepalive
is switched off (ping_interval=None). The numbers are seconds and may be fractional.

Reconnection is the library's own: `async for connection in websockets.connect(...)` dials again
whenever a connection ends, and backs off (random 0-5 s, then 1.92 s growing by x1.618 up to 60 s)
while attempts fail. To log every attempt without touching the library, the event loop is a plain
asyncio loop whose create_connection() (which the library calls for each attempt) logs before and after;
the library's own reconnect messages (logger "websockets.client") are printed too. All lines go to
stdout with a UTC timestamp.
"""
import asyncio
import logging
import sys
import time

import websockets


def log(message: str) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} {message}", flush=True)


class LibraryLog(logging.Handler):
    """The library's INFO messages, one line each (the exception's type and text instead of a traceback)."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            text += f" [{type(err).__name__}: {err}]"
        log(f"websockets: {text}")


class AttemptLoggingLoop(asyncio.SelectorEventLoop):
    """A standard event loop that logs each TCP connect the library asks it for."""

    attempts = 0

    async def create_connection(self, protocol_factory, host=None, port=None, **kwargs):
        self.attempts += 1
        number = self.attempts
        log(f"connect attempt {number} to {host}:{port}")
        try:
            transport, protocol = await super().create_connection(protocol_factory, host, port, **kwargs)
        except OSError as err:
            log(f"connect attempt {number} failed: {err}")
            raise
        log(f"connect attempt {number}: TCP connected from {transport.get_extra_info('sockname')}, opening handshake")
        return transport, protocol


def close_summary(connection) -> str:
    received = getattr(connection, "close_rcvd", None)
    sent = getattr(connection, "close_sent", None)
    return (
        f"close_code={connection.close_code} close_reason={connection.close_reason!r} "
        f"(received Close: {received}; sent Close: {sent})"
    )


async def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else None
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else None
    uri = f"ws://[{host}]:{port}/" if ":" in host else f"ws://{host}:{port}/"
    log(f"websockets {websockets.__version__} client for {uri}, ping_interval={interval} ping_timeout={timeout}")
    async for connection in websockets.connect(uri, ping_interval=interval, ping_timeout=timeout):
        log(f"connection open to {uri} from {connection.local_address}")
        try:
            async for message in connection:
                await connection.send(message)
        except websockets.ConnectionClosed:
            pass
        await connection.wait_closed()
        log(f"connection closed: {close_summary(connection)}; the library's loop dials again")


library_logger = logging.getLogger("websockets.client")
library_logger.setLevel(logging.INFO)
library_logger.addHandler(LibraryLog())
library_logger.propagate = False

with asyncio.Runner(loop_factory=AttemptLoggingLoop) as runner:
    runner.run(main())
