#!/usr/bin/env node
// Benchmark server: the app of server_app.py on Node's socket.io 4.8, for reference.
//
//   node server_node.js --port P [--scenario NAME]
//
// Same events and the same options as server_app.py: `echo` acks its arguments, `bin_echo`
// acks the bytes back, `start_broadcast` emits `tick` `count` times to every client of '/'
// and then `done`. A broadcast is written out before the next is produced (setImmediate
// between broadcasts, as server_app.py yields with sleep(0)), unless the client asks for a
// burst, which emits them all back to back.
//
// When listening, one JSON line is printed on stdout:
//   {"ready": true, "port": P, "impl": "node", "serving": ..., "pid": ...}
'use strict';

const http = require('http');
const { Server } = require('socket.io');
const { version } = require('socket.io/package.json');

const TICK_TEXT = 'tick payload: a short broadcast message';

function parseArgs(argv) {
  const opts = { port: 0, scenario: '' };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in opts)) throw new Error(`unknown option ${argv[i]}`);
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

const yieldToIo = () => new Promise((resolve) => setImmediate(resolve));

const opts = parseArgs(process.argv);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  cors: { origin: '*' },
  pingInterval: 25000,
  maxHttpBufferSize: 10000000,
});

io.on('connection', (socket) => {
  socket.on('echo', (...args) => {
    const ack = args.pop();
    if (typeof ack === 'function') ack(...args);
  });
  socket.on('bin_echo', (data, ack) => {
    if (typeof ack === 'function') ack(data);
  });
  socket.on('start_broadcast', async (options) => {
    const count = Number((options && options.count) || 0);
    const burst = Boolean(options && options.burst);
    for (let i = 0; i < count; i++) {
      io.emit('tick', { i, text: TICK_TEXT });
      if (!burst) await yieldToIo();
    }
    io.emit('done', count);
  });
});

process.on('SIGTERM', () => process.exit(0));
httpServer.listen(opts.port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({
    ready: true, port: httpServer.address().port, impl: 'node',
    serving: `node ${process.version} socket.io ${version}`, scenario: opts.scenario,
    pid: process.pid,
  }) + '\n');
});
