"""``greensio.engineio.AsyncServer`` on uvicorn (ASGI), aiohttp and tornado, from outside.

Each framework serves a plain Engine.IO echo server in its own process
(``tests/async_engineio_app.py``); the tests drive the wire with
``rawclient`` and run python-engineio's ``AsyncClient`` and the JavaScript
``engine.io-client`` against it.  Also: an asyncio process importing
greensio's asyncio server never imports gevent (nor python-engineio).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
import rawclient as rc

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, 'async_engineio_app.py')
FRAMEWORKS = ['asgi', 'aiohttp', 'tornado', 'sanic']

pytestmark = pytest.mark.timeout(60)


def server_python(framework: str) -> str:
    """The interpreter that runs a framework's server: sanic has its own venv (tests/run.sh makes
    .venv-sanic), since it brings uvloop, which uvicorn would then pick for every asyncio test."""
    if framework == 'sanic':
        return os.environ.get('GREENSIO_SANIC_PYTHON', sys.executable)
    return sys.executable


class EngineProcess:
    """``async_engineio_app.py`` serving one framework with the given options."""

    def __init__(self, framework: str, kind: str = 'engineio', **options: Any) -> None:
        self.proc = subprocess.Popen([server_python(framework), APP, framework, json.dumps(options), kind], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        try:
            with gevent.Timeout(20, TimeoutError(f'the {framework} server did not start')):
                self.port = int(self.proc.stdout.readline())
        except BaseException:
            self.close()
            raise
        self.url = f'http://127.0.0.1:{self.port}'

    def reasons(self) -> dict[str, str]:
        return json.loads(rc.request(self.url, 'GET', {}, path='/reasons').body)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()


@pytest.fixture(scope='module')
def servers() -> Iterator[Callable[..., EngineProcess]]:
    """Started on first use, one per framework and options, for the whole module."""
    started: dict[str, EngineProcess] = {}

    def get(framework: str, kind: str = 'engineio', **options: Any) -> EngineProcess:
        if framework != 'asgi' and _missing(framework):
            pytest.skip(f'{framework} is not installed')
        key = json.dumps([framework, kind, options], sort_keys=True)
        if key not in started:
            started[key] = EngineProcess(framework, kind, **options)
        return started[key]

    yield get
    for process in started.values():
        process.close()


def _missing(module: str) -> bool:
    found = subprocess.run([server_python(module), '-c', f'import {module}'], capture_output=True, check=False)
    return found.returncode != 0


def polling(url: str, **extra: Any) -> dict[str, Any]:
    return {'EIO': 4, 'transport': 'polling', **extra}


# -- the Engine.IO v4 requirements --------------------------------------------------------------


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_an_unsupported_http_method_gets_400(servers: Callable[..., EngineProcess], framework: str) -> None:
    server = servers(framework)
    assert rc.request(server.url, 'PUT', polling(server.url)).status == 400
    sid, _ = rc.polling_handshake(server.url)
    assert rc.request(server.url, 'PUT', polling(server.url, sid=sid), body='4x').status == 400
    assert rc.request(server.url, 'DELETE', polling(server.url, sid=sid)).status == 400


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_a_polling_client_that_never_polls_again_is_gone_at_ping_interval_plus_timeout(
        servers: Callable[..., EngineProcess], framework: str) -> None:
    server = servers(framework, ping_interval=0.3, ping_timeout=0.2)
    sid, fields = rc.polling_handshake(server.url)
    opened = time.monotonic()
    assert (fields['pingInterval'], fields['pingTimeout']) == (300, 200)
    gevent.sleep(max(0.0, opened + 0.5 - time.monotonic()))
    assert rc.get(server.url, polling(server.url, sid=sid)).status == 400  # an exact timer, not a sweep
    assert server.reasons()[sid] == 'ping timeout'


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_a_close_posted_while_a_get_waits_releases_it_with_a_noop(servers: Callable[..., EngineProcess],
                                                                  framework: str) -> None:
    server = servers(framework)
    session = rc.PollingSession(server.url)
    waiting = gevent.spawn(session.poll, 5)
    gevent.sleep(0.3)  # the GET is waiting for packets
    assert not waiting.ready()
    start = time.monotonic()
    assert session.send('1').status == 200
    released = waiting.get(timeout=3)
    assert (released.status, released.text) == (200, '6')
    assert time.monotonic() - start < 1
    assert session.poll(timeout=3).status == 400
    assert rc.wait_until(lambda: server.reasons().get(session.sid) == 'client disconnect', timeout=3)


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_a_second_websocket_for_an_upgraded_session_is_refused_at_once(servers: Callable[..., EngineProcess],
                                                                       framework: str) -> None:
    server = servers(framework)
    session = rc.PollingSession(server.url)
    ws = rc.RawWebSocket(server.url, {'EIO': 4, 'transport': 'websocket', 'sid': session.sid})
    try:
        start = time.monotonic()
        with pytest.raises(AssertionError, match='400'):  # one upgrade at a time
            rc.RawWebSocket(server.url, {'EIO': 4, 'transport': 'websocket', 'sid': session.sid}, timeout=3)
        ws.send('2probe')
        assert ws.recv(timeout=3) == '3probe'
        ws.send('5')
        with pytest.raises(AssertionError, match='400'):  # upgraded already
            rc.RawWebSocket(server.url, {'EIO': 4, 'transport': 'websocket', 'sid': session.sid}, timeout=3)
        assert time.monotonic() - start < 2
        ws.send('4still here')
        assert ws.recv(timeout=3) == '4still here'
        assert session.send('4too late').status == 400  # no POST once upgraded
    finally:
        ws.close()


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_a_post_cut_inside_its_body_leaves_the_session_open(servers: Callable[..., EngineProcess],
                                                            framework: str) -> None:
    # as the reference server: nothing of it arrived, the client sends it again
    server = servers(framework)
    session = rc.PollingSession(server.url)
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=5)
    sock.sendall(f'POST /socket.io/?EIO=4&transport=polling&sid={session.sid} HTTP/1.1\r\nHost: x\r\n'
                 'Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n4cut'.encode())
    gevent.sleep(0.2)
    sock.close()
    gevent.sleep(0.2)
    assert session.send('4again').status == 200  # not an overlapping POST
    assert session.poll_packets(timeout=3) == ['4again']
    assert session.sid not in server.reasons()


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_a_server_close_reaches_a_websocket_client(servers: Callable[..., EngineProcess], framework: str) -> None:
    server = servers(framework)
    ws = rc.RawWebSocket(server.url, {'EIO': 4, 'transport': 'websocket'})
    try:
        opened = json.loads(ws.recv(timeout=3)[1:])
        ws.send('4close')
        seen = []
        with pytest.raises(rc.ConnectionClosed):  # the Engine.IO CLOSE, then a close frame
            while True:
                seen.append(ws.recv(timeout=3))
        assert seen[-1:] == ['1'] and ws.close_code == 1000
        assert rc.wait_until(lambda: server.reasons().get(opened['sid']) == 'server disconnect', timeout=3)
    finally:
        ws.close()


# -- interop ------------------------------------------------------------------------------------------

ENGINEIO_CLIENT = '''
import asyncio, json, sys
import engineio

async def main(url, transports):
    client = engineio.AsyncClient()
    got = asyncio.Queue()
    client.on('message', got.put)
    await client.connect(url, transports=transports, engineio_path='socket.io')
    answers = []
    for message in ('hello', b'\\x01\\x02\\x03'):
        await client.send(message)
        answers.append(await asyncio.wait_for(got.get(), 5))
    if 'polling' in transports and 'websocket' in transports:
        for _ in range(100):
            if client.transport() == 'websocket':
                break
            await asyncio.sleep(0.05)
    transport = client.transport()
    await asyncio.sleep(1.2)  # several heartbeats (pingInterval 0.3 s)
    await client.send('after heartbeats')
    answers.append(await asyncio.wait_for(got.get(), 5))
    await client.disconnect()
    print(json.dumps({'transport': transport, 'answers': [a if isinstance(a, str) else list(a) for a in answers]}))

asyncio.run(main(sys.argv[1], sys.argv[2].split(',')))
'''

TRANSPORTS = {'polling': 'polling', 'websocket': 'websocket', 'upgrade': 'polling,websocket'}


@pytest.mark.parametrize('transport', list(TRANSPORTS))
@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_python_engineio_async_client(servers: Callable[..., EngineProcess], framework: str, transport: str) -> None:
    server = servers(framework, ping_interval=0.3, ping_timeout=1)
    done = subprocess.run([sys.executable, '-c', ENGINEIO_CLIENT, server.url, TRANSPORTS[transport]],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result['answers'] == ['hello', [1, 2, 3], 'after heartbeats']
    assert result['transport'] == ('polling' if transport == 'polling' else 'websocket')
    # python-engineio's AsyncClient posts its CLOSE only when its writer is idle: if a PONG's POST is
    # in flight when disconnect() is called, the writer stops and the CLOSE is never sent, and the
    # session ends at the heartbeat instead
    assert rc.wait_until(lambda: transport != 'polling' or server.reasons()
                         and set(server.reasons().values()) <= {'client disconnect', 'ping timeout'},
                         timeout=3), server.reasons()


SOCKETIO_CLIENT = '''
import asyncio, json, sys
import socketio

async def main(url, transports):
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=transports)
    answers = [await client.call('echo', 'hello', timeout=5), await client.call('echo', b'\\x01\\x02', timeout=5)]
    transport = client.transport()
    await client.disconnect()
    print(json.dumps({'transport': transport, 'answers': [a if isinstance(a, str) else list(a) for a in answers]}))

asyncio.run(main(sys.argv[1], sys.argv[2].split(',')))
'''


@pytest.mark.parametrize('transport', list(TRANSPORTS))
@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_python_socketio_client_against_greensio_async_server_on_each_framework(
        servers: Callable[..., EngineProcess], framework: str, transport: str) -> None:
    # python-socketio's documented deployments: ASGIApp, attach() (aiohttp, sanic), get_tornado_handler()
    server = servers(framework, 'socketio')
    done = subprocess.run([sys.executable, '-c', SOCKETIO_CLIENT, server.url, TRANSPORTS[transport]],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result['answers'] == ['hello', [1, 2]]
    assert result['transport'] == ('polling' if transport == 'polling' else 'websocket')


JS_CLIENT = os.path.join(HERE, 'js', 'eio_client.js')


@pytest.mark.parametrize('transport', list(TRANSPORTS))
@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_javascript_engine_io_client(servers: Callable[..., EngineProcess], framework: str, transport: str) -> None:
    if shutil.which('node') is None or not os.path.exists(JS_CLIENT) or not os.path.isdir(
            os.path.join(HERE, 'js', 'node_modules', 'engine.io-client')):
        pytest.skip('node or engine.io-client is missing (npm ci in tests/js)')
    server = servers(framework)
    done = subprocess.run(['node', JS_CLIENT, server.url, TRANSPORTS[transport], '/socket.io/'], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result['open'] is True
    assert result['messages'] == ['hello', {'binary': [1, 2, 3]}]
    assert result['transport'] == ('polling' if transport == 'polling' else 'websocket')
    assert result['upgraded'] is (transport == 'upgrade')
    assert result['closeReason'] == 'forced close'


# -- imports --------------------------------------------------------------------------------------------

IMPORTS = '''
import asyncio
import sys
import greensio as socketio
import greensio.engineio as engineio
from greensio.engineio.async_drivers import asgi, aiohttp, tornado
sio = socketio.AsyncServer(async_mode='asgi', client_manager=socketio.AsyncManager())
app = socketio.ASGIApp(sio, other_asgi_app=None)
socketio.AsyncRedisManager, socketio.AsyncAioPikaManager, socketio.AsyncNamespace, socketio.get_tornado_handler
eio = engineio.AsyncServer(async_mode='aiohttp')
engineio.ASGIApp(engineio.AsyncServer(async_mode='asgi'))
socketio.AsyncClient(), socketio.AsyncSimpleClient(), engineio.AsyncClient()


async def instrumented():
    sio.instrument(auth=False)  # the Admin UI's asyncio twin

asyncio.run(instrumented())
from greensio.metrics import Metrics
Metrics(sio)
print(sorted(name for name in sys.modules if name.split('.')[0] in ('gevent', 'engineio', 'socketio')))
'''


def test_an_asyncio_process_never_imports_gevent() -> None:
    done = subprocess.run([sys.executable, '-c', IMPORTS], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[]'  # neither gevent nor python-engineio (or python-socketio)
