#!/usr/bin/env node
// The official socket.io 4.8 server, scripted for greensio's client tests.
//
// usage: node node_server.js '{"port": 0, ...}'   (or the JSON in $NODE_SERVER_CONFIG)
//
// config (all optional):
//   host            "127.0.0.1"
//   port            0 picks a free port
//   transports      ["polling", "websocket"]
//   pingInterval    ms (socket.io default 25000)
//   pingTimeout     ms (socket.io default 20000)
//   namespaces      ["/", "/chat", "/private"]  each gets the handlers below
//   authNamespaces  ["/private"]  refuse unless auth.token === "secret"
//   parser          "msgpack" uses socket.io-msgpack-parser (default: the JSON parser)
//
// stdout: one JSON object per line
//   {"type":"ready","port":N,"pid":P}
//   {"type":"connection","nsp","sid","auth","transport"}
//   {"type":"disconnect","nsp","sid","reason"}
//   {"type":"event","nsp","sid","event","args"}        binary as {"$bin": base64}
//
// Any namespace refuses a client whose auth has {"refuse": <data>}:
// connect_error {"message": "refused", "data": <data>}.
//
// Events a client may emit (every namespace):
//   echo(...args, ack)         ack(...args)
//   whoami(ack)                ack({sid, nsp, auth, transport, query})
//   push(event, ...args)       emit event(...args) to this client
//   ask(event, ...args, ack)   emit event(...args) to this client with an ack,
//                              then ack the asker with the client's ack values
//                              (or {"error": "timeout"} after 2 s)
//   seq(i)                     record i for this socket
//   stats(ack)                 ack({seq, events, connections, disconnects})
//   flood(n)                   emit "flood"(i) for i in 0..n-1
//   broadcast(event, ...args)  emit to every client of the namespace
//   kick(close)                server-side disconnect; close=true also closes the connection
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const config = JSON.parse(process.argv[2] || process.env.NODE_SERVER_CONFIG || "{}");
const host = config.host || "127.0.0.1";
const namespaces = config.namespaces || ["/", "/chat", "/private"];
const authNamespaces = new Set(config.authNamespaces || ["/private"]);
const counters = { connections: 0, disconnects: 0, events: 0 };

function encode(v) {
  if (v === undefined) return null;
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return { $bin: Buffer.from(v).toString("base64") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (v === null || typeof v !== "object") return typeof v === "function" ? "[function]" : v;
  if (Array.isArray(v)) return v.map(encode);
  const out = {};
  for (const k of Object.keys(v)) out[k] = encode(v[k]);
  return out;
}

function report(msg) {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

process.on("uncaughtException", (e) => report({ type: "fatal", message: String(e && e.stack) }));

const options = {};
if (config.transports) options.transports = config.transports;
if (config.pingInterval) options.pingInterval = config.pingInterval;
if (config.pingTimeout) options.pingTimeout = config.pingTimeout;
if (config.parser === "msgpack") options.parser = require("socket.io-msgpack-parser");
const httpServer = http.createServer();
const io = new Server(httpServer, options);

function transportOf(socket) {
  return socket.conn && socket.conn.transport ? socket.conn.transport.name : null;
}

function splitAck(args) {
  return args.length && typeof args[args.length - 1] === "function" ? [args.slice(0, -1), args[args.length - 1]] : [args, null];
}

function setup(nsp) {
  const space = io.of(nsp);
  space.use((socket, next) => {
    const auth = socket.handshake.auth || {};
    if (auth.refuse !== undefined) {
      const err = new Error("refused");
      err.data = auth.refuse;
      return next(err);
    }
    if (authNamespaces.has(nsp) && auth.token !== "secret") {
      const err = new Error("not authorized");
      err.data = { code: 4001, reason: "bad token" };
      return next(err);
    }
    next();
  });
  space.on("connection", (socket) => {
    counters.connections += 1;
    const seq = [];
    report({ type: "connection", nsp, sid: socket.id, auth: socket.handshake.auth, transport: transportOf(socket) });
    socket.on("disconnect", (reason) => {
      counters.disconnects += 1;
      report({ type: "disconnect", nsp, sid: socket.id, reason });
    });
    socket.onAny((event, ...raw) => {
      counters.events += 1;
      const [args] = splitAck(raw);
      report({ type: "event", nsp, sid: socket.id, event, args: encode(args) });
    });
    socket.on("echo", (...raw) => {
      const [args, ack] = splitAck(raw);
      if (ack) ack(...args);
    });
    socket.on("whoami", (ack) => {
      ack({ sid: socket.id, nsp, auth: socket.handshake.auth, transport: transportOf(socket), query: socket.handshake.query });
    });
    socket.on("push", (event, ...args) => socket.emit(event, ...args));
    socket.on("ask", (event, ...raw) => {
      const [args, ack] = splitAck(raw);
      socket.timeout(2000).emit(event, ...args, (err, ...answer) => {
        if (ack) ack(err ? { error: "timeout" } : answer);
      });
    });
    socket.on("seq", (i) => seq.push(i));
    socket.on("stats", (ack) => ack({ seq, ...counters }));
    socket.on("flood", (n) => {
      for (let i = 0; i < n; i++) socket.emit("flood", i);
    });
    socket.on("broadcast", (event, ...args) => space.emit(event, ...args));
    socket.on("kick", (close) => socket.disconnect(Boolean(close)));
  });
}

namespaces.forEach(setup);

httpServer.listen(config.port || 0, host, () => {
  report({ type: "ready", port: httpServer.address().port, pid: process.pid });
});

// the test harness closes stdin (or dies): exit with it
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
