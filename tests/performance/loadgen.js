#!/usr/bin/env node
// Load generator for tests/performance/bench.py: the same client load for greensio and
// python-socketio. One JSON object per stdout line.
//
// Handshake, so the harness can sample server CPU exactly around the measured phase:
//   1. connect + warm up, then print {"phase":"ready", ...}
//   2. wait for a line on stdin ("go")
//   3. run the measured phase, then print {"phase":"end", ...results}
//   4. idle mode only: hold the connections until a second stdin line ("exit") or SIGTERM.
// Any failure prints {"phase":"error","error":...} and exits 1. A hard --timeout bounds it all.
//
// Modes:
//   rtt        N clients, each emit('echo') with ack in a closed loop for D seconds
//              (--transport websocket | polling; polling uses a keep-alive agent, like browsers;
//              polling-raw: raw_polling.js instead of socket.io-client, a lighter client)
//   broadcast  N websocket clients; one triggers start_broadcast {count: M}; ends when every
//              client has received M ticks (--burst 1: the server queues all M at once)
//   binary     1 client, emit('bin_echo', <64 KiB Buffer>) with ack in a closed loop for D s
//   idle       open N websocket connections, report when all are connected, hold them
'use strict';

const http = require('http');
const readline = require('readline');
const { io } = require('socket.io-client');
const { RawPollingSocket } = require('./raw_polling');

function parseArgs(argv) {
  const opts = {
    mode: 'rtt', url: 'http://127.0.0.1:5000', clients: 50, duration: 10, warmup: 2,
    transport: 'websocket', count: 200, warmupCount: 20, size: 65536, timeout: 300,
    connectConcurrency: 50, burst: 0,
  };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in opts)) throw new Error(`unknown option ${argv[i]}`);
    const value = argv[i + 1];
    opts[key] = typeof opts[key] === 'number' ? Number(value) : value;
  }
  return opts;
}

const opts = parseArgs(process.argv);
const sockets = [];

function emitLine(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(err) {
  emitLine({ phase: 'error', error: String(err && err.stack ? err.stack : err) });
  for (const s of sockets) s.disconnect();
  process.exit(1);
}

const hardTimer = setTimeout(() => fail(`loadgen timeout after ${opts.timeout}s`),
  opts.timeout * 1000);
hardTimer.unref();
process.on('SIGTERM', () => process.exit(0));
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

const stdinLines = [];
const stdinWaiters = [];
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const waiter = stdinWaiters.shift();
  if (waiter) waiter(line); else stdinLines.push(line);
}).on('close', () => {
  // The harness went away: nothing more will come.
  while (stdinWaiters.length) stdinWaiters.shift()(null);
});

function nextStdinLine() {
  if (stdinLines.length) return Promise.resolve(stdinLines.shift());
  return new Promise((resolve) => stdinWaiters.push(resolve));
}

const now = () => Number(process.hrtime.bigint()) / 1e9;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function clientOptions() {
  const o = { forceNew: true, reconnection: false, timeout: 20000 };
  if (opts.transport === 'polling') {
    o.transports = ['polling'];
    o.upgrade = false;
    // Browsers keep polling connections alive; so does this agent.
    o.agent = keepAliveAgent;
  } else {
    o.transports = ['websocket'];
  }
  return o;
}
const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function connectOne() {
  if (opts.transport === 'polling-raw') {
    const s = new RawPollingSocket(opts.url, fail);
    sockets.push(s);
    return s.connect();
  }
  return new Promise((resolve, reject) => {
    const s = io(opts.url, clientOptions());
    sockets.push(s);
    s.once('connect', () => resolve(s));
    s.once('connect_error', (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
}

// Connect n clients with at most connectConcurrency handshakes in flight (server backlog).
async function connectMany(n) {
  const out = [];
  let next = 0;
  async function worker() {
    while (next < n) {
      next += 1;
      out.push(await connectOne());
    }
  }
  const workers = [];
  for (let i = 0; i < Math.min(n, opts.connectConcurrency); i++) workers.push(worker());
  await Promise.all(workers);
  return out;
}

// Closed loop: each client keeps exactly one emit-with-ack in flight until `seconds` pass.
// Acks that arrive after the deadline still count (their server work was spent); elapsed
// runs until the last ack.
function closedLoop(clients, seconds, makeArgs, checkAck) {
  return new Promise((resolve, reject) => {
    const start = now();
    const deadline = start + seconds;
    let completed = 0;
    let bytes = 0;
    let active = clients.length;
    for (const s of clients) {
      const step = () => {
        if (now() >= deadline) {
          active -= 1;
          if (active === 0) resolve({ count: completed, bytes, elapsed: now() - start });
          return;
        }
        const args = makeArgs(completed);
        s.emit(...args, (...ackArgs) => {
          try {
            bytes += checkAck(ackArgs);
          } catch (err) {
            reject(err);
            return;
          }
          completed += 1;
          step();
        });
      };
      step();
    }
  });
}

async function handshake(readyInfo) {
  emitLine(Object.assign({ phase: 'ready' }, readyInfo));
  const line = await nextStdinLine();
  if (line === null) process.exit(0);
}

async function modeRtt() {
  const clients = await connectMany(opts.clients);
  const payload = (n) => ['echo', { n, text: 'hello from the load generator' }];
  const check = (ack) => {
    if (!ack.length || typeof ack[0] !== 'object') throw new Error('bad echo ack');
    return 0;
  };
  const warm = await closedLoop(clients, opts.warmup, payload, check);
  await handshake({ clients: clients.length, warmup_count: warm.count });
  const r = await closedLoop(clients, opts.duration, payload, check);
  emitLine({ phase: 'end', mode: 'rtt', transport: opts.transport, clients: clients.length,
    count: r.count, elapsed: r.elapsed });
}

async function modeBinary() {
  const clients = await connectMany(1);
  const buf = Buffer.alloc(opts.size);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 31 + 7) & 0xff;
  const payload = () => ['bin_echo', buf];
  const check = (ack) => {
    const b = ack[0];
    if (!Buffer.isBuffer(b) && !(b instanceof ArrayBuffer)) throw new Error('bin ack not binary');
    if (b.byteLength !== opts.size) throw new Error(`bin ack is ${b.byteLength} bytes`);
    return b.byteLength;
  };
  const warm = await closedLoop(clients, opts.warmup, payload, check);
  await handshake({ clients: 1, warmup_count: warm.count });
  const r = await closedLoop(clients, opts.duration, payload, check);
  emitLine({ phase: 'end', mode: 'binary', clients: 1, size: opts.size, count: r.count,
    bytes: r.bytes, elapsed: r.elapsed });
}

// One start_broadcast round; resolves when every client has `count` ticks and `done`.
function broadcastRound(clients, count) {
  return new Promise((resolve, reject) => {
    let pending = clients.length;
    let delivered = 0;
    const start = now();
    for (const s of clients) {
      let got = 0;
      s.off('tick');
      s.off('done');
      s.on('tick', () => {
        got += 1;
        delivered += 1;
      });
      s.on('done', (n) => {
        if (got !== count || n !== count) {
          reject(new Error(`client got ${got} ticks of ${count} before done`));
          return;
        }
        pending -= 1;
        if (pending === 0) resolve({ delivered, elapsed: now() - start });
      });
    }
    clients[0].emit('start_broadcast', { count, burst: Boolean(opts.burst) });
  });
}

async function modeBroadcast() {
  const clients = await connectMany(opts.clients);
  const warm = await broadcastRound(clients, opts.warmupCount);
  await handshake({ clients: clients.length, warmup_count: warm.delivered });
  const r = await broadcastRound(clients, opts.count);
  emitLine({ phase: 'end', mode: 'broadcast', clients: clients.length, broadcasts: opts.count,
    count: r.delivered, elapsed: r.elapsed });
}

async function modeIdle() {
  // Warm-up: a few connections come and go so lazy imports and first-use allocations are
  // in the server's baseline RSS, not charged to the measured connections.
  const warm = await connectMany(Math.min(20, opts.clients));
  await Promise.all(warm.map((s) => new Promise((resolve) => s.emit('echo', 1, resolve))));
  for (const s of warm) s.disconnect();
  sockets.length = 0;
  await sleep(500);
  await handshake({ clients: opts.clients });
  const start = now();
  const clients = await connectMany(opts.clients);
  emitLine({ phase: 'end', mode: 'idle', clients: clients.length, count: clients.length,
    elapsed: now() - start });
  const line = await nextStdinLine(); // "exit" (or EOF)
  void line;
  for (const s of clients) s.disconnect();
  process.exit(0);
}

const modes = { rtt: modeRtt, binary: modeBinary, broadcast: modeBroadcast, idle: modeIdle };

async function main() {
  const mode = modes[opts.mode];
  if (!mode) throw new Error(`unknown --mode ${opts.mode}`);
  await mode();
  if (opts.mode !== 'idle') {
    for (const s of sockets) s.disconnect();
    process.exit(0);
  }
}

main().catch(fail);
