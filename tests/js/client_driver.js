#!/usr/bin/env node
// Scripted socket.io-client driven by newline-delimited JSON.
//
// stdin:  one JSON command per line, e.g.
//   {"cmd":"connect","id":1,"sock":"a","url":"http://127.0.0.1:5000/ns","opts":{"transports":["websocket"]}}
//   (opts.parser "msgpack" makes the socket use socket.io-msgpack-parser)
//   {"cmd":"emit","id":2,"sock":"a","event":"hello","args":[1,{"$bin":"AAE="}],"ack":true,"timeout_ms":2000}
// stdout: one JSON message per line, e.g.
//   {"type":"connect","sock":"a","id":"<sid>","transport":"websocket","t":12.3}
//
// Binary values are encoded in JSON as {"$bin": "<base64>"} in both
// directions (recursively inside arrays and objects).
//
// See tests/jsclient.py for the Python side and the full protocol summary.
"use strict";

const readline = require("readline");
const { io } = require("socket.io-client");

const T0 = process.hrtime.bigint();
const sockets = new Map(); // name -> {socket, ackMode}

function now() {
  return Number(process.hrtime.bigint() - T0) / 1e6;
}

// ---------------------------------------------------------------- encoding

function isBinary(v) {
  return (
    Buffer.isBuffer(v) ||
    v instanceof ArrayBuffer ||
    ArrayBuffer.isView(v)
  );
}

function toBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

// JS value -> JSON-safe value
function encode(v) {
  if (v === undefined) return null;
  if (v === null || typeof v !== "object") {
    if (typeof v === "function") return "[function]";
    if (typeof v === "bigint") return v.toString();
    return v;
  }
  if (isBinary(v)) return { $bin: toBuffer(v).toString("base64") };
  if (Array.isArray(v)) return v.map(encode);
  if (v instanceof Error) return { name: v.name, message: v.message };
  const out = {};
  for (const k of Object.keys(v)) out[k] = encode(v[k]);
  return out;
}

// JSON value -> JS value (with Buffers)
function decode(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(decode);
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === "$bin" && typeof v.$bin === "string") {
    return Buffer.from(v.$bin, "base64");
  }
  const out = {};
  for (const k of keys) out[k] = decode(v[k]);
  return out;
}

// ---------------------------------------------------------------- output

function report(msg) {
  msg.t = now();
  let line;
  try {
    line = JSON.stringify(msg);
  } catch (e) {
    line = JSON.stringify({ type: "fatal", message: "unserializable message: " + e.message, t: msg.t });
  }
  process.stdout.write(line + "\n");
}

function errMessage(e) {
  return e && e.message !== undefined ? String(e.message) : String(e);
}

process.on("uncaughtException", (e) => {
  report({ type: "fatal", message: errMessage(e), stack: e && e.stack ? String(e.stack) : null });
});
process.on("unhandledRejection", (e) => {
  report({ type: "fatal", message: errMessage(e), stack: e && e.stack ? String(e.stack) : null });
});

// ---------------------------------------------------------------- helpers

function getEntry(name) {
  const entry = sockets.get(name);
  if (!entry) throw new Error(`unknown sock ${JSON.stringify(name)}`);
  return entry;
}

function transportName(socket) {
  const engine = socket.io && socket.io.engine;
  return engine && engine.transport ? engine.transport.name : null;
}

function handleServerEvent(entry, name, event, args) {
  let ackFn = null;
  if (args.length && typeof args[args.length - 1] === "function") {
    ackFn = args.pop();
  }
  const msg = { type: "event", sock: name, event, args: encode(args) };
  if (ackFn) msg.ack_requested = true;
  report(msg);
  if (!ackFn) return;
  const mode = entry.ackMode;
  const ackArgs = mode.args !== undefined ? decode(mode.args) : args;
  if (mode.mode === "none") return;
  if (mode.mode === "delay") {
    setTimeout(() => ackFn(...ackArgs), mode.delay_ms || 0);
  } else {
    ackFn(...ackArgs);
  }
}

// ---------------------------------------------------------------- commands

const commands = {
  connect(cmd) {
    const name = cmd.sock || "default";
    if (sockets.has(name)) {
      const old = sockets.get(name).socket;
      old.removeAllListeners();
      old.offAny();
      old.disconnect();
    }
    const opts = decode(cmd.opts || {});
    // opts.parser "msgpack": the official socket.io-msgpack-parser
    if (opts.parser === "msgpack") opts.parser = require("socket.io-msgpack-parser");
    const socket = io(cmd.url, opts);
    const entry = { socket, ackMode: { mode: "echo" } };
    sockets.set(name, entry);

    socket.on("connect", () => {
      report({ type: "connect", sock: name, id: socket.id, transport: transportName(socket), recovered: socket.recovered });
    });
    socket.on("connect_error", (err) => {
      report({
        type: "connect_error",
        sock: name,
        message: errMessage(err),
        data: encode(err && err.data !== undefined ? err.data : null),
      });
    });
    socket.on("disconnect", (reason, details) => {
      const msg = { type: "disconnect", sock: name, reason };
      if (details && details.description !== undefined) {
        msg.description = errMessage(details.description);
      }
      report(msg);
    });
    socket.onAny((event, ...args) => handleServerEvent(entry, name, event, args));

    const manager = socket.io;
    const hookEngine = () => {
      const engine = manager.engine;
      if (!engine || engine.__greensioHooked?.has(name)) return;
      if (!engine.__greensioHooked) engine.__greensioHooked = new Set();
      engine.__greensioHooked.add(name);
      engine.on("upgrade", (transport) => {
        report({ type: "upgrade", sock: name, transport: transport && transport.name });
      });
    };
    manager.on("open", hookEngine);
    hookEngine();
    manager.on("reconnect", (attempt) => {
      report({ type: "reconnect", sock: name, attempt });
    });
    manager.on("reconnect_attempt", (attempt) => {
      report({ type: "reconnect_attempt", sock: name, attempt });
    });
    manager.on("reconnect_failed", () => {
      report({ type: "reconnect_failed", sock: name });
    });
  },

  emit(cmd) {
    const { socket } = getEntry(cmd.sock || "default");
    const args = decode(cmd.args || []);
    let target = socket;
    if (cmd.volatile) target = target.volatile;
    if (cmd.compress === false) target = target.compress(false);
    if (!cmd.ack) {
      target.emit(cmd.event, ...args);
      return;
    }
    const id = cmd.id;
    if (cmd.timeout_ms !== undefined && cmd.timeout_ms !== null) {
      target.timeout(cmd.timeout_ms).emit(cmd.event, ...args, (err, ...resp) => {
        if (err) report({ type: "ack_timeout", id, message: errMessage(err) });
        else report({ type: "ack", id, args: encode(resp) });
      });
    } else {
      target.emit(cmd.event, ...args, (...resp) => {
        report({ type: "ack", id, args: encode(resp) });
      });
    }
  },

  emit_many(cmd) {
    const { socket } = getEntry(cmd.sock || "default");
    const count = cmd.count || 0;
    const id = cmd.id;
    let acked = 0;
    for (let i = 0; i < count; i++) {
      if (cmd.ack) {
        socket.emit(cmd.event, i, (...resp) => {
          acked += 1;
          report({ type: "ack", id, index: i, args: encode(resp) });
          if (acked === count) report({ type: "acks_done", id, count });
        });
      } else {
        socket.emit(cmd.event, i);
      }
    }
  },

  ack_mode(cmd) {
    const entry = getEntry(cmd.sock || "default");
    const mode = cmd.mode || "echo";
    if (!["echo", "none", "delay"].includes(mode)) throw new Error(`bad ack mode ${mode}`);
    entry.ackMode = { mode, delay_ms: cmd.delay_ms || 0, args: cmd.args };
  },

  disconnect(cmd) {
    getEntry(cmd.sock || "default").socket.disconnect();
  },

  reconnect(cmd) {
    // re-open a socket that was disconnected manually (socket.connect())
    getEntry(cmd.sock || "default").socket.connect();
  },

  close_engine(cmd) {
    const { socket } = getEntry(cmd.sock || "default");
    const engine = socket.io.engine;
    if (!engine) throw new Error("no engine");
    engine.close();
  },

  state(cmd) {
    const { socket } = getEntry(cmd.sock || "default");
    report({
      type: "state",
      id: cmd.id,
      sock: cmd.sock || "default",
      connected: socket.connected,
      active: socket.active,
      sid: socket.id || null,
      engine_sid: (socket.io.engine && socket.io.engine.id) || null,
      transport: transportName(socket),
    });
  },

  exit(cmd) {
    shutdown(0, cmd.id);
  },
};

let exiting = false;
function shutdown(code, id) {
  if (exiting) return;
  exiting = true;
  for (const { socket } of sockets.values()) {
    try {
      socket.disconnect();
    } catch (e) {
      // ignore
    }
  }
  if (id !== undefined && id !== null) report({ type: "done", id });
  // give the disconnect packets a moment to leave, then flush stdout and go
  setTimeout(() => process.stdout.write("", () => process.exit(code)), 50);
}

function handleLine(line) {
  line = line.trim();
  if (!line) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    report({ type: "error", id: null, message: "invalid JSON: " + errMessage(e), line });
    return;
  }
  const id = cmd.id === undefined ? null : cmd.id;
  const fn = commands[cmd.cmd];
  if (!fn) {
    report({ type: "error", id, cmd: cmd.cmd, message: `unknown command ${JSON.stringify(cmd.cmd)}` });
    return;
  }
  try {
    fn(cmd);
  } catch (e) {
    report({ type: "error", id, cmd: cmd.cmd, message: errMessage(e) });
    return;
  }
  if (cmd.cmd !== "exit" && id !== null) report({ type: "done", id });
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", handleLine);
rl.on("close", () => shutdown(0));

report({ type: "ready", pid: process.pid, node: process.version });
