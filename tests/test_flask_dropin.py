"""greensio.flask as a drop-in for Flask-SocketIO 5.x.

Each test states one documented Flask-SocketIO behaviour (getting started,
API reference, deployment, implementation notes, its test client) and checks
it through greensio's test client; the last tests run the same app over real
sockets (127.0.0.1, port 0) with the JavaScript client.  Only the import line
would differ in an app written for Flask-SocketIO.
"""

import logging
import os
import subprocess
import sys
import textwrap
import time

import flask
import gevent
import pytest
import requests
from e2e_helpers import wait_until
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SessionInterface, SessionMixin

from greensio.flask import (
    ConnectionRefusedError,
    Namespace,
    SocketIO,
    SocketIOTestClient,
    close_room,
    disconnect,
    emit,
    join_room,
    leave_room,
    rooms,
    send,
)

try:
    from jsclient import jsclients, skip_reason
except ImportError:  # pragma: no cover
    from tests.jsclient import jsclients, skip_reason

pytestmark = pytest.mark.timeout(30)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Money:
    """A type only the app's JSON provider knows how to encode."""

    def __init__(self, cents):
        self.cents = cents


class MoneyJSON(DefaultJSONProvider):
    @staticmethod
    def default(o):
        if isinstance(o, Money):
            return {'cents': o.cents}
        return DefaultJSONProvider.default(o)


class Chat(Namespace):
    """A class-based namespace using every helper it inherits."""

    def on_connect(self, auth):
        self.enter_room(flask.request.sid, 'lobby')
        self.emit('hello', {'sid': flask.request.sid, 'auth': auth}, room=flask.request.sid)

    def on_disconnect(self, reason):
        flask.current_app.config['CHAT_GONE'].append(reason)

    def on_say(self, text):
        self.send(text, room='lobby', include_self=False)
        return 'said'

    def on_part(self):
        self.leave_room(flask.request.sid, 'lobby')

    def on_close_lobby(self):
        self.close_room('lobby')

    def on_rooms(self):
        return sorted(self.rooms(flask.request.sid))

    def on_fail(self):
        raise LookupError('from a namespace')

    def error(self, exc):
        return f'namespace error: {exc.args[0]}'


def build_app(**options):
    """The Flask-SocketIO app of these tests; only its import line is greensio's."""
    app = flask.Flask(__name__)
    app.config['SECRET_KEY'] = 'drop-in'
    app.config['CHAT_GONE'] = []
    app.json = MoneyJSON(app)
    socketio = SocketIO(app, json=flask.json, **options)
    seen = app.config['SEEN'] = {}

    @app.route('/login/<name>')
    def login(name):
        flask.session['user'] = name
        return 'welcome ' + name

    @socketio.on('connect')
    def on_connect(auth):
        if auth and auth.get('refuse'):
            raise ConnectionRefusedError('refused', {'why': auth['refuse']})
        if auth and auth.get('false'):
            return False
        seen['args'] = flask.request.args.to_dict()
        emit('welcome', {'user': flask.session.get('user')})
        return None

    @socketio.on('message')
    def on_message(data):
        send(data)

    @socketio.on('json')
    def on_json(data):
        send(data, json=True)

    @socketio.event
    def whoami():
        return {'sid': flask.request.sid, 'namespace': flask.request.namespace,
                'user': flask.session.get('user')}

    @socketio.on('three')
    def three(a, b, c):
        emit('three', (a, b, c))  # a tuple: several arguments
        return a, b, c

    @socketio.on('shout')
    def shout(text):
        emit('shouted', text, broadcast=True, include_self=False)

    @socketio.on('join')
    def on_join(room):
        join_room(room)
        send(f'joined {room}', to=room)
        return sorted(rooms())

    @socketio.on('leave')
    def on_leave(room):
        leave_room(room)

    @socketio.on('close')
    def on_close(room):
        close_room(room)

    @socketio.on('kick_me')
    def kick_me():
        disconnect()

    @socketio.on('boom')
    def boom(data):
        raise ValueError(f'boom {data}')

    @socketio.on('unhandled', namespace='/strict')
    def unhandled():
        raise KeyError('nobody handles this')

    @socketio.on_error()
    def root_error(exc):
        return {'error': str(exc), 'event': flask.request.event['message'],
                'args': list(flask.request.event['args'])}

    @socketio.on('price')
    def price():
        return Money(250)

    @socketio.on('where', namespace='*')
    def where(data):
        return [flask.request.namespace, data]

    socketio.on_namespace(Chat('/chat'))
    return app, socketio


# -- imports and the test client ---------------------------------------------------------------


def test_flask_socketio_names_import_from_greensio_flask():
    import greensio.flask as gf

    for name in ('SocketIO', 'Namespace', 'SocketIOTestClient', 'ConnectionRefusedError', 'emit', 'send',
                 'join_room', 'leave_room', 'close_room', 'rooms', 'disconnect'):
        assert hasattr(gf, name), name
    app, socketio = build_app()
    assert isinstance(socketio.test_client(app), SocketIOTestClient)
    assert socketio.reason.CLIENT_DISCONNECT == 'client disconnect'


def test_refusals_with_connection_refused_error_or_false():
    app, socketio = build_app()
    refused = socketio.test_client(app, auth={'refuse': 'banned'})
    assert not refused.is_connected()
    assert refused.connect_errors['/'] == {'message': 'refused', 'data': {'why': 'banned'}}
    assert not socketio.test_client(app, auth={'false': True}).is_connected()


def test_get_received_gives_message_and_json_payloads_as_they_are():
    app, socketio = build_app()
    client = socketio.test_client(app)
    client.get_received()
    client.send('connected')
    client.send({'a': [1, 2]}, json=True)
    client.emit('three', 1, 'two', [3])
    assert client.get_received() == [
        {'name': 'message', 'args': 'connected', 'namespace': '/'},
        {'name': 'json', 'args': {'a': [1, 2]}, 'namespace': '/'},
        {'name': 'three', 'args': [1, 'two', [3]], 'namespace': '/'},
    ]


def test_request_args_hold_only_the_test_query_string():
    app, socketio = build_app()
    socketio.test_client(app, query_string='token=abc&x=1')
    assert app.config['SEEN']['args'] == {'token': 'abc', 'x': '1'}
    socketio.test_client(app, query_string='?token=def')
    assert app.config['SEEN']['args'] == {'token': 'def'}
    socketio.test_client(app)
    assert app.config['SEEN']['args'] == {}


def test_client_emit_accepts_and_ignores_server_side_keywords():
    app, socketio = build_app()
    a, b = socketio.test_client(app), socketio.test_client(app)
    a.get_received(), b.get_received()
    a.emit('shout', 'hi', broadcast=True)
    a.send('plain', broadcast=True, to='nobody')
    assert b.get_received() == [{'name': 'shouted', 'args': ['hi'], 'namespace': '/'}]


def test_client_emit_ack_values():
    app, socketio = build_app()
    client = socketio.test_client(app)
    assert client.emit('three', 1, 2, 3, callback=True) == [1, 2, 3]
    assert client.emit('whoami', callback=True)['sid'] == client.sid
    assert client.emit('leave', 'r', callback=True) == []  # no return value: an empty ack
    assert client.emit('leave', 'r') is None  # no ack asked for
    assert client.emit('price', callback=True) == {'cents': 250}


def test_connect_disconnect_namespaces_and_get_received_per_namespace():
    app, socketio = build_app()
    client = socketio.test_client(app, namespace='/chat', auth={'token': 1})
    assert client.is_connected('/chat') and not client.is_connected()
    hello = client.get_received('/chat')
    assert hello == [{'name': 'hello', 'args': [{'sid': client.get_sid('/chat'), 'auth': {'token': 1}}],
                      'namespace': '/chat'}]
    client.connect()
    assert client.is_connected() and client.get_received()[0]['name'] == 'welcome'
    client.disconnect('/chat')
    assert not client.is_connected('/chat') and client.is_connected()
    assert app.config['CHAT_GONE'] == [socketio.reason.CLIENT_DISCONNECT]
    client.disconnect()
    assert not client.is_connected()
    with pytest.raises(RuntimeError):
        client.emit('whoami')


def test_flask_test_client_cookies_and_managed_session():
    app, socketio = build_app()
    http = app.test_client()
    http.get('/login/ann')
    client = socketio.test_client(app, flask_test_client=http)
    assert client.get_received() == [{'name': 'welcome', 'args': [{'user': 'ann'}], 'namespace': '/'}]
    assert client.emit('whoami', callback=True)['user'] == 'ann'


# -- handlers ----------------------------------------------------------------------------------


def test_catch_all_namespace_handler_takes_the_data_and_reads_request_namespace():
    app, socketio = build_app(namespaces='*')
    client = socketio.test_client(app, namespace='/anywhere')
    assert client.emit('where', 42, namespace='/anywhere', callback=True) == ['/anywhere', 42]


def test_handler_exception_propagates_out_of_the_test_client():
    app, socketio = build_app()
    client = socketio.test_client(app, namespace='/strict')
    with pytest.raises(KeyError, match='nobody handles this'):
        client.emit('unhandled', namespace='/strict')
    # the connection carries on, as the server's does
    assert client.is_connected('/strict')

    @socketio.on('connect', namespace='/broken')
    def broken():
        raise RuntimeError('connect failed')

    with pytest.raises(RuntimeError, match='connect failed'):
        client.connect('/broken')
    assert not client.is_connected('/broken')

    @socketio.on_error('/strict')
    def strict_error(exc):
        raise TypeError('the error handler failed too')

    with pytest.raises(TypeError, match='failed too'):
        client.emit('unhandled', namespace='/strict')


def test_error_handlers_and_request_event():
    app, socketio = build_app()
    client = socketio.test_client(app)
    assert client.emit('boom', 'x', callback=True) == {'error': 'boom x', 'event': 'boom', 'args': ['x']}
    chat = socketio.test_client(app, namespace='/chat')
    assert chat.emit('fail', namespace='/chat', callback=True) == 'namespace error: from a namespace'

    @socketio.on_error_default
    def default_error(exc):
        return ['default', flask.request.namespace, type(exc).__name__]

    strict = socketio.test_client(app, namespace='/strict')
    assert strict.emit('unhandled', namespace='/strict', callback=True) == ['default', '/strict', 'KeyError']


def test_class_based_namespace_helpers():
    app, socketio = build_app()
    a = socketio.test_client(app, namespace='/chat')
    b = socketio.test_client(app, namespace='/chat')
    a.get_received('/chat'), b.get_received('/chat')
    assert a.emit('rooms', namespace='/chat', callback=True) == sorted([a.get_sid('/chat'), 'lobby'])
    assert a.emit('say', 'hi all', namespace='/chat', callback=True) == 'said'
    assert b.get_received('/chat') == [{'name': 'message', 'args': 'hi all', 'namespace': '/chat'}]
    assert a.get_received('/chat') == []
    b.emit('part', namespace='/chat')
    a.emit('say', 'again', namespace='/chat')
    assert b.get_received('/chat') == []
    b.emit('close_lobby', namespace='/chat')
    assert a.emit('rooms', namespace='/chat', callback=True) == [a.get_sid('/chat')]


def test_a_function_handler_wins_over_the_namespace_method():
    app, socketio = build_app()

    @socketio.on('rooms', namespace='/chat')
    def chat_rooms():
        return 'function'

    client = socketio.test_client(app, namespace='/chat')
    assert client.emit('rooms', namespace='/chat', callback=True) == 'function'
    assert client.emit('say', 'x', namespace='/chat', callback=True) == 'said'


def test_rooms_and_disconnect_from_a_handler():
    app, socketio = build_app()
    a, b = socketio.test_client(app), socketio.test_client(app)
    a.get_received(), b.get_received()
    assert a.emit('join', 'r', callback=True) == sorted(['r', a.sid])
    b.emit('join', 'r')
    assert a.get_received() == [{'name': 'message', 'args': 'joined r', 'namespace': '/'}] * 2
    b.emit('kick_me')
    assert not b.is_connected() and a.is_connected()


class ServerSession(dict, SessionMixin):
    def __init__(self, key, data):
        super().__init__(data)
        self.key = key
        self.modified = False

    def __setitem__(self, name, value):
        super().__setitem__(name, value)
        self.modified = True


class ServerSideSessions(SessionInterface):
    """What Flask-Session does: the cookie holds a key, the data lives on the server."""

    def __init__(self):
        self.store = {}

    def open_session(self, app, request):
        key = request.cookies.get('sk') or f'k{len(self.store)}'
        return ServerSession(key, self.store.get(key, {}))

    def save_session(self, app, session, response):
        self.store[session.key] = dict(session)
        response.set_cookie('sk', session.key)


def build_server_session_app(**options):
    app, socketio = build_app(manage_session=False, **options)
    app.session_interface = ServerSideSessions()

    @app.route('/visits')
    def visits():
        return str(flask.session.get('visits', 0))

    @socketio.on('visit')
    def visit():
        flask.session['visits'] = flask.session.get('visits', 0) + 1
        return flask.session['visits']

    return app, socketio


def test_unmanaged_session_saves_to_a_server_side_session():
    app, socketio = build_server_session_app()
    http = app.test_client()
    http.get('/login/zoe')
    client = socketio.test_client(app, flask_test_client=http)
    client.emit('visit')
    client.emit('visit')
    assert http.get('/visits').get_data(as_text=True) == '2'  # HTTP sees what Socket.IO saved
    assert client.emit('whoami', callback=True)['user'] == 'zoe'


def test_always_connect_emits_from_connect_and_refusal_disconnects():
    app, socketio = build_app(always_connect=True)
    client = socketio.test_client(app)
    assert client.get_received() == [{'name': 'welcome', 'args': [{'user': None}], 'namespace': '/'}]
    assert not socketio.test_client(app, auth={'false': True}).is_connected()


def test_json_option_uses_the_app_json_provider_everywhere():
    app, socketio = build_app()
    client = socketio.test_client(app)
    client.get_received()
    socketio.emit('price', Money(99))  # no app context here
    assert client.get_received() == [{'name': 'price', 'args': [{'cents': 99}], 'namespace': '/'}]


def test_ack_callback_runs_in_the_emitting_client_context():
    app, socketio = build_app()
    acks = []

    @socketio.on('ask')
    def ask():
        def answered(*args):
            acks.append((flask.request.sid, flask.session.get('user'), flask.request.event, args))

        emit('question', 'ready?', callback=answered)

    http = app.test_client()
    http.get('/login/kim')
    client = socketio.test_client(app, flask_test_client=http)
    client.on('question', lambda text: 'yes')
    client.emit('ask')
    assert acks == [(client.sid, 'kim', {'message': None, 'args': ('yes',)}, ('yes',))]


# -- server-side API ---------------------------------------------------------------------------


def test_send_positional_callback_and_call_to_a_room():
    app, socketio = build_app()
    client = socketio.test_client(app)
    client.on('message', lambda data: 'got ' + data)
    client.on('quiz', lambda question: 42)
    acks = []
    # Flask-SocketIO's order: data, json, namespace, to, callback
    socketio.send('ping', False, '/', client.sid, acks.append)
    assert acks == ['got ping']
    assert socketio.call('quiz', 'six times seven?', room=client.sid, timeout=1) == 42


def test_server_options_keep_the_queue_manager():
    url = 'redis://127.0.0.1:1/0'  # never connected: a write-only emitter publishes only on emit
    external = SocketIO(message_queue=url, channel='drop-in')
    manager = external.server.manager
    assert external.server_options['client_manager'] is manager
    assert external.server_options['message_queue'] == url
    assert 'channel' not in external.server_options and 'manage_session' not in external.server_options
    assert manager.channel == 'drop-in' and manager.write_only
    with pytest.raises(ValueError, match='Kafka'):
        SocketIO(message_queue='kafka://127.0.0.1:9092')
    # an app factory's manager, given before init_app(), is the one used
    from greensio.testing import InMemoryPubSubManager

    mine = InMemoryPubSubManager(write_only=True)
    factory = SocketIO(message_queue=url, client_manager=mine)
    assert factory.server.manager is mine and factory.server_options['client_manager'] is mine


def test_redis_manager_needs_the_redis_package_only_to_connect(monkeypatch):
    import greensio

    monkeypatch.setitem(sys.modules, 'redis', None)  # import redis -> ImportError
    manager = greensio.RedisManager('redis://127.0.0.1:1/0', write_only=True)
    with pytest.raises(RuntimeError, match='pip install redis'):
        manager._module  # noqa: B018 - what connecting does first
    socketio = SocketIO(message_queue='redis://127.0.0.1:1/0')
    assert type(socketio.server.manager).__name__ == 'RedisManager'


@pytest.mark.parametrize('mode', ['eventlet', 'gevent_uwsgi', 'asyncio'])
def test_async_modes_greensio_does_not_serve_are_refused(mode):
    with pytest.raises(ValueError, match=f"async_mode='{mode}' is not supported"):
        SocketIO(flask.Flask(__name__), async_mode=mode)


@pytest.mark.parametrize('mode', [None, 'gevent', 'threading'])
def test_async_modes_greensio_serves(mode):
    app = flask.Flask(__name__)
    socketio = SocketIO(app, async_mode=mode)
    assert socketio.async_mode == (mode or 'gevent')
    assert socketio.test_client(app).is_connected()


def test_flask_run_picks_the_threading_mode(monkeypatch):
    monkeypatch.setenv('FLASK_RUN_FROM_CLI', 'true')  # what 'flask run' sets
    assert SocketIO(flask.Flask(__name__)).async_mode == 'threading'
    assert SocketIO(flask.Flask(__name__), async_mode='gevent').async_mode == 'gevent'


def test_loggers():
    mine = logging.getLogger('drop-in-engineio')
    _app, socketio = build_app(logger=True, engineio_logger=mine)
    assert isinstance(socketio.server.logger, logging.Logger)
    assert socketio.server.eio.logger is mine


def test_background_task_runs_under_the_test_client_without_monkey_patching(tmp_path):
    script = tmp_path / 'unpatched.py'
    script.write_text(textwrap.dedent('''
        import logging, time
        import flask
        from greensio.flask import SocketIO

        logging.basicConfig()
        app = flask.Flask(__name__)
        socketio = SocketIO(app)
        client = socketio.test_client(app)

        def task():
            socketio.emit('tick', 1)

        def later():
            socketio.sleep(0.05)
            socketio.emit('tock', 2)

        socketio.start_background_task(later)
        socketio.sleep(0)  # it starts, and sleeps
        socketio.start_background_task(task)
        time.sleep(0.2)  # not patched: gevent does not run meanwhile
        print(sorted(m['name'] for m in client.get_received()))
    '''))
    done = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=30,
                          cwd=ROOT, env={**os.environ, 'PYTHONPATH': ROOT})
    assert done.returncode == 0, done.stderr
    assert "['tick', 'tock']" in done.stdout
    assert 'gevent.monkey.patch_all()' in done.stderr  # the warning says what to do


# -- run() -------------------------------------------------------------------------------------


def test_run_accepts_flask_socketio_options_and_wraps_the_debugger():
    from werkzeug.debug import DebuggedApplication

    app, socketio = build_app()
    runner = gevent.spawn(socketio.run, app, host='127.0.0.1', port=0, debug=True, use_reloader=False,
                          allow_unsafe_werkzeug=True, log_output=False)
    wait_until(lambda: socketio.wsgi_server is not None and socketio.wsgi_server.started)
    assert isinstance(socketio.sockio_mw.wsgi_app, DebuggedApplication)
    port = socketio.wsgi_server.server_port
    assert requests.get(f'http://127.0.0.1:{port}/login/dbg', timeout=5).text == 'welcome dbg'
    socketio.stop()
    runner.join(timeout=5)
    assert runner.dead and runner.exception is None


def test_run_in_threading_mode_uses_werkzeug_as_flask_socketio_does(tmp_path):
    script = tmp_path / 'threaded.py'
    script.write_text(textwrap.dedent('''
        import sys, flask
        from greensio.flask import SocketIO

        app = flask.Flask(__name__)
        socketio = SocketIO(app, async_mode='threading')
        try:
            socketio.run(app, port=0)
        except RuntimeError as exc:
            print('refused:', exc, flush=True)
        socketio.run(app, port=int(sys.argv[1]), allow_unsafe_werkzeug=True)
    '''))
    import socket

    with socket.socket() as probe:  # a free port: Werkzeug prints none we could read back reliably
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, 'PYTHONPATH': ROOT})
    try:
        url = f'http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling'

        def handshake():
            try:
                return requests.get(url, timeout=2)
            except requests.ConnectionError:
                return None

        assert wait_until(handshake, timeout=15).text.startswith('0{')
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert 'refused:' in output and 'allow_unsafe_werkzeug=True' in output


def test_run_with_reloader_restarts_on_a_change(tmp_path):
    watched = tmp_path / 'settings.txt'
    watched.write_text('one')
    script = tmp_path / 'app.py'
    script.write_text(textwrap.dedent(f'''
        from gevent import monkey
        monkey.patch_all()
        import os, flask
        from greensio.flask import SocketIO

        app = flask.Flask(__name__)
        socketio = SocketIO(app)
        print('child' if os.environ.get('WERKZEUG_RUN_MAIN') == 'true' else 'parent', flush=True)
        socketio.run(app, port=0, debug=True, reloader_options={{'extra_files': [{str(watched)!r}], 'interval': 0.1}})
    '''))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT, env={**os.environ, 'PYTHONPATH': ROOT}, start_new_session=True)
    lines = []
    try:
        deadline = time.monotonic() + 20

        def read_until(text):
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if text in line:
                    return
            raise AssertionError(f'no {text!r} in {lines}')

        read_until('greensio serving on')
        time.sleep(0.3)
        watched.write_text('two')
        read_until('Detected change')
        read_until('greensio serving on')
        time.sleep(0.5)  # the banner comes just before Ctrl-C handling is set up
    finally:
        os.killpg(proc.pid, 2)  # Ctrl-C to the supervisor and its child
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=5)
    text = ''.join(lines)
    assert text.count('child') == 2 and text.count('parent') == 1, text
    assert proc.returncode == 0, text


# -- the same app over real sockets -----------------------------------------------------------

needs_js = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or '')


def login_cookie(base_url, name):
    http = requests.Session()
    assert http.get(f'{base_url}/login/{name}', timeout=5).text == 'welcome ' + name
    return '; '.join(f'{k}={v}' for k, v in http.cookies.items())


@needs_js
@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_same_app_over_real_sockets(serve, transport):
    app, _socketio = build_app(namespaces='*')
    url = serve(app)
    with jsclients() as make:
        ann, bob = make(), make()
        ann.connect(url, transports=[transport], extraHeaders={'Cookie': login_cookie(url, 'ann')},
                    query={'token': 't1'}, wait=True)
        assert ann.wait_event('welcome')['args'] == [{'user': 'ann'}]
        # a real client's query string also has EIO and transport
        assert app.config['SEEN']['args']['token'] == 't1'
        bob.connect(url, transports=[transport], wait=True)
        ann.emit('message', 'connected')
        assert ann.wait_event('message')['args'] == ['connected']
        ann.emit('json', {'a': 1})
        assert ann.wait_event('json')['args'] == [{'a': 1}]
        who = ann.call('whoami')[0]
        assert who == {'sid': ann.state()['sid'], 'namespace': '/', 'user': 'ann'}
        assert ann.call('three', 1, 2, 3) == [1, 2, 3]
        assert ann.wait_event('three')['args'] == [1, 2, 3]
        assert ann.call('boom', 'x') == [{'error': 'boom x', 'event': 'boom', 'args': ['x']}]
        assert ann.call('price') == [{'cents': 250}]
        ann.emit('shout', 'hey')
        assert bob.wait_event('shouted')['args'] == ['hey']
        ann.connect(url + '/anywhere', sock='any', transports=[transport], wait=True)
        assert ann.call('where', 7, sock='any') == [['/anywhere', 7]]
        ann.connect(url + '/chat', sock='chat', transports=[transport], auth={'k': 1}, wait=True)
        assert ann.wait_event('hello', sock='chat')['args'][0]['auth'] == {'k': 1}
        assert ann.call('fail', sock='chat') == ['namespace error: from a namespace']
        refused = make()
        msg = refused.connect(url, transports=[transport], auth={'refuse': 'no'}, wait=True)
        assert msg['type'] == 'connect_error' and msg['message'] == 'refused'


@needs_js
def test_server_side_session_and_always_connect_over_real_sockets(serve):
    app, _socketio = build_server_session_app(always_connect=True)
    url = serve(app)
    http = requests.Session()
    http.get(f'{url}/login/zoe', timeout=5)
    cookie = '; '.join(f'{k}={v}' for k, v in http.cookies.items())
    with jsclients() as make:
        js = make()
        assert js.connect(url, transports=['websocket'], extraHeaders={'Cookie': cookie}, wait=True)['type'] == 'connect'
        assert js.wait_event('welcome')['args'] == [{'user': 'zoe'}]
        assert js.call('visit') == [1]
        assert js.call('visit') == [2]
        assert http.get(f'{url}/visits', timeout=5).text == '2'
        refused = make()
        # always_connect: accepted first, then disconnected by the refusal
        assert refused.connect(url, transports=['websocket'], auth={'false': True}, wait=True)['type'] == 'connect'
        refused.wait_for('disconnect', sock='default')


@needs_js
def test_cookie_and_cors_options_over_real_sockets(serve):
    app, _socketio = build_app(cookie='io', cors_allowed_origins=['http://allowed.example'])
    url = serve(app)
    handshake = requests.get(f'{url}/socket.io/?EIO=4&transport=polling', timeout=5)
    assert handshake.status_code == 200 and 'io' in handshake.cookies
    ok = requests.get(f'{url}/socket.io/?EIO=4&transport=polling', headers={'Origin': 'http://allowed.example'},
                      timeout=5)
    assert ok.status_code == 200
    assert ok.headers['Access-Control-Allow-Origin'] == 'http://allowed.example'
    bad = requests.get(f'{url}/socket.io/?EIO=4&transport=polling', headers={'Origin': 'http://evil.example'},
                       timeout=5)
    assert bad.status_code == 403  # the spec: a refused Origin is "Forbidden"
    with jsclients() as make:
        js = make()
        assert js.connect(url, transports=['websocket'], wait=True)['type'] == 'connect'
