"""``environ['wsgi.websocket']`` keeps working once greensio drives the websocket.

gevent-websocket puts its websocket object in the environ, and greensio takes
the connection over from it to read and write frames itself.  Users of
gevent-websocket and python-socketio store the environ in a connect handler
and drop a client later with ``environ['wsgi.websocket'].close()``: that must
still end the connection (a close frame, then the end of TCP), and the
server must see the disconnect.  Checked on greensio's own server and on a
plain pywsgi server with gevent-websocket's handler.
"""

from __future__ import annotations

from typing import Any

import gevent
import pytest
import rawclient
import socketio
from e2e_helpers import DEPLOYMENTS, start_server

import greensio

pytestmark = pytest.mark.timeout(30)


class App:
    def __init__(self, kind: str) -> None:
        self.sio = sio = greensio.Server()
        self.environs: dict[str, dict] = {}
        self.disconnected = gevent.event.Event()
        self.seen: list[Any] = []

        @sio.event
        def connect(sid: str, environ: dict, auth: Any = None) -> None:
            self.environs[sid] = environ

        @sio.event
        def disconnect(sid: str, reason: str) -> None:
            self.seen.append(('disconnect', reason))
            self.disconnected.set()

        @sio.event
        def drop_me(sid: str) -> None:
            ws = self.environs[sid]['wsgi.websocket']
            self.seen.append(('before', ws.closed, ws.path))
            ws.close()
            self.seen.append(('after', ws.closed))

        self.server = start_server(greensio.WSGIApp(sio), kind)
        self.url = f'http://127.0.0.1:{self.server.server_port}'


@pytest.fixture(params=DEPLOYMENTS)
def app(request):
    a = App(request.param)
    yield a
    a.server.stop(timeout=1)


def test_closing_the_environs_websocket_ends_the_connection(app: App) -> None:
    client, _ = rawclient.connect_sio(app.url)
    try:
        client.send_sio('2["drop_me"]')
        assert client.wait_closed(timeout=3) == []  # a close frame, then the end of TCP
        assert client.close_code == 1000
    finally:
        client.close()
    assert app.disconnected.wait(3)
    assert app.seen[:2] == [('before', False, '/socket.io/'), ('after', True)]


def test_a_python_socketio_client_sees_the_disconnect(app: App) -> None:
    gone = gevent.event.Event()
    client = socketio.Client(reconnection=False)
    client.on('disconnect', lambda *args: gone.set())
    client.connect(app.url, transports=['websocket'])
    try:
        client.emit('drop_me')
        assert gone.wait(5)
        assert app.disconnected.wait(3)
    finally:
        client.disconnect()


def test_sending_through_it_is_refused_with_a_reason(app: App) -> None:
    client, _ = rawclient.connect_sio(app.url)  # the connect handler has run
    try:
        ws = next(iter(app.environs.values()))['wsgi.websocket']
        for call in (lambda: ws.send('raw'), ws.receive):
            with pytest.raises(RuntimeError, match='emit'):
                call()
        client.send_sio('2["drop_me"]')
        client.wait_closed(timeout=3)
    finally:
        client.close()
