#!/usr/bin/env node
// The official Node engine.io server (plain Engine.IO, no Socket.IO), scripted
// for the tests of greensio.engineio's clients.
//
// usage: node eio_server.js '{"port": 0, "pingInterval": 25000, "pingTimeout": 20000}'
//
// stdout: one JSON object per line
//   {"type":"ready","port":N,"pid":P}
//   {"type":"connection","sid","transport"}
//   {"type":"upgrade","sid","transport"}
//   {"type":"close","sid","reason"}
//
// Every message a client sends comes back to it unchanged (text or binary),
// except "close-me" (the server closes the connection) and "burst:N" (the
// server sends N messages "0" .. "N-1" at once).
"use strict";

const http = require("http");
const engine = require("engine.io");

const config = JSON.parse(process.argv[2] || "{}");
const report = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");

const httpServer = http.createServer();
const server = engine.attach(httpServer, {
  pingInterval: config.pingInterval || 25000,
  pingTimeout: config.pingTimeout || 20000,
});

server.on("connection", (socket) => {
  report({ type: "connection", sid: socket.id, transport: socket.transport.name });
  socket.on("upgrade", (transport) => report({ type: "upgrade", sid: socket.id, transport: transport.name }));
  socket.on("close", (reason) => report({ type: "close", sid: socket.id, reason }));
  socket.on("message", (data) => {
    if (data === "close-me") {
      socket.close();
    } else if (typeof data === "string" && data.startsWith("burst:")) {
      for (let i = 0; i < Number(data.slice(6)); i++) socket.send(String(i));
    } else {
      socket.send(data);
    }
  });
});

httpServer.listen(config.port || 0, "127.0.0.1", () => {
  report({ type: "ready", port: httpServer.address().port, pid: process.pid });
});
