'use strict';
// The `ws` library, unmodified: an echo server or an echo client.
//
// Usage:
//   node ws-peer.js server PORT [PING_INTERVAL PING_TIMEOUT]
//   node ws-peer.js client HOST PORT [PING_INTERVAL PING_TIMEOUT]
//
// ws answers Pings by itself but sends none of its own: keepalive is left to the application, and the
// ws README shows how (a timer that pings each connection and terminate()s one that has not answered
// the previous ping). This driver does that per connection, with the two numbers (seconds, fractional
// allowed): every PING_INTERVAL it sends a Ping, unless one is still unanswered; a Ping unanswered
// after PING_TIMEOUT gets the connection terminate()d (the socket is destroyed, no Close frame). Any
// Pong answers the outstanding Ping. Without the numbers no Pings are sent. Text and binary messages
// are echoed. ws has no reconnect: the client exits when its connection ends. Every connection's
// opening and end (close code and reason) is logged to stdout with a UTC timestamp.

const WebSocket = require('ws');

function log(message) {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function heartbeat(ws, name, intervalS, timeoutS) {
  let deadline = null; // the timer of the Ping that is still waiting for its Pong
  ws.on('pong', () => {
    if (deadline !== null) {
      clearTimeout(deadline);
      deadline = null;
    }
  });
  const ticker = setInterval(() => {
    if (deadline !== null || ws.readyState !== WebSocket.OPEN) return;
    ws.ping();
    deadline = setTimeout(() => {
      log(`${name}: no Pong within ${timeoutS} s of the last Ping: terminate()`);
      ws.terminate();
    }, timeoutS * 1000);
  }, intervalS * 1000);
  ws.on('close', () => {
    clearInterval(ticker);
    if (deadline !== null) clearTimeout(deadline);
  });
}

function watch(ws, name, knobs) {
  echo(ws);
  if (knobs) heartbeat(ws, name, knobs[0], knobs[1]);
  ws.on('error', (err) => log(`${name}: error ${err.message}`));
}

function knobsFrom(args) {
  if (args.length < 2) return null;
  const [interval, timeout] = args.map(Number);
  if (!(interval > 0) || !(timeout > 0)) throw new Error(`bad ping interval/timeout ${args}`);
  return [interval, timeout];
}

const version = require('ws/package.json').version;
const [role, ...rest] = process.argv.slice(2);
if (role === 'server') {
  const port = Number(rest[0]);
  const knobs = knobsFrom(rest.slice(1));
  const server = new WebSocket.Server({ port, host: '0.0.0.0' });
  server.on('listening', () => log(`ws ${version} (node ${process.version}) listening on ${port}, ` +
    (knobs ? `ping every ${knobs[0]} s, timeout ${knobs[1]} s` : 'no pings')));
  server.on('connection', (ws, req) => {
    const name = `connection from ${req.socket.remoteAddress}:${req.socket.remotePort}`;
    log(`${name} open, path ${req.url}`);
    watch(ws, name, knobs);
    ws.on('close', (code, reason) => log(`${name} closed: code ${code} reason ${JSON.stringify(reason.toString())}`));
  });
  server.on('error', (err) => { log(`server error: ${err.message}`); process.exit(1); });
} else if (role === 'client') {
  const [host, port] = rest;
  const knobs = knobsFrom(rest.slice(2));
  const url = host.includes(':') ? `ws://[${host}]:${port}/` : `ws://${host}:${port}/`;
  log(`ws ${version} (node ${process.version}) client for ${url}, ` +
    (knobs ? `ping every ${knobs[0]} s, timeout ${knobs[1]} s` : 'no pings'));
  log(`connecting to ${url}`);
  const ws = new WebSocket(url);
  ws.on('open', () => log(`connection open to ${url}`));
  watch(ws, 'connection', knobs);
  ws.on('close', (code, reason) => {
    log(`connection closed: code ${code} reason ${JSON.stringify(reason.toString())}`);
    log('ws has no reconnect: exiting');
  });
} else {
  console.error(`unknown role ${role}: use server or client`);
  process.exit(2);
}
