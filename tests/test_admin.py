"""``Server.instrument()``: the Admin UI's protocol over real sockets.

A greensio ``Server`` on 127.0.0.1 (port 0), application clients and an
"admin" client (greensio's ``Client``, speaking to ``/admin`` what the Admin
UI's page speaks) on the same process's green threads.  The browser test of
the Admin UI's own page is tests/test_admin_ui_browser.py.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from typing import Any

import bcrypt
import pytest
from e2e_helpers import wait_until

import greensio
from greensio import exceptions
from greensio.testing import InMemoryBus, InMemoryPubSubManager

pytestmark = pytest.mark.timeout(30)

PASSWORD = 'correct horse'
#: a cost-4 bcrypt hash keeps the test fast; the Admin UI's Node server takes the same format
HASHED = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


class Events:
    """Every event a client receives on one namespace, in order, by name."""

    def __init__(self, client: greensio.Client, namespace: str) -> None:
        self.seen: list[tuple[str, tuple]] = []
        self.lock = threading.Lock()
        client.on('*', self._add, namespace=namespace)

    def _add(self, event: str, *args: Any) -> None:
        with self.lock:
            self.seen.append((event, args))

    def named(self, event: str) -> list[tuple]:
        with self.lock:
            return [args for name, args in self.seen if name == event]

    def wait(self, event: str, match: Any = None, timeout: float = 5) -> tuple:
        def found() -> Any:
            return next((args for args in self.named(event) if match is None or match(args)), None)

        return wait_until(found, timeout, f'{event} on the admin client')


def build(client_manager: Any = None, **instrument: Any) -> greensio.Server:
    return build_instrumented(client_manager, **instrument)[0]


def build_instrumented(client_manager: Any = None, **instrument: Any) -> tuple[greensio.Server, Any]:
    """A test application, instrumented; returns the server and what ``instrument()`` returned."""
    sio = greensio.Server(client_manager=client_manager)

    @sio.on('connect')
    def connect(sid, environ, auth):
        sio.enter_room(sid, 'everyone')

    @sio.on('join')
    def join(sid, room):
        sio.enter_room(sid, room)
        return 'joined'

    @sio.on('shout')
    def shout(sid, room, text):
        sio.emit('heard', text, to=room)

    instrument.setdefault('auth', {'username': 'admin', 'password': HASHED})
    instrument.setdefault('server_stats_interval', 0.2)
    return sio, sio.instrument(**instrument)


@pytest.fixture
def clients():
    made: list[greensio.Client] = []

    def make() -> greensio.Client:
        client = greensio.Client(reconnection=False)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown()


def connect_admin(make, url: str, auth: Any = None, **kwargs: Any) -> tuple[greensio.Client, Events]:
    admin = make()
    events = Events(admin, '/admin')
    admin.connect(url, namespaces=['/admin'], auth=auth or {'username': 'admin', 'password': PASSWORD}, **kwargs)
    return admin, events


def test_dashboard_data_and_live_reports(serve, clients):
    sio = build()
    url = serve(sio)
    first = clients()
    first.connect(url + '/?room=x', headers={'X-Test': 'yes'}, transports=['websocket'])
    first_sid = first.get_sid('/')

    admin, events = connect_admin(clients, url)
    config = events.wait('config')[0]
    assert {'JOIN', 'LEAVE', 'DISCONNECT', 'ALL_EVENTS', 'AGGREGATED_EVENTS'} <= set(config['supportedFeatures'])
    assert events.named('session')  # the Admin UI reconnects with it after a page reload

    sockets = events.wait('all_sockets')[0]
    mine = next(s for s in sockets if s['id'] == first_sid)
    assert mine['nsp'] == '/' and mine['clientId'] == first.sid and mine['transport'] == 'websocket'
    assert mine['handshake']['headers']['x-test'] == 'yes'
    assert mine['handshake']['query']['room'] == 'x'
    assert mine['handshake']['address'] == '127.0.0.1'
    assert mine['handshake']['issued'] > 0
    assert set(mine['rooms']) == {first_sid, 'everyone'}
    assert any(s['nsp'] == '/admin' for s in sockets)  # the Admin UI lists itself, as on Node

    stats = events.wait('server_stats')[0]
    assert stats['serverId'] and stats['pid'] and stats['clientsCount'] == 2 and stats['pollingClientsCount'] == 0
    assert {'name': '/', 'socketsCount': 1} in stats['namespaces']
    assert any(e['type'] == 'rawConnection' for s in events.named('server_stats') for e in s[0]['aggregatedEvents'])

    second = clients()
    second.connect(url, transports=['polling'])
    second_sid = second.get_sid('/')
    connected = events.wait('socket_connected', lambda a: a[0]['id'] == second_sid)
    assert connected[0]['transport'] == 'polling' and 'everyone' in connected[0]['rooms']

    assert second.call('join', 'lobby') == 'joined'
    events.wait('event_received', lambda a: a[:3] == ('/', second_sid, ['join', 'lobby']))
    events.wait('room_joined', lambda a: a[:3] == ('/', 'lobby', second_sid))

    second.emit('shout', ('everyone', 'hello'))
    for sid in (first_sid, second_sid):
        events.wait('event_sent', lambda a, sid=sid: a[:3] == ('/', sid, ['heard', 'hello']))

    sio.leave_room(second_sid, 'lobby')
    events.wait('room_left', lambda a: a[:3] == ('/', 'lobby', second_sid))

    def traffic(kinds: set) -> bool:
        seen = {e['type'] for args in events.named('server_stats') for e in args[0]['aggregatedEvents'] if e['count']}
        return kinds <= seen

    wait_until(lambda: traffic({'packetsIn', 'bytesIn', 'packetsOut', 'bytesOut'}), what='traffic in server_stats')

    second.disconnect()
    events.wait('socket_disconnected', lambda a: a[:2] == ('/', second_sid))
    admin.disconnect()
    sio.shutdown()


def test_actions_join_leave_disconnect(serve, clients):
    sio = build()
    url = serve(sio)
    target = clients()
    target.connect(url)
    sid = target.get_sid('/')
    admin, events = connect_admin(clients, url)
    events.wait('config')

    admin.emit('join', ('/', 'vip', sid), namespace='/admin')  # filter: the socket's own room
    wait_until(lambda: 'vip' in sio.rooms(sid), what='the Admin UI join')
    events.wait('room_joined', lambda a: a[:3] == ('/', 'vip', sid))

    admin.emit('leave', ('/', 'vip', sid), namespace='/admin')
    wait_until(lambda: 'vip' not in sio.rooms(sid), what='the Admin UI leave')

    heard = []
    target.on('announce', heard.append)
    admin.emit('emit', ('/', 'everyone', 'announce', 'from the admin'), namespace='/admin')
    wait_until(lambda: heard == ['from the admin'], what='the Admin UI emit')

    admin.emit('_disconnect', ('/', False, sid), namespace='/admin')
    wait_until(lambda: not target.connected, what='the Admin UI disconnect')
    events.wait('socket_disconnected', lambda a: a[:3] == ('/', sid, sio.reason.SERVER_DISCONNECT))

    other = clients()
    other.connect(url, namespaces=['/', '/admin'], auth={'username': 'admin', 'password': PASSWORD})
    other_sid, other_admin_sid = other.get_sid('/'), other.get_sid('/admin')
    admin.emit('_disconnect', ('/', True, other_sid), namespace='/admin')  # the Clients page: the whole connection
    wait_until(lambda: not other.connected, what='the Admin UI closing a connection')
    events.wait('socket_disconnected', lambda a: a[:2] == ('/', other_sid))
    events.wait('socket_disconnected', lambda a: a[:2] == ('/admin', other_admin_sid))  # every namespace of it
    sio.shutdown()


def test_wrong_credentials_refused_and_logged(serve, clients, caplog):
    sio = build()
    url = serve(sio)
    caplog.set_level(logging.WARNING, logger='socketio.server')
    intruder = clients()
    with pytest.raises(exceptions.ConnectionError):
        intruder.connect(url, namespaces=['/admin'], auth={'username': 'admin', 'password': 'guess'})
    assert 'invalid credentials' in caplog.text
    with pytest.raises(exceptions.ConnectionError):
        clients().connect(url, namespaces=['/admin'], auth={'sessionId': 'made-up'})

    # a login session, as the Admin UI keeps it for a page reload
    admin, events = connect_admin(clients, url)
    session_id = events.wait('session')[0]
    admin.disconnect()
    _again, again_events = connect_admin(clients, url, auth={'sessionId': session_id})
    again_events.wait('config')
    sio.shutdown()


def test_read_only_refuses_actions(serve, clients):
    sio = build(read_only=True)
    url = serve(sio)
    target = clients()
    target.connect(url)
    sid = target.get_sid('/')
    admin, events = connect_admin(clients, url)
    features = events.wait('config')[0]['supportedFeatures']
    assert not {'JOIN', 'LEAVE', 'DISCONNECT', 'EMIT'} & set(features)
    admin.emit('join', ('/', 'vip', sid), namespace='/admin')
    admin.emit('_disconnect', ('/', True, sid), namespace='/admin')
    # both arrive before this event, whose report proves they were read
    target.emit('join', 'after')
    events.wait('room_joined', lambda a: a[1] == 'after')
    assert target.connected and 'vip' not in sio.rooms(sid)
    sio.shutdown()


def test_callable_auth_and_production_mode(serve, clients):
    seen = []

    def check(auth):
        seen.append(auth)
        return auth == {'token': 'ok'}

    sio = build(auth=check, mode='production')
    url = serve(sio)
    with pytest.raises(exceptions.ConnectionError):
        clients().connect(url, namespaces=['/admin'], auth={'token': 'no'})
    _admin, events = connect_admin(clients, url, auth={'token': 'ok'})
    assert events.wait('config')[0]['supportedFeatures'][-1] == 'AGGREGATED_EVENTS'  # no ALL_EVENTS
    events.wait('server_stats')
    assert not events.named('all_sockets') and not events.named('session')
    assert seen == [{'token': 'no'}, {'token': 'ok'}]
    sio.shutdown()


def test_options_checked_and_warning_without_auth(caplog):
    with pytest.raises(ValueError, match='auth'):
        greensio.Server().instrument()
    with pytest.raises(ValueError, match='mode'):
        greensio.Server().instrument(auth=False, mode='debug')
    caplog.set_level(logging.WARNING, logger='socketio.server')
    greensio.Server().instrument(auth=False)
    assert 'without authentication' in caplog.text


def test_nothing_installed_without_instrument():
    sio = greensio.Server()
    assert '_trigger_event' not in vars(sio) and 'emit' not in vars(sio.manager)
    assert sio.eio.handlers['connect'] == sio._handle_eio_connect
    assert sio.eio.message_handler == sio._handle_eio_message and '_send_eio_packets' not in vars(sio)
    sio.instrument(auth=False, mode='production')
    assert '_trigger_event' not in vars(sio)  # production mode reports no events either
    development = greensio.Server()
    development.instrument(auth=False)
    assert '_trigger_event' in vars(development)


@pytest.mark.timeout(60)
def test_bcrypt_hash_without_bcrypt_says_which_extra():
    code = ('import sys; sys.modules["bcrypt"] = None\n'
            'import greensio\n'
            'greensio.Server().instrument(auth={"username": "a", "password": "x"})  # plain: no bcrypt needed\n'
            'try:\n'
            f'    greensio.Server().instrument(auth={{"username": "a", "password": {HASHED!r}}})\n'
            'except ModuleNotFoundError as exc:\n'
            '    print(exc)\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=50, check=False)
    assert run.returncode == 0, run.stderr
    assert "pip install 'greensio[admin]' (missing: bcrypt)" in run.stdout, run.stdout + run.stderr


def test_workers_behind_a_message_queue(serve, clients):
    """Two workers on one bus: the Admin UI, connected to one, sees both and reaches the other's sockets."""
    bus = InMemoryBus()
    workers, urls = [], []
    for _ in range(2):
        sio, _instrumentation = build_instrumented(InMemoryPubSubManager(bus, channel='admin-test'))
        workers.append(sio)
        urls.append(serve(sio))
    early = clients()
    early.connect(urls[1])  # before the Admin UI logs in, on the other worker
    early_sid = early.get_sid('/')

    admin, events = connect_admin(clients, urls[0])
    wait_until(lambda: {args[0]['serverId'] for args in events.named('server_stats')}
               == {w.manager.host_id for w in workers}, what='server_stats of both workers')
    # announced by the other worker when the UI logged in (not at its next announcement, 20 s on)
    events.wait('socket_connected', lambda a: a[0]['id'] == early_sid)

    late = clients()
    late.connect(urls[1])
    late_sid = late.get_sid('/')
    events.wait('socket_connected', lambda a: a[0]['id'] == late_sid)
    late.call('join', 'lobby')
    events.wait('room_joined', lambda a: a[:3] == ('/', 'lobby', late_sid))

    admin.emit('join', ('/', 'vip', late_sid), namespace='/admin')
    wait_until(lambda: 'vip' in workers[1].rooms(late_sid), what='a join across workers')
    admin.emit('_disconnect', ('/', False, early_sid), namespace='/admin')
    wait_until(lambda: not early.connected, what='a disconnect across workers')
    events.wait('socket_disconnected', lambda a: a[:2] == ('/', early_sid))
    for sio in workers:
        sio.shutdown()


# -- the asyncio twin: an AsyncServer under uvicorn (tests/async_app.py) ------------------------


def instrument_remote(async_server: Any, auth_expr: str, **options: Any) -> None:
    """A fresh asyncio test application, instrumented (its ``shutdown()`` comes with the next reset)."""
    async_server.reset('e2e')
    async_server(f'setattr(app, "admin", sio.instrument(auth={auth_expr}, server_stats_interval=0.2, **options))',
                 options=options, hashed=HASHED)


def test_async_server_reports_and_obeys(async_server, clients):
    instrument_remote(async_server, "{'username': 'admin', 'password': hashed}")
    url = async_server.url
    first = clients()
    first.connect(url, transports=['websocket'])
    sid = first.get_sid('/')

    with pytest.raises(exceptions.ConnectionError):
        clients().connect(url, namespaces=['/admin'], auth={'username': 'admin', 'password': 'guess'})
    assert async_server("[m for name, m in LOGS if 'invalid credentials' in m]")

    admin, events = connect_admin(clients, url)
    assert 'JOIN' in events.wait('config')[0]['supportedFeatures']
    assert events.wait('session')[0]
    mine = next(s for s in events.wait('all_sockets')[0] if s['id'] == sid)
    assert mine['transport'] == 'websocket' and mine['clientId'] == first.sid and sid in mine['rooms']
    stats = events.wait('server_stats')[0]
    assert stats['clientsCount'] == 2 and {'name': '/', 'socketsCount': 1} in stats['namespaces']

    second = clients()
    second.connect(url, transports=['polling'])
    second_sid = second.get_sid('/')
    events.wait('socket_connected', lambda a: a[0]['id'] == second_sid and a[0]['transport'] == 'polling')

    assert first.call('join', 'lobby') == sorted([sid, 'lobby'])
    events.wait('event_received', lambda a: a[:3] == ('/', sid, ['join', 'lobby']))
    events.wait('room_joined', lambda a: a[:3] == ('/', 'lobby', sid))
    first.emit('to_room', ('lobby', 'hi'))
    events.wait('event_sent', lambda a: a[:3] == ('/', sid, ['room_msg', 'hi']))
    wait_until(lambda: any(e['type'] == 'bytesIn' and e['count'] for args in events.named('server_stats')
                           for e in args[0]['aggregatedEvents']), what='traffic in server_stats')

    admin.emit('join', ('/', 'vip', second_sid), namespace='/admin')
    wait_until(lambda: 'vip' in async_server('sio.rooms(sid)', sid=second_sid), what='the Admin UI join')
    admin.emit('leave', ('/', 'vip', second_sid), namespace='/admin')
    events.wait('room_left', lambda a: a[:3] == ('/', 'vip', second_sid))
    admin.emit('_disconnect', ('/', False, sid), namespace='/admin')
    wait_until(lambda: not first.connected, what='the Admin UI disconnect')
    events.wait('socket_disconnected', lambda a: a[:2] == ('/', sid))
    admin.emit('_disconnect', ('/', True, second_sid), namespace='/admin')  # the whole connection
    wait_until(lambda: not second.connected, what='the Admin UI closing a connection')


def test_async_server_coroutine_auth_read_only(async_server, clients):
    # asyncio.sleep(0, result) is an awaitable that yields result: a coroutine check
    instrument_remote(async_server, "lambda auth: asyncio.sleep(0, auth == {'token': 'ok'})", read_only=True)
    url = async_server.url
    target = clients()
    target.connect(url)
    sid = target.get_sid('/')
    with pytest.raises(exceptions.ConnectionError):
        clients().connect(url, namespaces=['/admin'], auth={'token': 'no'})
    admin, events = connect_admin(clients, url, auth={'token': 'ok'})
    assert 'DISCONNECT' not in events.wait('config')[0]['supportedFeatures']
    admin.emit('_disconnect', ('/', False, sid), namespace='/admin')
    target.call('join', 'after')  # the admin's event was read before this one's report
    events.wait('room_joined', lambda a: a[1] == 'after')
    assert target.connected


@pytest.mark.parametrize('metrics_first', [True, False])
def test_admin_ui_and_metrics_together(serve, clients, metrics_first):
    """The Admin UI wraps the dispatch points the metrics count at in place; each sees the traffic, in either order."""
    metrics_module = pytest.importorskip('greensio.metrics')
    sio = greensio.Server()
    sio.on('echo', lambda sid, data: data)
    if metrics_first:
        metrics = metrics_module.Metrics(sio)
        sio.instrument(auth=False, server_stats_interval=0.2)
    else:
        sio.instrument(auth=False, server_stats_interval=0.2)
        metrics = metrics_module.Metrics(sio)
    url = serve(sio)
    _admin, events = connect_admin(clients, url)
    client = clients()
    client.connect(url)
    assert client.call('echo', 'x') == 'x'
    events.wait('event_received', lambda a: a[2] == ['echo', 'x'])
    wait_until(lambda: metrics.events_received.get('/') == 1, what='the metrics count')
    metrics.close()
    sio.shutdown()
