"""A CoAP server on aiocoap: one resource, /hello (GET returns "hello"); aiocoap's own message layer answers
pings, duplicates and malformed messages.

    coappeer.py PORT
"""
import asyncio
import sys

import aiocoap
import aiocoap.error
import aiocoap.resource as resource


class Hello(resource.Resource):
    async def render_get(self, request):
        return aiocoap.Message(payload=b"hello")


async def main(port):
    site = resource.Site()
    site.add_resource(["hello"], Hello())
    try:  # the IPv6 wildcard (which takes IPv4 too) where the namespace has IPv6, else IPv4's
        await aiocoap.Context.create_server_context(site, bind=("::", port))
    except aiocoap.error.ResolutionError:
        await aiocoap.Context.create_server_context(site, bind=("0.0.0.0", port))
    print(f"listening on port {port}", flush=True)
    await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
