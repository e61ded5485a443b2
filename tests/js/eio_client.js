// Drives the official engine.io-client against a plain Engine.IO server.
// usage: node eio_client.js URL TRANSPORTS(comma-separated) [PATH]
// Sends a text and a binary message, collects what the server sends, then
// closes; prints one JSON line: {open, transport, upgraded, messages, closeReason}.
'use strict';
const { Socket } = require('engine.io-client');

const [url, transports, path] = process.argv.slice(2);
const result = { open: false, transport: null, upgraded: false, messages: [], closeReason: null };
const socket = new Socket(url, { transports: transports.split(','), path: path || '/engine.io' });
const done = (reason) => {
  result.closeReason = result.closeReason || reason;
  process.stdout.write(JSON.stringify(result) + '\n');
  // on long-polling the CLOSE packet is a POST still under way: let it finish
  setTimeout(() => process.exit(0), 300);
};
const timer = setTimeout(() => done('timeout'), 8000);

socket.on('open', () => {
  result.open = true;
  socket.send('hello');
  socket.send(new Uint8Array([1, 2, 3]));
});
socket.on('upgrade', () => { result.upgraded = true; });
socket.on('message', (data) => {
  result.messages.push(typeof data === 'string' ? data : { binary: Array.from(new Uint8Array(data)) });
  if (result.messages.length === 2) {
    const finish = () => { result.transport = socket.transport.name; socket.close(); };
    // with an upgrade offered, wait until it happened so the test sees it; the client still counts
    // itself as upgrading while it emits 'upgrade' (a close() then would wait for a second upgrade),
    // so close on the next turn of the loop
    if (transports.includes('websocket') && transports.includes('polling') && !result.upgraded) {
      socket.once('upgrade', () => setImmediate(finish));
    } else {
      finish();
    }
  }
});
socket.on('close', (reason) => { clearTimeout(timer); done(reason); });
socket.on('error', (err) => { result.closeReason = 'error: ' + err; });
