"""On greensio's own server a websocket outlives the request that opened it.

``make_server`` lets the Engine.IO server detach a websocket's connection
from the HTTP request (``websocket_sessions.DETACH``): a greenlet of its own
reads it, and the request, with its handler, its read buffer and its deep
suspended stack, ends.  Nothing else may change: the environ keeps a working
``wsgi.websocket``, the access log gets its line when the websocket ends, and
a connection the application refuses is closed.
"""

from __future__ import annotations

import gc
import io
import os
from typing import Any

import gevent
import pytest
import rawclient

import greensio
from greensio import engineio
from greensio.serving import GreenHandler

pytestmark = pytest.mark.timeout(30)


class App:
    def __init__(self, log: Any = None) -> None:
        self.sio = sio = greensio.Server()
        self.environs: dict[str, dict] = {}
        self.connected = gevent.event.Event()
        self.disconnected = gevent.event.Event()

        @sio.event
        def connect(sid: str, environ: dict, auth: Any = None) -> None:
            self.environs[sid] = environ
            self.connected.set()

        @sio.event
        def disconnect(sid: str, reason: str) -> None:
            self.disconnected.set()

        @sio.event
        def echo(sid: str, data: Any) -> Any:
            return data

        self.server = greensio.make_server(greensio.WSGIApp(sio), '127.0.0.1', 0, log=log)
        self.server.start()
        self.url = f'http://127.0.0.1:{self.server.server_port}'

    def handlers(self) -> list[GreenHandler]:
        gc.collect()
        return [o for o in gc.get_objects() if isinstance(o, GreenHandler) and o.server is self.server]


@pytest.fixture
def app():
    a = App()
    yield a
    a.server.stop(timeout=1)


def test_the_request_ends_and_the_websocket_goes_on(app: App) -> None:
    client, _ = rawclient.connect_sio(app.url)
    try:
        assert app.connected.wait(3)
        gevent.sleep(0.05)
        assert app.handlers() == []  # the request's handler is gone with the request
        environ = next(iter(app.environs.values()))
        ws = environ['wsgi.websocket']
        assert (ws.closed, ws.path, ws.version, ws.environ is environ) == (False, '/socket.io/', '13', True)
        assert environ['wsgi.input'].read() == b''  # frames are not the request's body
        client.send_sio('20["echo","hi"]')
        assert client.recv_sio() == '30["hi"]'
    finally:
        client.close()
    assert app.disconnected.wait(3)


def test_closing_from_the_environ_still_ends_the_connection(app: App) -> None:
    client, _ = rawclient.connect_sio(app.url)
    try:
        assert app.connected.wait(3)
        next(iter(app.environs.values()))['wsgi.websocket'].close()
        assert client.wait_closed(timeout=3) == []
        assert client.close_code == 1000
    finally:
        client.close()
    assert app.disconnected.wait(3)


def _open_fds() -> int:
    return len(os.listdir('/proc/self/fd'))


@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'), reason='counts descriptors in /proc')
def test_every_connection_is_closed_when_it_ends(app: App) -> None:
    before = _open_fds()
    for _ in range(5):
        client, _ = rawclient.connect_sio(app.url)
        client.close()
    refused = engineio.Server()
    refused.on('connect', lambda sid, environ: False)
    server = greensio.make_server(engineio.WSGIApp(refused), '127.0.0.1', 0)
    server.start()
    try:
        for _ in range(3):  # refused by the connect handler: the server ends the connection
            ws = rawclient.RawWebSocket(f'http://127.0.0.1:{server.server_port}', {'EIO': 4, 'transport': 'websocket'})
            try:
                ws.wait_closed(timeout=3)
            finally:
                ws.close()
        deadline = gevent.get_hub().loop.now() + 3
        while _open_fds() > before + 1 and gevent.get_hub().loop.now() < deadline:  # + the listener
            gevent.sleep(0.05)
        assert _open_fds() <= before + 1
    finally:
        server.stop(timeout=1)


def test_the_access_log_line_comes_when_the_websocket_ends() -> None:
    log = io.StringIO()
    app = App(log=log)
    try:
        client, _ = rawclient.connect_sio(app.url)
        try:
            assert app.connected.wait(3)
            gevent.sleep(0.1)
            assert 'transport=websocket' not in log.getvalue()
        finally:
            client.close()
        assert app.disconnected.wait(3)
        gevent.sleep(0.1)
        lines = [line for line in log.getvalue().splitlines() if 'transport=websocket' in line]
        assert len(lines) == 1 and ' 101 ' in lines[0], lines
    finally:
        app.server.stop(timeout=1)
