"""greensio.engineio's Client and AsyncClient against python-engineio's server and Node's engine.io.

Each peer runs in its own process and reports what it sees as JSON lines
(``connection``, ``close``): python-engineio's ``Server`` on gevent's pywsgi
with gevent-websocket's handler (this module, run as a script), and the
official Node ``engine.io`` server (``tests/js/eio_server.js``).  Both echo
every message, close the connection on ``close-me`` and answer ``burst:N``
with N messages at once.  Every scenario runs on both twins over
long-polling, websocket and the upgrade.  A peer stopped with SIGSTOP keeps
its sockets open and goes silent: the client must notice it by the heartbeat
deadline alone.
"""

from __future__ import annotations

if __name__ == '__main__':  # the python-engineio peer is a gevent program
    from gevent import monkey

    monkey.patch_all()

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import pytest

pytestmark = pytest.mark.timeout(60)

TRANSPORTS = {'polling': ['polling'], 'websocket': ['websocket'], 'upgrade': None}
EIO_SERVER_JS = os.path.join(HERE, 'js', 'eio_server.js')


class Peer:
    """A server process that prints JSON lines; ``seen`` collects them."""

    def __init__(self, kind: str, ping_interval: float = 25, ping_timeout: float = 20,
                 refuse_websocket: bool = False) -> None:
        from client_support import Recorder

        self.kind = kind
        self.seen = Recorder()
        if kind == 'node':
            from jsclient import node_executable

            config = {'pingInterval': int(ping_interval * 1000), 'pingTimeout': int(ping_timeout * 1000)}
            self.command = [node_executable() or 'node', EIO_SERVER_JS, json.dumps(config)]
        else:
            config = {'ping_interval': ping_interval, 'ping_timeout': ping_timeout,
                      'refuse_websocket': refuse_websocket}
            self.command = [sys.executable, os.path.abspath(__file__), json.dumps(config)]
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f'http://127.0.0.1:{self.seen.wait_for("ready", timeout=15)["port"]}'

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.add(json.loads(line))

    def close(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait(10)


def node_missing() -> str | None:
    from client_support import node_skip_reason

    reason = node_skip_reason()
    if reason is None and not os.path.isdir(os.path.join(HERE, 'js', 'node_modules', 'engine.io')):
        reason = 'run "npm ci" in tests/js to install engine.io'
    return reason


@pytest.fixture(scope='module', params=['python-engineio', 'node'])
def peer(request: Any) -> Any:
    if request.param == 'node' and node_missing():
        pytest.skip(node_missing())
    server = Peer(request.param)
    yield server
    server.close()


# -- one scenario, written for both twins ------------------------------------------------------------


async def settle(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def until(predicate: Any, what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        await asyncio.sleep(0.01)


def make_client(twin: str) -> Any:
    from greensio import engineio

    return engineio.Client() if twin == 'green' else engineio.AsyncClient()


async def scenario(twin: str, peer: Peer, transport: str) -> None:
    client = make_client(twin)
    got: list[Any] = []
    ends: list[str] = []
    client.on('message', got.append)
    client.on('disconnect', ends.append)
    await settle(client.connect(peer.url, transports=TRANSPORTS[transport]))
    assert client.state == 'connected' and client.sid
    assert client.transport() == ('polling' if transport == 'polling' else 'websocket')
    seen = peer.seen.wait_for('connection', sid=client.sid)
    if peer.kind == 'node':  # python-engineio's server says 'polling' in its connect handler
        assert seen['transport'] == ('websocket' if transport == 'websocket' else 'polling')
        if transport == 'upgrade':
            peer.seen.wait_for('upgrade', sid=client.sid)

    # what python-engineio's client does with each kind of data
    await settle(client.send('hello'))
    await settle(client.send(b'\x00\x01binary'))
    await settle(client.send({'json': [1, 2]}))
    await until(lambda: len(got) == 3, 'the echoes')
    # python-engineio's server answers each message on a greenlet of its own: in any order
    assert sorted(map(repr, got)) == sorted(map(repr, ['hello', b'\x00\x01binary', {'json': [1, 2]}]))

    # more packets than python-engineio servers take in one POST, and than its client took in one GET
    got.clear()
    for i in range(40):
        await settle(client.send(f'm{i}'))
    await settle(client.send('burst:30'))
    await until(lambda: len(got) == 70, 'the burst')
    assert sorted(got[:40]) == sorted(f'm{i}' for i in range(40))
    # text starting with a digit is never JSON decoded (python-engineio's rule)
    assert sorted(got[40:], key=int) == [str(i) for i in range(30)]

    # the server ends the connection
    await settle(client.send('close-me'))
    await until(lambda: ends, 'the disconnect handler')
    # Node's engine.io closes a websocket without a CLOSE packet: the client sees the
    # transport end (python-engineio's client says 'transport error' too)
    closed_by_server = (client.reason.TRANSPORT_ERROR if peer.kind == 'node' and transport != 'polling'
                        else client.reason.SERVER_DISCONNECT)
    assert ends == [closed_by_server] and client.state == 'disconnected'
    assert client.sid is None

    # the client ends it: the server hears of it, the client's tasks end
    await settle(client.connect(peer.url, transports=TRANSPORTS[transport]))
    sid = client.sid
    peer.seen.wait_for('connection', sid=sid)
    await settle(client.disconnect())
    assert ends == [closed_by_server, client.reason.CLIENT_DISCONNECT]
    assert client.state == 'disconnected'
    peer.seen.wait_for('close', sid=sid)
    await settle(client.wait())  # returns at once


@pytest.mark.parametrize('transport', list(TRANSPORTS))
def test_green_client(peer: Peer, transport: str) -> None:
    asyncio.run(asyncio.wait_for(scenario('green', peer, transport), 40))


@pytest.mark.parametrize('transport', list(TRANSPORTS))
def test_async_client(peer: Peer, transport: str) -> None:
    asyncio.run(asyncio.wait_for(scenario('asyncio', peer, transport), 40))


# -- a silent server ---------------------------------------------------------------------------------


@pytest.mark.parametrize('twin', ['green', 'asyncio'])
@pytest.mark.parametrize('transport', ['polling', 'websocket'])
def test_a_silent_server_is_noticed_at_its_heartbeat_deadline(twin: str, transport: str) -> None:
    # python-engineio advertises whole seconds only (0.5 would be a pingInterval of 0)
    peer = Peer('python-engineio', ping_interval=1, ping_timeout=1)

    async def run() -> float:
        client = make_client(twin)
        ends: list[str] = []
        client.on('disconnect', ends.append)
        await settle(client.connect(peer.url, transports=[transport]))
        await asyncio.sleep(2.5)  # heartbeats go on
        assert client.state == 'connected'
        peer.proc.send_signal(signal.SIGSTOP)  # sockets open, nothing answers
        stopped = time.monotonic()
        await until(lambda: ends, 'the disconnect handler', timeout=10)
        assert ends == [client.reason.TRANSPORT_ERROR] and client.state == 'disconnected'
        return time.monotonic() - stopped

    try:
        elapsed = asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        peer.close()
    # the deadline is pingInterval + pingTimeout (2 s) after the last PING, which came
    # before the stop: never later than that, whatever the transport
    assert elapsed < 2.5, elapsed


# -- an upgrade that fails -------------------------------------------------------------------------


@pytest.mark.parametrize('twin', ['green', 'asyncio'])
def test_an_upgrade_the_server_offers_but_refuses_stays_on_long_polling(twin: str) -> None:
    peer = Peer('python-engineio', refuse_websocket=True)  # advertises websocket, answers 400

    async def run() -> None:
        client = make_client(twin)
        got: list[Any] = []
        client.on('message', got.append)
        await settle(client.connect(peer.url))
        assert client.transport() == 'polling' and client.upgrades == ['websocket']
        await settle(client.send('still here'))
        await until(lambda: got == ['still here'], 'the echo')
        await settle(client.disconnect())
        peer.seen.wait_for('close')

    try:
        asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        peer.close()


# -- the API matches python-engineio's -------------------------------------------------------------


@pytest.mark.parametrize('name', ['Client', 'AsyncClient'])
def test_public_names_and_signatures_match_python_engineio(name: str) -> None:
    import engineio

    import greensio.engineio

    def public(cls: type) -> dict[str, Any]:
        return {n: getattr(cls, n) for n in dir(cls) if not n.startswith('_') or n == '__init__'}

    ours, theirs = public(getattr(greensio.engineio, name)), public(getattr(engineio, name))
    assert set(theirs) <= set(ours), set(theirs) - set(ours)
    for method, fn in theirs.items():
        if inspect.isfunction(fn):
            assert list(inspect.signature(ours[method]).parameters) == list(inspect.signature(fn).parameters), method
            assert inspect.iscoroutinefunction(ours[method]) == inspect.iscoroutinefunction(fn), method
    assert [ours['reason'].CLIENT_DISCONNECT, ours['reason'].SERVER_DISCONNECT, ours['reason'].TRANSPORT_ERROR] == \
        [theirs['reason'].CLIENT_DISCONNECT, theirs['reason'].SERVER_DISCONNECT, theirs['reason'].TRANSPORT_ERROR]


def test_a_refused_handshake_carries_the_servers_answer() -> None:
    from greensio import engineio

    peer = Peer('python-engineio')
    try:
        client = engineio.Client()
        with pytest.raises(engineio.exceptions.ConnectionError) as refused:
            client.connect(peer.url, engineio_path='/nowhere')
        assert refused.value.args[0] == 'Unexpected status code 404 in server response'
        assert client.state == 'disconnected'
        with pytest.raises(engineio.exceptions.ConnectionError):
            client.connect('http://127.0.0.1:9', transports=['websocket'])
        with pytest.raises(ValueError, match='No valid transports'):
            client.connect(peer.url, transports=['carrier-pigeon'])
    finally:
        peer.close()


# -- the python-engineio peer ---------------------------------------------------------------------------


def main() -> None:
    import engineio
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    config = json.loads(sys.argv[1])
    refuse_websocket = config.pop('refuse_websocket', False)
    server = engineio.Server(async_mode='gevent', **config)

    def report(msg: dict) -> None:
        sys.stdout.write(json.dumps(msg) + '\n')
        sys.stdout.flush()

    @server.on('connect')
    def connect(sid: str, environ: dict) -> None:
        report({'type': 'connection', 'sid': sid, 'transport': server.transport(sid)})

    @server.on('disconnect')
    def disconnect(sid: str, reason: str) -> None:
        report({'type': 'close', 'sid': sid, 'reason': reason})

    @server.on('message')
    def message(sid: str, data: Any) -> None:
        if data == 'close-me':
            server.disconnect(sid)
        elif isinstance(data, str) and data.startswith('burst:'):
            for i in range(int(data[6:])):
                server.send(sid, str(i))
        else:
            server.send(sid, data)

    app = engineio.WSGIApp(server)

    def refusing(environ: dict, start_response: Any) -> Any:
        if 'transport=websocket' in environ.get('QUERY_STRING', ''):
            start_response('400 Bad Request', [('Content-Type', 'text/plain')])
            return [b'no websocket here']
        return app(environ, start_response)

    http = pywsgi.WSGIServer(('127.0.0.1', 0), refusing if refuse_websocket else app,
                             handler_class=WebSocketHandler, log=None)
    http.start()
    report({'type': 'ready', 'port': http.server_port})
    http.serve_forever()


if __name__ == '__main__':
    main()
