"""Connection state recovery with the official JavaScript client, over real sockets.

The client talks to the server through a TCP proxy that the test cuts (a
reset on both sides, as a network drop); socket.io-client 4.8 reconnects on
its own and must find its id, its rooms and every event it missed, once and
in order.
"""

from __future__ import annotations

from typing import Any

import gevent
import pytest
from async_support import RemoteApp
from async_support import skip_reason as async_skip_reason
from e2e_helpers import FAST_RECONNECT, needs_node, start_server, wait_until
from jsclient import JSClient
from tcp_proxy import CuttableProxy

import greensio

pytestmark = [needs_node, pytest.mark.timeout(60)]


class App:
    def __init__(self, **recovery: Any) -> None:
        self.sio = greensio.Server(connection_state_recovery=recovery or True)
        self.connects: list[tuple[str, Any, bool]] = []
        self.disconnects: list[tuple[str, str]] = []

        @self.sio.event
        def connect(sid: str, environ: dict, auth: Any) -> None:
            self.connects.append((sid, auth, self.sio.recovered(sid)))

        @self.sio.event
        def disconnect(sid: str, reason: str) -> None:
            self.disconnects.append((sid, reason))

        @self.sio.event
        def join(sid: str, room: str) -> str:
            self.sio.enter_room(sid, room)
            with self.sio.session(sid) as session:
                session['room'] = room
            return 'joined'

        @self.sio.event
        def whoami(sid: str) -> Any:
            return self.sio.get_session(sid).get('room'), sorted(self.sio.rooms(sid))

        self.server = start_server(greensio.WSGIApp(self.sio), 'greensio')
        self.proxy = CuttableProxy(self.server.server_port)
        self.url = f'http://127.0.0.1:{self.proxy.port}'

    def close(self) -> None:
        self.proxy.close()
        self.server.stop()
        self.sio.shutdown()


@pytest.fixture
def app():
    app = App(max_disconnection_duration=30)
    yield app
    app.close()


@pytest.fixture
def js():
    with JSClient() as client:
        yield client


def emit_round(sio: greensio.Server, sid: str, i: int) -> None:
    sio.emit('tick', i, to='room')
    sio.emit('direct', i, to=sid)
    sio.emit('elsewhere', i, to='other room')
    sio.emit('all', i, skip_sid=sid)


def values(js: JSClient, event: str) -> list[Any]:
    """The first argument of each ``event`` received, checking each carried a growing offset."""
    received = js.events(event=event)
    offsets = [int(m['args'][-1]) for m in received]
    assert offsets == sorted(set(offsets)), f'{event}: offsets out of order or repeated: {offsets}'
    return [m['args'][0] for m in received]


@pytest.mark.parametrize('emit_before_drop', [True, False], ids=['emitted-before', 'nothing-before'])
def test_a_dropped_websocket_client_gets_back_its_id_rooms_session_and_missed_events(app, js, emit_before_drop):
    first = js.connect(app.url, transports=['websocket'], wait=True, **FAST_RECONNECT)
    sid = first['id']
    assert first['recovered'] is False
    assert js.call('join', 'room') == ['joined']
    before = range(5) if emit_before_drop else range(0)
    for i in before:
        emit_round(app.sio, sid, i)
    wait_until(lambda: len(js.events(event='direct')) == len(before), what='the emits before the drop')

    assert app.proxy.cut() == 1
    wait_until(lambda: app.disconnects, what='the server to see the drop')
    assert app.disconnects == [(sid, 'transport close')]
    for i in range(5, 15):  # while the client is away
        emit_round(app.sio, sid, i)
        gevent.sleep(0.002)

    again = js.wait_for('connect', timeout=10)
    assert again['recovered'] is True and again['id'] == sid
    for i in range(15, 20):
        emit_round(app.sio, sid, i)
    wait_until(lambda: len(js.events(event='direct')) >= len(before) + 15, what='every direct emit')
    expected = [*before, *range(5, 20)]
    assert values(js, 'tick') == expected
    assert values(js, 'direct') == expected
    assert js.events(event='elsewhere') == []
    assert js.events(event='all') == []
    assert js.call('whoami') == ['room', sorted([sid, 'room'])]
    assert [c[2] for c in app.connects] == [False]  # skip_handlers: the connect handler ran once


def test_the_connect_handler_runs_on_recovery_when_asked_and_can_tell(js):
    app = App(max_disconnection_duration=30, skip_handlers=False)
    try:
        first = js.connect(app.url, transports=['websocket'], wait=True, auth={'token': 't'}, **FAST_RECONNECT)
        app.proxy.cut()
        again = js.wait_for('connect', timeout=10)
        assert again['recovered'] is True and again['id'] == first['id']
        # the handler sees the application's auth, not the recovery fields
        assert app.connects == [(first['id'], {'token': 't'}, False), (first['id'], {'token': 't'}, True)]
    finally:
        app.close()


def test_a_deliberate_disconnect_is_not_recovered(app, js):
    first = js.connect(app.url, transports=['websocket'], wait=True, **FAST_RECONNECT)
    js.disconnect()
    js.wait_for('disconnect')
    js.reconnect()
    again = js.wait_for('connect', timeout=10)
    assert again['recovered'] is False and again['id'] != first['id']


def test_after_the_window_a_client_gets_a_new_session(js):
    app = App(max_disconnection_duration=0.2)
    try:
        first = js.connect(app.url, transports=['websocket'], wait=True,
                           reconnectionDelay=600, reconnectionDelayMax=600, randomizationFactor=0)
        app.proxy.cut()
        again = js.wait_for('connect', timeout=10)
        assert again['recovered'] is False and again['id'] != first['id']
    finally:
        app.close()


def cut_until_the_client_notices(proxy: CuttableProxy, js: JSClient) -> None:
    """Cut until a request of the client's was open to be cut: between two polls it may have none."""
    for _ in range(50):
        if proxy.cut():
            try:
                js.wait_for('disconnect', timeout=1)
                return
            except AssertionError:
                pass
        gevent.sleep(0.02)
    raise AssertionError('the client never noticed a cut')


def test_a_dropped_long_polling_client_recovers(app, js):
    first = js.connect(app.url, transports=['polling'], wait=True, **FAST_RECONNECT)
    sid = first['id']
    assert js.call('join', 'room') == ['joined']
    emit_round(app.sio, sid, 0)
    wait_until(lambda: js.events(event='direct'), what='the first emit')
    cut_until_the_client_notices(app.proxy, js)
    for i in range(1, 6):
        emit_round(app.sio, sid, i)
    again = js.wait_for('connect', timeout=10)
    assert again['recovered'] is True and again['id'] == sid
    assert len(app.disconnects) == 1
    emit_round(app.sio, sid, 6)
    wait_until(lambda: len(js.events(event='direct')) == 7, what='every direct emit')
    assert values(js, 'tick') == values(js, 'direct') == list(range(7))
    assert js.events(event='elsewhere') == []


def test_a_client_back_before_the_server_noticed_the_drop_recovers(app, js):
    # the server's side of the old connection stays open and silent: only the
    # heartbeat would notice, later; the client's return with its pid ends it
    first = js.connect(app.url, transports=['websocket'], wait=True, **FAST_RECONNECT)
    sid = first['id']
    assert js.call('join', 'room') == ['joined']
    app.proxy.cut(tell_server=False)
    emit_round(app.sio, sid, 0)  # written to the dead connection
    again = js.wait_for('connect', timeout=10)
    assert again['recovered'] is True and again['id'] == sid
    assert app.disconnects == [(sid, 'transport close')]
    emit_round(app.sio, sid, 1)
    wait_until(lambda: len(js.events(event='direct')) == 2, what='every direct emit')
    assert values(js, 'tick') == values(js, 'direct') == [0, 1]
    assert sorted(app.sio.rooms(sid)) == sorted([sid, 'room'])


@pytest.mark.skipif(async_skip_reason() is not None, reason=async_skip_reason() or '')
def test_the_asyncio_server_recovers_a_dropped_client_too(async_server, js):
    app = RemoteApp(async_server, 'e2e', connection_state_recovery={'max_disconnection_duration': 30})
    remote = app._remote
    with CuttableProxy(async_server.port) as proxy:
        first = js.connect(f'http://127.0.0.1:{proxy.port}', transports=['websocket'], wait=True, **FAST_RECONNECT)
        sid = first['id']
        assert js.call('join', 'room') == [sorted([sid, 'room'])]
        remote("sio.emit('tick', 0, to='room')")
        wait_until(lambda: js.events(event='tick'), what='the first emit')
        proxy.cut()
        wait_until(lambda: app.disconnects, what='the server to see the drop')
        for i in range(1, 4):
            remote("sio.emit('tick', i, to='room')", i=i)
            remote("sio.emit('elsewhere', i, to='other room')", i=i)
        again = js.wait_for('connect', timeout=10)
        assert again['recovered'] is True and again['id'] == sid
        remote("sio.emit('tick', 4, to='room')")
        wait_until(lambda: len(js.events(event='tick')) == 5, what='every emit')
        assert values(js, 'tick') == list(range(5))
        assert js.events(event='elsewhere') == []
        assert remote('sorted(sio.rooms(sid))', sid=sid) == sorted([sid, 'room'])


def test_greensios_client_recovers_and_its_handlers_never_see_the_offsets(app):
    received: list[Any] = []
    client = greensio.Client(reconnection_delay=0.05, reconnection_delay_max=0.1, randomization_factor=0)
    client.on('tick', lambda value: received.append(value))
    client.connect(app.url, transports=['websocket'])
    try:
        sid = client.get_sid()
        assert client.recovered is False
        assert client.call('join', 'room') == 'joined'
        emit_round(app.sio, sid, 0)
        wait_until(lambda: received == [0], what='the first emit')
        app.proxy.cut()
        wait_until(lambda: app.disconnects, what='the server to see the drop')
        for i in range(1, 4):
            emit_round(app.sio, sid, i)
        wait_until(lambda: client.connected and client.recovered, what='the recovery')
        assert client.get_sid() == sid
        emit_round(app.sio, sid, 4)
        wait_until(lambda: len(received) == 5, what='every emit')
        assert received == [0, 1, 2, 3, 4]
        client.disconnect()
        client.connect(app.url, transports=['websocket'])
        assert client.recovered is False and client.get_sid() != sid  # a deliberate leave starts afresh
    finally:
        client.disconnect()


def test_forged_recovery_fields_get_a_new_session(app, js):
    first = js.connect(app.url, transports=['websocket'], wait=True, sock='a')
    js.disconnect(sock='a')
    for auth in ({'pid': 'forged', 'offset': '1'}, {'pid': first['id']}, {'pid': 12, 'offset': {'x': 1}},
                 {'pid': 'x' * 10000}, {'offset': '999999'}):
        msg = js.connect(app.url, transports=['websocket'], wait=True, sock='b', auth=auth)
        assert msg['type'] == 'connect' and msg['recovered'] is False and msg['id'] != first['id']
        js.disconnect(sock='b')
    assert [c[2] for c in app.connects] == [False] * 6
