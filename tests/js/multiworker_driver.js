#!/usr/bin/env node
// Many socket.io-client connections against a set of workers of one app
// (tests/mq/multiworker_app.py): the several-worker tests and benchmark.
//
// usage: node multiworker_driver.js --url URL [--mode scenario|rtt] [--option value ...]
// One JSON object per stdout line; a failure of the driver itself prints
// {"phase":"error"} and exits 1.  --timeout bounds the whole run.
//
// --mode scenario (the default; counts default to the full size: 100 clients x 1,000 events):
//   1. connect --clients clients (those not connected after --wait s are given up);
//      each asks `whoami` (the pid of the worker that owns its session); prints
//      {"phase":"connected","workers":{pid:clients}}
//   2. each client emits --events `echo` events with acks, --window in flight,
//      until all are answered or --deadline seconds pass; prints {"phase":"halfway"}
//      once half of all the acks are in
//   3. waits (up to --wait s) until every client is connected again (with
//      --reconnect 1 a dropped client reconnects, otherwise it stays down), asks
//      `whoami` again, prints {"phase":"echoed"} and waits for a line on stdin
//   4. the first client still connected emits --broadcasts `broadcast` events, each
//      after the previous one's ack; the server sends each to every client as `bcast`
//      {source:"client",seq}; meanwhile the other side of stdin publishes --external
//      `bcast` {source:"external",seq} of its own
//   5. waits (up to --wait s) until every client has them all, then --linger ms
//      for late duplicates; prints {"phase":"end","clients":[...per client...],"errors":{...}}
// --mode rtt: --clients clients, each with one `echo` in flight in a closed loop,
//   --warmup s, then --duration s measured; prints {"phase":"end","count","elapsed","p50_ms","p99_ms"}.
//
// --transports polling | websocket | default (polling, then the upgrade to websocket).
// --spread 1 gives each client a source address of its own, 127.0.<i>.1: nginx's
// ip_hash hashes the first three octets of an address, so its upstreams share the clients.
'use strict';

const http = require('http');
const readline = require('readline');
const { io } = require('socket.io-client');

const opts = {
  url: 'http://127.0.0.1:5000', mode: 'scenario', clients: 100, events: 1000, window: 4,
  transports: 'default', broadcasts: 10, external: 10, deadline: 120, wait: 20, linger: 300,
  reconnect: 0, spread: 0, ackTimeout: 10000, connectConcurrency: 20, warmup: 2, duration: 10,
  timeout: 300,
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  if (!(key in opts)) throw new Error(`unknown option ${process.argv[i]}`);
  opts[key] = typeof opts[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const clients = [];
const errors = {}; // error text -> how many times
const now = () => Number(process.hrtime.bigint()) / 1e9;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function fail(err) {
  say({ phase: 'error', error: String(err && err.stack ? err.stack : err), errors });
  for (const c of clients) c.socket.disconnect();
  process.exit(1);
}
setTimeout(() => fail(`driver timeout after ${opts.timeout}s`), opts.timeout * 1000).unref();
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

const stdin = [];
const stdinWaiters = [];
readline.createInterface({ input: process.stdin })
  .on('line', (line) => (stdinWaiters.length ? stdinWaiters.shift()(line) : stdin.push(line)))
  .on('close', () => { while (stdinWaiters.length) stdinWaiters.shift()(null); });
const nextLine = () => (stdin.length ? Promise.resolve(stdin.shift())
  : new Promise((resolve) => stdinWaiters.push(resolve)));

// "<reason> <status or cause> <response body>": a refused poll shows the server's own words
function noteError(err) {
  const parts = [err && err.message ? err.message : String(err)];
  const cause = err && err.description;
  if (cause !== undefined) parts.push(cause && cause.message ? cause.message : String(cause));
  const body = err && err.context && err.context.responseText;
  if (body) parts.push(String(body).slice(0, 200));
  const key = parts.join(' ');
  errors[key] = (errors[key] || 0) + 1;
}

function clientOptions(index) {
  const o = { forceNew: true, reconnection: Boolean(opts.reconnect), reconnectionDelay: 50,
    reconnectionDelayMax: 200, timeout: 10000 };
  const localAddress = opts.spread ? `127.0.${1 + (index % 254)}.1` : undefined;
  if (opts.transports === 'websocket') {
    o.transports = ['websocket'];
  } else {
    if (opts.transports === 'polling') o.transports = ['polling'];
    else if (opts.transports !== 'default') throw new Error(`unknown --transports ${opts.transports}`);
    // one browser: its own keep-alive connections
    o.agent = new http.Agent({ keepAlive: true, localAddress });
  }
  if (localAddress) o.localAddress = localAddress;
  return o;
}

function connectOne(index, deadline) {
  const c = { index, pids: [], acked: 0, ackFailed: 0, wrong: 0, disconnects: [],
    received: { client: [], external: [] } };
  c.socket = io(opts.url, clientOptions(index));
  clients.push(c);
  c.socket.io.on('error', noteError);
  c.socket.on('connect_error', noteError);
  c.socket.on('disconnect', (reason) => c.disconnects.push(reason));
  c.socket.on('bcast', (m) => c.received[m.source].push(m.seq));
  // a client that cannot connect is reported, not fatal: its errors are the finding
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - now()) * 1000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    c.socket.once('connect', done);
    if (!opts.reconnect) c.socket.once('connect_error', done);
  });
}

// a client worth waiting for: connected, or about to reconnect
const live = (c) => c.socket.connected || Boolean(opts.reconnect);

async function connectMany(n) {
  const deadline = now() + opts.wait;
  let next = 0;
  const lane = async () => {
    while (next < n) await connectOne(next++, deadline);
  };
  await Promise.all(Array.from({ length: Math.min(n, opts.connectConcurrency) }, lane));
}

async function whoami(c) {
  if (!live(c)) return;
  for (let attempt = 0; attempt < 2; attempt++) {
    const disconnects = c.disconnects.length;
    try {
      c.pids.push(await c.socket.timeout(opts.ackTimeout).emitWithAck('whoami'));
      return;
    } catch (err) {
      noteError(err);
    }
    if (!opts.reconnect) return;
    // a long-polling client of a killed worker with nothing in flight may learn
    // of it only at its ping timeout: ask again once it has reconnected
    await until(() => c.socket.connected && c.disconnects.length > disconnects, opts.wait);
  }
}

function workers() {
  const counts = {};
  for (const c of clients) {
    const pid = c.pids[c.pids.length - 1];
    if (pid !== undefined) counts[pid] = (counts[pid] || 0) + 1;
  }
  return counts;
}

async function until(predicate, seconds) {
  const deadline = now() + seconds;
  while (!predicate() && now() < deadline) await sleep(20);
  return predicate();
}

async function echoes() {
  const deadline = now() + opts.deadline;
  const half = (clients.length * opts.events) / 2;
  let answered = 0;
  let halfway = false;
  const lane = async (c, state) => {
    while (state.next < opts.events && now() < deadline && live(c)) {
      const n = state.next++;
      try {
        const data = await c.socket.timeout(opts.ackTimeout).emitWithAck('echo', { c: c.index, n });
        if (data && data.c === c.index && data.n === n) c.acked += 1;
        else c.wrong += 1;
      } catch (err) {
        c.ackFailed += 1;
        noteError(err);
      }
      answered += 1;
      if (!halfway && answered >= half) {
        halfway = true;
        say({ phase: 'halfway' });
      }
    }
  };
  await Promise.all(clients.map((c) => {
    const state = { next: 0 };
    return Promise.all(Array.from({ length: opts.window }, () => lane(c, state)));
  }));
  if (!halfway) say({ phase: 'halfway' }); // most of them failed: still one "halfway" before "echoed"
}

async function scenario() {
  await connectMany(opts.clients);
  await Promise.all(clients.map(whoami));
  say({ phase: 'connected', workers: workers() });
  const started = now();
  await echoes();
  const echoSeconds = now() - started;
  await until(() => clients.every((c) => c.socket.connected || !opts.reconnect), opts.wait);
  await Promise.all(clients.map(whoami));
  say({ phase: 'echoed', seconds: echoSeconds, workers: workers() });
  if ((await nextLine()) === null) process.exit(0);
  // a client whose worker was killed may not have noticed yet: the sender is one that lost nothing
  const sender = clients.find((c) => live(c) && !c.ackFailed && !c.disconnects.length) || clients.find(live);
  for (let seq = 0; sender && seq < opts.broadcasts; seq++) {
    try {
      await sender.socket.timeout(opts.ackTimeout).emitWithAck('broadcast', { source: 'client', seq });
    } catch (err) {
      noteError(err);
    }
  }
  const complete = (c) => !live(c)
    || (c.received.client.length >= opts.broadcasts && c.received.external.length >= opts.external);
  await until(() => clients.every(complete), opts.wait);
  await sleep(opts.linger);
  say({
    phase: 'end',
    echo_seconds: echoSeconds,
    errors,
    clients: clients.map((c) => ({
      pids: c.pids, acked: c.acked, ack_failed: c.ackFailed, wrong: c.wrong, disconnects: c.disconnects,
      transport: c.socket.connected ? c.socket.io.engine.transport.name : null, received: c.received,
    })),
  });
}

async function closedLoop(seconds, latencies) {
  const deadline = now() + seconds;
  const start = now();
  let count = 0;
  await Promise.all(clients.map(async (c) => {
    while (now() < deadline) {
      const t = now();
      const data = await c.socket.timeout(opts.ackTimeout).emitWithAck('echo', { c: c.index, n: count });
      if (!data || data.c !== c.index) throw new Error('an echo answered with another client\'s data');
      latencies.push((now() - t) * 1000);
      count += 1;
    }
  }));
  return { count, elapsed: now() - start };
}

async function rtt() {
  await connectMany(opts.clients);
  const down = clients.filter((c) => !c.socket.connected).length;
  if (down) throw new Error(`${down} of ${clients.length} clients did not connect: ${JSON.stringify(errors)}`);
  await Promise.all(clients.map(whoami));
  await closedLoop(opts.warmup, []);
  const latencies = [];
  const r = await closedLoop(opts.duration, latencies);
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  say({ phase: 'end', count: r.count, elapsed: r.elapsed, p50_ms: pct(50), p99_ms: pct(99),
    workers: workers(), errors,
    upgraded: clients.filter((c) => c.socket.io.engine.transport.name === 'websocket').length });
}

const modes = { scenario, rtt };
if (!modes[opts.mode]) fail(`unknown --mode ${opts.mode}`);
modes[opts.mode]().then(async () => {
  for (const c of clients) c.socket.disconnect();
  await sleep(200); // the close packets' requests, so that no worker waits on a dead long-poll when it stops
  process.exit(0);
}, fail);
