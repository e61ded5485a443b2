"""The Server API over real sockets, driven by python-socketio's client."""

import logging
import threading

import pytest
import socketio as psio
from e2e_helpers import wait_until

import greensio
from greensio import exceptions

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def client():
    clients = []

    def make(url, **kwargs):
        c = psio.Client(reconnection=False)
        handlers = kwargs.pop('handlers', {})
        for event, fn in handlers.items():
            if isinstance(event, tuple):
                c.on(event[0], fn, namespace=event[1])
            else:
                c.on(event, fn)
        c.connect(url, wait_timeout=5, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.disconnect()



def test_catch_all_event_and_namespace(serve, client):
    sio = greensio.Server(namespaces='*')
    seen = []

    @sio.on('*')
    def any_event(event, sid, *args):
        seen.append(('root', event, args))
        return 'root-ack'

    @sio.on('*', namespace='*')
    def any_namespace(event, namespace, sid, *args):
        seen.append((namespace, event, args))
        return 'ns-ack'

    url = serve(sio)
    c = client(url, namespaces=['/', '/other'])
    assert c.call('hello', 1) == 'root-ack'
    assert c.call('hey', (1, 2), namespace='/other') == 'ns-ack'
    assert seen == [('root', 'hello', (1,)), ('/other', 'hey', (1, 2))]


def test_sessions_environ_transport_rooms(serve, client):
    sio = greensio.Server()

    @sio.event
    def connect(sid, environ):
        with sio.session(sid) as session:
            session['user'] = 'ada'

    @sio.on('whoami')
    def whoami(sid):
        environ = sio.get_environ(sid)
        return {
            'user': sio.get_session(sid)['user'],
            'path': environ['PATH_INFO'],
            'transport': sio.transport(sid),
            'rooms': sorted(sio.rooms(sid)),
            'sid': sid,
        }

    url = serve(sio)
    c = client(url, transports=['websocket'])
    info = c.call('whoami')
    assert info['user'] == 'ada'
    assert info['path'] == '/socket.io/'
    assert info['transport'] == 'websocket'
    assert info['rooms'] == [info['sid']]
    assert info['sid'] == c.get_sid()


def test_emit_to_list_of_rooms_and_skip_sid_list(serve, client):
    sio = greensio.Server()

    @sio.on('join')
    def join(sid, room):
        sio.enter_room(sid, room)
        return sid

    url = serve(sio)
    inbox = {n: [] for n in 'abc'}
    clients = {}
    for name in 'abc':
        clients[name] = client(url, handlers={'news': lambda data, n=name: inbox[n].append(data)})
    sids = {n: clients[n].call('join', 'r1' if n != 'c' else 'r2') for n in 'abc'}
    sio.emit('news', 1, to=['r1', 'r2'])
    sio.emit('news', 2, room='r1', skip_sid=[sids['a']])
    sio.emit('news', 3, skip_sid=[sids['a'], sids['b']])
    assert wait_until(lambda: inbox == {'a': [1], 'b': [1, 2], 'c': [1, 3]}), inbox
    sio.close_room('r1')
    sio.emit('news', 4, to='r1')
    sio.emit('news', 5, to=sids['c'])
    assert wait_until(lambda: inbox['c'] == [1, 3, 5]), inbox
    assert inbox['a'] == [1] and inbox['b'] == [1, 2]


def test_call_blocks_only_the_calling_greenlet_and_times_out(serve, client):
    sio = greensio.Server()
    results = []

    @sio.on('ask')
    def ask(sid, question):
        try:
            results.append(sio.call('question', question, to=sid, timeout=1))
        except exceptions.TimeoutError:
            results.append('timeout')

    url = serve(sio)
    c = client(url, handlers={'question': lambda q: None if q == 'silent' else (q, q * 2)})
    c.emit('ask', 3)
    assert wait_until(lambda: results == [(3, 6)])
    with pytest.raises(ValueError):
        sio.call('x')
    with pytest.raises(exceptions.TimeoutError):  # nobody there to answer
        sio.call('anything', to='no-such-sid', timeout=0.2)


def test_server_disconnect_and_reasons(serve, client):
    sio = greensio.Server()
    reasons = []

    @sio.event
    def disconnect(sid, reason):
        reasons.append(reason)

    @sio.on('kick')
    def kick(sid):
        sio.disconnect(sid)

    url = serve(sio)
    gone = threading.Event()
    c = client(url, handlers={'disconnect': lambda *a: gone.set()})
    c.emit('kick')
    assert gone.wait(5)
    assert wait_until(lambda: reasons == [sio.reason.SERVER_DISCONNECT])


def test_legacy_handlers_without_auth_or_reason(serve, client):
    sio = greensio.Server()
    calls = []

    @sio.event
    def connect(sid, environ):
        calls.append('connect')

    @sio.event
    def disconnect(sid):
        calls.append('disconnect')

    url = serve(sio)
    c = client(url, auth={'token': 'x'})
    c.disconnect()
    assert wait_until(lambda: calls == ['connect', 'disconnect'])


def test_always_connect_refusal_becomes_disconnect(serve):
    sio = greensio.Server(always_connect=True)

    @sio.event
    def connect(sid, environ, auth):
        sio.emit('early', 'hi', to=sid)
        return False

    url = serve(sio)
    got = []
    c = psio.Client(reconnection=False)
    c.on('early', lambda data: got.append(data))
    c.on('disconnect', lambda *a: got.append('disconnect'))
    c.connect(url, wait_timeout=2)
    # accepted first, so the handler's emit arrives, then taken back
    assert wait_until(lambda: got == ['hi', 'disconnect']), got


def test_msgpack_serializer(serve, client):
    sio = greensio.Server(serializer='msgpack')
    sio.on('echo', lambda sid, *args: args)
    url = serve(sio)
    c = psio.Client(reconnection=False, serializer='msgpack')
    c.connect(url, wait_timeout=5)
    try:
        assert c.call('echo', (1, b'\x00\xff', {'k': [1.5]})) == (1, b'\x00\xff', {'k': [1.5]})
    finally:
        c.disconnect()


def test_msgpack_serializer_configured_for_a_custom_type(serve):
    from decimal import Decimal

    import msgpack

    from greensio.msgpack_packet import MsgPackPacket

    def default(obj):
        if isinstance(obj, Decimal):
            return msgpack.ExtType(1, str(obj).encode())
        raise TypeError(f'cannot pack {obj!r}')

    def ext_hook(code, data):
        return Decimal(data.decode()) if code == 1 else msgpack.ExtType(code, data)

    packet_class = MsgPackPacket.configure(dumps_default=default, ext_hook=ext_hook)
    sio = greensio.Server(serializer=packet_class)
    seen = []
    sio.on('echo', lambda sid, value: (seen.append(value), value)[1])
    url = serve(sio)
    c = greensio.Client(reconnection=False, serializer=packet_class)
    c.connect(url, transports=['websocket'], wait_timeout=5)
    try:
        assert c.call('echo', {'price': Decimal('19.99')}, timeout=5) == {'price': Decimal('19.99')}
        assert seen == [{'price': Decimal('19.99')}]
    finally:
        c.disconnect()


def test_wsgi_app_static_files_and_wrapped_app(serve, tmp_path):
    import requests

    page = tmp_path / 'index.html'
    page.write_text('<h1>hello</h1>')

    def fallback(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'from flask-like app']

    sio = greensio.Server()
    url = serve(greensio.WSGIApp(sio, fallback, static_files={'/': str(page)}, socketio_path='rt'))
    assert requests.get(url + '/').text == '<h1>hello</h1>'
    assert requests.get(url + '/anything').text == 'from flask-like app'
    handshake = requests.get(url + '/rt/?EIO=4&transport=polling')
    assert handshake.status_code == 200 and handshake.text.startswith('0{')
    c = psio.Client(reconnection=False)
    c.connect(url, socketio_path='rt', wait_timeout=5)
    assert c.connected
    c.disconnect()


def test_logger_options():
    own = logging.getLogger('greensio-test-own')
    assert greensio.Server(logger=own).logger is own
    assert greensio.Server(logger=True).logger.name == 'socketio.server'
    sio = greensio.Server(engineio_logger=own)
    assert sio.eio.logger is own


def test_register_namespace_type_checks():
    sio = greensio.Server()
    with pytest.raises(ValueError):
        sio.register_namespace(object())
    ns = greensio.Namespace('/x')
    sio.register_namespace(ns)
    assert ns.server is sio and sio.namespace_handlers['/x'] is ns


def test_emit_and_call_from_a_native_thread(serve, client):
    from gevent.monkey import get_original

    start_new_thread = get_original('_thread', 'start_new_thread')
    sio = greensio.Server()
    url = serve(sio)
    got = []
    sid = client(url, handlers={'from_thread': lambda data: got.append(data), 'question': lambda n: n + 1}).get_sid()
    outcome = []

    def native():  # an OS thread: the emit runs in the hub, its error comes back here
        sio.emit('from_thread', 'native')
        outcome.append(sio.call('question', 41, to=sid, timeout=5))
        try:
            sio.emit('from_thread', object())
        except TypeError as exc:
            outcome.append(exc)

    start_new_thread(native, ())
    assert wait_until(lambda: got == ['native'] and len(outcome) == 2)
    assert outcome[0] == 42


def test_ordered_handlers_keep_each_clients_order(serve, client):
    import random

    import gevent

    sio = greensio.Server(async_handlers='ordered')
    done = []

    @sio.on('work')
    def work(sid, n):
        gevent.sleep(random.random() * 0.01)
        done.append((sid, n))

    @sio.on('block')
    def block(sid):
        gevent.sleep(0.5)
        done.append((sid, 'block'))

    url = serve(sio)
    a, b = client(url), client(url)
    a.emit('block')
    for n in range(20):
        b.emit('work', n)
    for n in range(20, 25):
        a.emit('work', n)
    assert wait_until(lambda: len(done) == 26)
    b_sid, a_sid = b.get_sid(), a.get_sid()
    assert [n for sid, n in done if sid == b_sid] == list(range(20))
    assert [n for sid, n in done if sid == a_sid] == ['block', 20, 21, 22, 23, 24]
    # b's events did not wait for a's blocked handler
    assert done.index((b_sid, 19)) < done.index((a_sid, 'block'))


def test_a_timed_out_call_leaves_no_callback_behind(serve):
    import rawclient

    sio = greensio.Server()
    url = serve(sio)
    silent, sid = rawclient.connect_sio(url)  # never acks anything
    try:
        for _ in range(3):
            with pytest.raises(exceptions.TimeoutError):
                sio.call('question', to=sid, timeout=0.05)
        assert not sio.manager.callbacks.get(sid)
    finally:
        silent.close()


@pytest.mark.parametrize(('cookie', 'expected'), [
    ('io', 'io={sid}; path=/; SameSite=Lax'),
    ({'name': 'sess', 'path': '/app', 'HttpOnly': True}, 'sess={sid}; path=/app; HttpOnly'),
    (None, None),
])
def test_session_cookie_option(serve, cookie, expected):
    import json

    import rawclient

    url = serve(greensio.Server(cookie=cookie))
    r = rawclient.get(url, {'EIO': 4, 'transport': 'polling'})
    sid = json.loads(r.text[1:])['sid']
    assert r.headers.get('set-cookie') == (expected.format(sid=sid) if expected else None)


THREADING_SERVER = r'''
import sys, threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
import requests
import greensio

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

class Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True

server = make_server('127.0.0.1', 0, greensio.WSGIApp(greensio.Server(**OPTIONS)), server_class=Threading,
                     handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
r = requests.get(f'http://127.0.0.1:{server.server_port}/socket.io/?EIO=4&transport=polling', timeout=5)
print(r.status_code)
'''


def run_threading_server(tmp_path, options):
    import subprocess
    import sys

    script = tmp_path / 'threading_server.py'
    script.write_text(f'OPTIONS = {options!r}\n' + THREADING_SERVER)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize('options', [{}, {'async_mode': None}], ids=['default', 'async_mode=None'])
def test_a_threading_server_without_gevent_gets_a_clear_error(tmp_path, options):
    # gevent mode served from plain OS threads ('flask run' unpatched, Django's
    # runserver) would hang every request
    out = run_threading_server(tmp_path, options)
    assert out.stdout.strip() == '500', out.stdout + out.stderr
    assert "greensio's gevent mode needs a gevent server" in out.stderr
    # the fix that keeps the threading server is named too
    assert "greensio.Server(async_mode='threading')" in out.stderr


def test_a_threading_server_with_async_mode_threading_works(tmp_path):
    out = run_threading_server(tmp_path, {'async_mode': 'threading'})
    assert out.stdout.strip() == '200', out.stdout + out.stderr


#: Just enough of eventlet for python-engineio's eventlet driver to import.
FAKE_EVENTLET = {
    'eventlet/__init__.py': 'from . import queue  # noqa: F401\n\ndef sleep(*args):\n    pass\n\ndef spawn(*args):\n    pass\n',
    'eventlet/queue.py': 'from queue import Empty, Queue  # noqa: F401\n',
    'eventlet/green/__init__.py': '',
    'eventlet/green/threading.py': 'from threading import Event  # noqa: F401\n',
    'eventlet/websocket.py': 'class WebSocketWSGI:\n    pass\n',
}

ASYNC_MODE_NONE = r'''
import sys
import flask
import greensio
from greensio.flask import SocketIO
modes = [greensio.Server().async_mode, greensio.Server(async_mode=None).async_mode,
         SocketIO(flask.Flask('app'), async_mode=None).server.async_mode]
greensio.Client()
assert 'eventlet' not in sys.modules, 'greensio imported eventlet'
import engineio
modes.append(engineio.Server().async_mode)  # python-engineio's own choice: the importable eventlet
print(' '.join(modes))
'''


def test_async_mode_none_means_gevent_even_when_eventlet_is_importable(tmp_path):
    import os
    import subprocess
    import sys

    for path, text in FAKE_EVENTLET.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), root, os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, '-c', ASYNC_MODE_NONE], capture_output=True, text=True, timeout=60,
                         env=env, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ['gevent', 'gevent', 'gevent', 'eventlet']
