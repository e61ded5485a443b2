// A minimal Socket.IO v5 / Engine.IO v4 long-polling client on Node's `http` module, for
// loadgen.js (`--transport polling-raw`). socket.io-client's polling in Node goes through an
// XMLHttpRequest shim that costs the load generator several times the server's CPU per round
// trip; this client speaks the protocol directly so the server, not the client, sets the rate.
//
// Like a browser, each client has its own keep-alive agent with at most two connections: one
// for the GET that is always outstanding, one for POSTs. Only one POST is in flight at a time;
// packets queued meanwhile go in the next POST, separated by \x1e. Only the default namespace,
// text packets and acks are handled; anything unexpected is an error.
'use strict';

const http = require('http');

const SEP = '\x1e';

function request(agent, target, method, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : {
      'Content-Type': 'text/plain;charset=UTF-8', 'Content-Length': Buffer.byteLength(body),
    };
    const req = http.request({ ...target, agent, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`${method} ${res.statusCode}: ${text}`));
        else resolve(text);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

class RawPollingSocket {
  // onError(err) is called once, on the first failure; the socket is dead after it.
  constructor(baseUrl, onError) {
    const { hostname, port } = new URL(baseUrl);
    this.base = { hostname, port, path: '/socket.io/?EIO=4&transport=polling' };
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    this.onError = onError;
    this.closed = false;
    this.outbox = [];
    this.posting = false;
    this.nextId = 0;
    this.acks = new Map();
    this.onConnect = null;
  }

  // Resolves once the server has acknowledged the Socket.IO CONNECT.
  async connect() {
    const open = (await request(this.agent, this.base, 'GET')).split(SEP)[0];
    if (open[0] !== '0') throw new Error(`expected an open packet, got ${open.slice(0, 80)}`);
    this.sid = JSON.parse(open.slice(1)).sid;
    this.target = { ...this.base, path: `${this.base.path}&sid=${encodeURIComponent(this.sid)}` };
    const connected = new Promise((resolve, reject) => {
      this.onConnect = (err) => (err ? reject(err) : resolve(this));
    });
    this.send('40');
    this.poll();
    return connected;
  }

  emit(event, data, ack) {
    const id = this.nextId++;
    this.acks.set(id, ack);
    this.send(`42${id}${JSON.stringify([event, data])}`);
  }

  disconnect() {
    this.closed = true;
    this.agent.destroy();
  }

  fail(err) {
    if (this.closed) return;
    this.disconnect();
    if (this.onConnect) this.onConnect(err);
    else this.onError(err);
  }

  send(packet) {
    this.outbox.push(packet);
    if (!this.posting) this.flush();
  }

  flush() {
    if (this.closed || !this.outbox.length) {
      this.posting = false;
      return;
    }
    this.posting = true;
    const body = this.outbox.join(SEP);
    this.outbox = [];
    request(this.agent, this.target, 'POST', body).then((text) => {
      if (text.toLowerCase() !== 'ok') throw new Error(`POST answered ${text.slice(0, 80)}`);
      this.flush();
    }).catch((err) => this.fail(err));
  }

  // One GET outstanding at all times: the next one leaves before this payload is handled.
  poll() {
    if (this.closed) return;
    request(this.agent, this.target, 'GET').then((text) => {
      this.poll();
      for (const packet of text.split(SEP)) this.receive(packet);
    }).catch((err) => this.fail(err));
  }

  receive(packet) {
    if (packet === '2') this.send('3'); // Engine.IO ping -> pong
    else if (packet === '6') return; // NOOP
    else if (packet.startsWith('40')) {
      const done = this.onConnect;
      this.onConnect = null;
      if (done) done(null);
    } else if (packet.startsWith('43')) {
      const m = /^43(\d+)/.exec(packet);
      const ack = m && this.acks.get(Number(m[1]));
      if (!ack) throw new Error(`ack for no pending emit: ${packet.slice(0, 80)}`);
      this.acks.delete(Number(m[1]));
      ack(...JSON.parse(packet.slice(m[0].length)));
    } else {
      this.fail(new Error(`unexpected packet ${packet.slice(0, 80)}`));
    }
  }
}

module.exports = { RawPollingSocket };
