"""``greensio.engineio.Server``: a plain Engine.IO server, and the green server under greensio's Socket.IO.

python-engineio's documented server example runs unchanged with
``import greensio.engineio as engineio``, driven by python-engineio's own
client and by the official JavaScript ``engine.io-client``, over
long-polling, websocket and the upgrade, on greensio's server and on
pywsgi with gevent-websocket's handler.  The Engine.IO v4 rules the
official test suites check from outside run here over real sockets on both
deployments.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import engineio as python_engineio
import gevent
import pytest
import rawclient as rc
from e2e_helpers import DEPLOYMENTS, needs_node, start_server, wait_until
from jsclient import JS_DIR, node_executable

import greensio
import greensio.engineio as engineio  # noqa: PLR0402 - the form python-engineio apps take

pytestmark = pytest.mark.timeout(30)


class ExampleApp:
    """python-engineio's documented server example, recording instead of printing."""

    def __init__(self, **options: Any) -> None:
        eio = self.eio = engineio.Server(**options)
        self.app = engineio.WSGIApp(eio)
        self.connected: list[str] = []
        self.messages: list[Any] = []
        self.disconnected: list[str] = []

        @eio.on('connect')
        def connect(sid: str, environ: dict) -> None:
            self.connected.append(sid)

        @eio.on('message')
        def message(sid: str, data: Any) -> None:
            self.messages.append(data)
            eio.send(sid, 'Thank you for your message!')

        @eio.on('disconnect')
        def disconnect(sid: str) -> None:
            self.disconnected.append(sid)


@pytest.fixture(params=DEPLOYMENTS)
def example(request: Any) -> Any:
    app = ExampleApp()
    server = start_server(app.app, request.param)
    app.url = f'http://127.0.0.1:{server.server_port}'
    yield app
    server.stop(timeout=1)


@pytest.mark.parametrize('transports', [['polling'], ['websocket'], None], ids=['polling', 'websocket', 'upgrade'])
def test_python_engineio_client_against_the_example(example: ExampleApp, transports: list[str] | None) -> None:
    client = python_engineio.Client()
    received: list[Any] = []
    client.on('message', received.append)
    client.connect(example.url, transports=transports)
    try:
        client.send('hello')
        client.send(b'\x01\x02\x03')
        assert wait_until(lambda: len(received) == 2, what='two answers')
        assert received == ['Thank you for your message!'] * 2
        assert example.messages == ['hello', b'\x01\x02\x03']
        if transports is None:
            assert wait_until(lambda: client.transport() == 'websocket', what='the upgrade')
    finally:
        client.disconnect()
    assert wait_until(lambda: example.disconnected == example.connected and len(example.connected) == 1,
                      what='the disconnect handler')
    assert wait_until(lambda: not example.eio.sockets, what='the session forgotten')


@needs_node
@pytest.mark.parametrize('transports', ['polling', 'websocket', 'polling,websocket'])
def test_javascript_engine_io_client_against_the_example(example: ExampleApp, transports: str) -> None:
    out = subprocess.run([node_executable(), os.path.join(JS_DIR, 'eio_client.js'), example.url, transports],
                         cwd=JS_DIR, capture_output=True, text=True, timeout=20, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result['open'] and result['messages'] == ['Thank you for your message!'] * 2, result
    assert result['transport'] == transports.split(',')[-1]
    assert result['upgraded'] == (transports == 'polling,websocket')
    assert result['closeReason'] == 'forced close'
    assert example.messages == ['hello', b'\x01\x02\x03']
    assert wait_until(lambda: len(example.disconnected) == 1, what='the disconnect handler')


def test_session_api_transport_and_server_disconnect(serve: Any) -> None:
    eio = engineio.Server(async_mode='gevent')
    reasons: list[str] = []
    eio.on('disconnect', lambda sid, reason: reasons.append(reason))  # with the reason: python-engineio 4.11+
    url = serve(engineio.WSGIApp(eio, engineio_path='socket.io'))
    client = python_engineio.Client()
    received: list[Any] = []
    client.on('message', received.append)
    client.connect(url, transports=['websocket'], engineio_path='socket.io')
    sid = next(iter(eio.sockets))
    with eio.session(sid) as session:
        session['user'] = 'ann'
    assert eio.get_session(sid) == {'user': 'ann'}
    assert eio.transport(sid) == 'websocket'
    eio.send(sid, {'a': [1, 2]})  # neither text nor bytes: JSON
    assert wait_until(lambda: received == [{'a': [1, 2]}], what='the JSON message')  # python-engineio's client decodes it
    eio.disconnect(sid)
    assert wait_until(lambda: reasons == [eio.reason.SERVER_DISCONNECT], what='the disconnect handler')
    assert wait_until(lambda: client.state == 'disconnected', what='the client told')
    with pytest.raises(KeyError):
        eio.get_session(sid)


def test_a_refused_connection_gets_401_and_no_session(serve: Any) -> None:
    eio = engineio.Server()
    eio.on('connect', lambda sid, environ: False)
    url = serve(engineio.WSGIApp(eio))
    r = rc.get(url, {'EIO': 4, 'transport': 'polling'}, path='/engine.io/')
    assert r.status == 401 and not eio.sockets


def test_python_engineio_names() -> None:
    for name in ('Server', 'WSGIApp', 'Middleware'):
        assert hasattr(engineio, name)
    for name in ('EngineIOError', 'ContentTooLongError', 'UnknownPacketError', 'QueueEmpty', 'SocketIsClosedError',
                 'ConnectionError'):
        assert issubclass(getattr(engineio.exceptions, name), Exception)
    eio = engineio.Server(ping_interval=(10, 2), transports='polling')
    assert (eio.ping_interval, eio.ping_interval_grace_period, eio.transports) == (10, 2, ['polling'])
    assert eio.reason.PING_TIMEOUT == python_engineio.Server.reason.PING_TIMEOUT
    with pytest.raises(ValueError):
        engineio.Server(async_mode='eventlet')


# -- the rules the official test suites check from outside, on both deployments --------------------


@pytest.fixture(params=DEPLOYMENTS)
def quick(request: Any) -> Any:
    """A greensio server with pingInterval 300 ms and pingTimeout 200 ms (the official suites' values)."""
    sio = greensio.Server(ping_interval=0.3, ping_timeout=0.2)
    server = start_server(greensio.WSGIApp(sio), request.param)
    yield f'http://127.0.0.1:{server.server_port}', sio
    server.stop(timeout=1)


def test_an_unsupported_method_gets_400(quick: Any) -> None:
    url, _ = quick
    assert rc.request(url, 'PUT', {'EIO': 4, 'transport': 'polling'}).status == 400
    sid, _ = rc.polling_handshake(url)
    r = rc.request(url, 'PUT', {'EIO': 4, 'transport': 'polling', 'sid': sid})
    assert r.status == 400 and json.loads(r.body)['code'] == 3


def test_a_polling_client_that_never_polls_again_is_gone_at_interval_plus_timeout(quick: Any) -> None:
    url, sio = quick
    sid, _ = rc.polling_handshake(url)
    gevent.sleep(0.5)  # pingInterval + pingTimeout: the PING went unanswered
    r = rc.get(url, {'EIO': 4, 'transport': 'polling', 'sid': sid})
    assert r.status == 400 and json.loads(r.body)['code'] == 1
    assert sid not in sio.eio.sockets


def test_a_close_posted_while_a_get_waits_releases_it(quick: Any) -> None:
    url, _ = quick
    session = rc.PollingSession(url)
    waiting = gevent.spawn(session.poll, 5)
    gevent.sleep(0.05)
    start = time.monotonic()
    assert session.send(rc.EIO_CLOSE).status == 200
    released = waiting.get(timeout=2)
    assert (released.status, released.text) == (200, rc.EIO_NOOP)
    assert time.monotonic() - start < 0.25  # at once, not at the next ping
    assert session.poll(timeout=2).status == 400


def test_a_second_websocket_for_an_upgraded_session_is_refused_at_once(quick: Any) -> None:
    url, sio = quick
    client = python_engineio.Client()
    client.connect(url, engineio_path='socket.io')  # long-polling, then the upgrade
    try:
        assert wait_until(lambda: client.transport() == 'websocket', what='the upgrade')
        sid = client.sid
        start = time.monotonic()
        try:
            second = rc.RawWebSocket(url, {'EIO': 4, 'transport': 'websocket', 'sid': sid}, timeout=3)
        except AssertionError as exc:  # greensio's server answers 400 before any upgrade
            assert '400' in str(exc)
        else:  # gevent-websocket's handler sent its 101 first: the websocket is closed at once
            second.wait_closed(timeout=3)
            second.close()
        assert time.monotonic() - start < 1
        assert sid in sio.eio.sockets and sio.eio.transport(sid) == 'websocket'  # the first carries on
    finally:
        client.disconnect()
