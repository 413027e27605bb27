"""aiocoap as a CoAP peer: a server with one resource, /hello (GET returns "hello"), or a client that sends one
Confirmable GET. aiocoap's own message layer does the rest: it answers pings, duplicates and malformed messages,
and it retransmits an unacknowledged request and gives up on it by its own transmission parameters.

    coappeer.py PORT                 serve on PORT
    coappeer.py PORT --tls CERT KEY  the same, and CoAP over TLS (coaps+tcp) on PORT + 1 with that certificate
    coappeer.py --get HOST PORT      GET coap://HOST:PORT/aliveness once; print the response or the failure
"""
import asyncio
import ssl
import sys

import aiocoap
import aiocoap.error
import aiocoap.resource as resource


class Hello(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(payload=b"hello")


async def serve(port, tls=None):
    site = resource.Site()
    site.add_resource(["hello"], Hello())
    context = None
    if tls:  # aiocoap's TLS server transport takes a server SSLContext (its _ssl_context argument) and binds PORT + 1
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        context.set_alpn_protocols(["coap"])
    try:  # the IPv6 wildcard (which takes IPv4 too) where the namespace has IPv6, else IPv4's
        await aiocoap.Context.create_server_context(site, bind=("::", port), _ssl_context=context)
    except aiocoap.error.ResolutionError:
        await aiocoap.Context.create_server_context(site, bind=("0.0.0.0", port), _ssl_context=context)
    print(f"listening on port {port}", flush=True)
    await asyncio.get_running_loop().create_future()


async def get(host, port):
    context = await aiocoap.Context.create_client_context()
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = aiocoap.Message(code=aiocoap.GET, uri=f"coap://{authority}/aliveness")
    print(f"GET coap://{authority}/aliveness", flush=True)
    try:
        response = await context.request(request).response
    except Exception as err:  # noqa: BLE001 - the failure is what the log must show
        print(f"request failed: {type(err).__name__}: {err}", flush=True)
    else:
        print(f"response: {response.code} {response.payload!r}", flush=True)
    await context.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "--get":
        asyncio.run(get(sys.argv[2], int(sys.argv[3])))
    else:
        asyncio.run(serve(int(sys.argv[1]), sys.argv[3:5] if sys.argv[2:3] == ["--tls"] else None))
