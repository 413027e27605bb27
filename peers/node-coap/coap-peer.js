// node-coap as a CoAP peer over UDP: a server with one resource, /hello, or a client that sends one
// Confirmable GET. The library's own message layer answers pings and retransmits the request.
//
//   coap-peer.js PORT               serve on PORT
//   coap-peer.js --get HOST PORT    GET coap://HOST:PORT/aliveness once; print the response or the failure
'use strict';
const coap = require('coap');

const args = process.argv.slice(2);
if (args[0] === '--get') {
  const [host, port] = [args[1], Number(args[2])];
  console.log(`GET coap://${host}:${port}/aliveness`);
  const request = coap.request({ hostname: host, port, pathname: '/aliveness', confirmable: true });
  request.on('response', (response) => {
    console.log(`response: ${response.code} ${response.payload.length} octets`);
    process.exit(0);
  });
  request.on('timeout', (err) => { console.log(`request timed out: ${err.message}`); process.exit(0); });
  request.on('error', (err) => { console.log(`request failed: ${err.message}`); process.exit(0); });
  request.end();
} else {
  const port = Number(args[0]);
  const server = coap.createServer({ type: 'udp6' }, (request, response) => {
    if (request.url === '/hello' && request.method === 'GET') {
      response.end('hello');
    } else {
      response.code = '4.04';
      response.end();
    }
  });
  server.listen(port, '::', () => console.log(`listening on port ${port}`));
}
