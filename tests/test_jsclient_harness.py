"""Self-test of the socket.io-client harness (tests/jsclient.py) against the
reference python-socketio server, run in-process under gevent."""
import gevent.monkey

if not gevent.monkey.is_module_patched('socket'):
    gevent.monkey.patch_all()

import gevent
import pytest
import socketio
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

try:  # tests/ on sys.path (rootdir-less layout) or tests as a package
    from jsclient import JSClient, from_js, jsclients, skip_reason, to_js
except ImportError:  # pragma: no cover
    from tests.jsclient import JSClient, from_js, jsclients, skip_reason, to_js

pytestmark = [
    pytest.mark.skipif(skip_reason() is not None,
                       reason=skip_reason() or ''),
    pytest.mark.timeout(30),
]


class RefServer:
    """python-socketio server on gevent's pywsgi + gevent-websocket."""

    def __init__(self):
        self.sio = socketio.Server(async_mode='gevent', ping_interval=5,
                                   ping_timeout=5)
        self.received = []
        self.connected = {}
        self._setup()
        self.http = WSGIServer(('127.0.0.1', 0), socketio.WSGIApp(self.sio),
                               handler_class=WebSocketHandler, log=None)
        self.http.start()
        self.url = f'http://127.0.0.1:{self.http.server_port}'

    def _setup(self):
        sio = self.sio

        @sio.event
        def connect(sid, environ, auth):
            if auth and auth.get('refuse'):
                raise socketio.exceptions.ConnectionRefusedError(
                    'not allowed', {'code': 4001, 'why': auth['refuse']})
            self.connected[sid] = auth

        @sio.event
        def disconnect(sid, reason=None):
            self.connected.pop(sid, None)

        @sio.event
        def echo(sid, *args):
            self.received.append(('echo', sid, args))
            return args

        @sio.event
        def count(sid, i):
            self.received.append(('count', sid, i))

        @sio.event
        def push(sid, event, *args):
            # ask the server to emit back to this client
            sio.emit(event, list(args), to=sid)

        @sio.on('connect', namespace='/chat')
        def chat_connect(sid, environ, auth):
            self.connected[('chat', sid)] = auth

        @sio.on('say', namespace='/chat')
        def chat_say(sid, text):
            sio.emit('said', {'text': text, 'ns': '/chat'}, to=sid,
                     namespace='/chat')
            return 'ok:' + text

    def wait_for(self, predicate, timeout=5):
        with gevent.Timeout(timeout):
            while not predicate():
                gevent.sleep(0.01)

    def stop(self):
        self.http.stop(timeout=1)


@pytest.fixture
def server():
    s = RefServer()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def make_js():
    with jsclients() as make:
        yield make


@pytest.fixture
def js(make_js):
    return make_js()


def test_binary_helpers():
    value = {'a': [b'\x00\x01', 1, {'b': bytearray(b'x')}], 'c': 'str'}
    enc = to_js(value)
    assert enc == {'a': [{'$bin': 'AAE='}, 1, {'b': {'$bin': 'eA=='}}],
                   'c': 'str'}
    assert from_js(enc) == {'a': [b'\x00\x01', 1, {'b': b'x'}], 'c': 'str'}


def test_websocket_only(server, js):
    msg = js.connect(server.url, transports=['websocket'], wait=True)
    assert msg['type'] == 'connect'
    assert msg['transport'] == 'websocket'
    server.wait_for(lambda: msg['id'] in server.connected)
    assert js.call('echo', 'hello', 42, {'x': [1, 2]}) == \
        ['hello', 42, {'x': [1, 2]}]
    js.disconnect()
    assert js.wait_for('disconnect')['reason'] == 'io client disconnect'
    server.wait_for(lambda: msg['id'] not in server.connected)


def test_polling_only(server, js):
    msg = js.connect(server.url, transports=['polling'], wait=True)
    assert msg['type'] == 'connect'
    assert msg['transport'] == 'polling'
    assert js.call('echo', 'via polling') == ['via polling']
    js.emit('push', 'news', 1, 'two')
    ev = js.wait_event('news')
    assert ev['args'] == [[1, 'two']]
    assert 'ack_requested' not in ev


def test_upgrade(server, js):
    msg = js.connect(server.url, wait=True)
    # the engine opens on polling; the websocket probe may finish before the
    # namespace CONNECT reply arrives, so either name can be reported here
    assert msg['transport'] in ('polling', 'websocket')
    assert js.wait_for('upgrade')['transport'] == 'websocket'
    assert js.state()['transport'] == 'websocket'
    assert js.call('echo', 'after upgrade') == ['after upgrade']


def test_server_to_client_ack(server, js):
    sid = js.connect(server.url, transports=['websocket'], wait=True)['id']
    assert server.sio.call('question', {'q': 1}, to=sid, timeout=5) == \
        {'q': 1}
    ev = js.wait_event('question')
    assert ev['ack_requested'] is True and ev['args'] == [{'q': 1}]

    # explicit ack value, several args -> python-socketio returns a tuple
    js.ack_mode('echo', args=['a', b'\x02'])
    assert server.sio.call('question', 1, to=sid, timeout=5) == ('a', b'\x02')

    js.ack_mode('delay', delay_ms=200)
    assert server.sio.call('question', 'slow', to=sid, timeout=5) == 'slow'

    js.ack_mode('none')
    with pytest.raises(socketio.exceptions.TimeoutError):
        server.sio.call('question', 'never', to=sid, timeout=0.3)


def test_binary_both_ways(server, js):
    js.connect(server.url, transports=['websocket'], wait=True)
    payload = bytes(range(256))
    resp = js.call('echo', payload, {'nested': [b'\x00', 'text']})
    assert resp == [payload, {'nested': [b'\x00', 'text']}]
    assert server.received[-1][2] == (payload, {'nested': [b'\x00', 'text']})
    js.emit('push', 'blob', b'\xff\xfe', {'k': b'v'})
    assert js.wait_event('blob')['args'] == [[b'\xff\xfe', {'k': b'v'}]]


def test_binary_polling(server, js):
    js.connect(server.url, transports=['polling'], wait=True)
    assert js.call('echo', b'\x00\x01\x02') == [b'\x00\x01\x02']
    js.emit('push', 'blob', b'\x03')
    assert js.wait_event('blob')['args'] == [[b'\x03']]


def test_custom_namespace(server, js):
    main = js.connect(server.url + '/', transports=['websocket'], wait=True)
    chat = js.connect(server.url + '/chat', sock='chat',
                      transports=['websocket'], auth={'user': 'bob'},
                      wait=True)
    assert chat['type'] == 'connect' and chat['sock'] == 'chat'
    # multiplexed over one connection: namespace sids differ
    assert chat['id'] != main['id']
    assert server.connected[('chat', chat['id'])] == {'user': 'bob'}
    assert js.call('say', 'hi', sock='chat') == ['ok:hi']
    ev = js.wait_event('said', sock='chat')
    assert ev['args'] == [{'text': 'hi', 'ns': '/chat'}]
    assert js.events(sock='default') == []


def test_refused_connection(server, js):
    msg = js.connect(server.url, transports=['websocket'],
                     auth={'refuse': 'testing'}, reconnection=False,
                     wait=True)
    assert msg['type'] == 'connect_error'
    assert msg['message'] == 'not allowed'
    assert msg['data'] == {'code': 4001, 'why': 'testing'}


def test_emit_many_in_order(server, js):
    js.connect(server.url, transports=['websocket'], wait=True)
    js.emit_many('count', 200)
    server.wait_for(lambda: len(server.received) == 200)
    assert [r[2] for r in server.received] == list(range(200))


def test_ack_timeout(server, js):
    js.connect(server.url, transports=['websocket'], wait=True)
    # no handler for this event -> python-socketio sends no ack
    cid = js.emit('unhandled', 1, ack=True, timeout_ms=200)
    assert js.wait_ack(cid)['type'] == 'ack_timeout'


def test_reconnect_after_engine_close(server, js):
    first = js.connect(server.url, transports=['websocket'],
                       reconnectionDelay=50, reconnectionDelayMax=100,
                       wait=True)
    js.close_engine()
    assert js.wait_for('disconnect')['reason'] == 'forced close'
    js.wait_for('reconnect')
    second = js.wait_for('connect')
    assert second['id'] != first['id']
    assert js.call('echo', 'back') == ['back']


def test_driver_errors_are_reported(make_js):
    js = make_js()
    with pytest.raises(AssertionError, match='unknown sock'):
        js.emit('x', sock='missing')
    with pytest.raises(AssertionError, match='timed out'):
        js.wait_for('never', timeout=0.1)


def test_context_manager_and_stdin_close(server):
    with JSClient() as js:
        js.connect(server.url, transports=['websocket'], wait=True)
        server.wait_for(lambda: len(server.connected) == 1)
    assert js.returncode == 0
    server.wait_for(lambda: not server.connected)
