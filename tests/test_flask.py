"""greensio.flask through the in-process test client (no sockets).

Each test builds a small Flask app; the test client stands in for one
Engine.IO connection and handlers run inline, so every assertion can follow
the emit that caused it.
"""

import flask
import pytest

import greensio
from greensio.flask import (
    Namespace,
    SocketIO,
    call,
    close_room,
    disconnect,
    emit,
    join_room,
    leave_room,
    rooms,
    send,
)

pytestmark = pytest.mark.timeout(10)


def make_app(**options):
    app = flask.Flask(__name__)
    app.config['SECRET_KEY'] = 'test secret'
    socketio = SocketIO(app, **options)
    return app, socketio


def test_connect_sees_request_context_auth_and_query():
    app, socketio = make_app()
    seen = {}

    @socketio.on('connect')
    def on_connect(auth):
        seen.update(sid=flask.request.sid, namespace=flask.request.namespace, auth=auth,
                    token=flask.request.args.get('token'), agent=flask.request.headers.get('X-Agent'),
                    app=flask.current_app.name, event=flask.request.event['message'])
        emit('welcome', {'sid': flask.request.sid})

    client = socketio.test_client(app, query_string='token=abc', headers={'X-Agent': 'pytest'},
                                  auth={'user': 'ann'})
    assert client.is_connected()
    assert seen == {'sid': client.sid, 'namespace': '/', 'auth': {'user': 'ann'}, 'token': 'abc',
                    'agent': 'pytest', 'app': app.name, 'event': 'connect'}
    assert client.get_received() == [{'name': 'welcome', 'args': [{'sid': client.sid}], 'namespace': '/'}]
    assert client.get_received() == []


def test_connect_handler_without_auth_argument_and_disconnect_reason():
    app, socketio = make_app()
    log = []

    @socketio.on('connect')
    def on_connect():
        log.append('connect')

    @socketio.on('disconnect')
    def on_disconnect(reason):
        log.append(('disconnect', reason))

    client = socketio.test_client(app)
    client.disconnect()
    assert log == ['connect', ('disconnect', socketio.reason.CLIENT_DISCONNECT)]
    assert not client.is_connected()


def test_emit_with_ack_returns_handler_value_and_several_values():
    app, socketio = make_app()

    @socketio.on('add')
    def add(a, b):
        return a + b

    @socketio.event
    def pair(x):
        return x, x * 2

    @socketio.on('blob')
    def blob(data):
        return {'echo': data, 'size': len(data)}

    client = socketio.test_client(app)
    assert client.emit('add', 2, 3, callback=True) == 5
    assert client.emit('pair', 'a', callback=True) == ['a', 'aa']
    assert client.emit('blob', b'\x00\xff' * 4, callback=True) == {'echo': b'\x00\xff' * 4, 'size': 8}
    assert client.emit('add', 1, 1) is None  # no ack requested


def test_emit_helper_defaults_to_sender_and_broadcast_reaches_everyone():
    app, socketio = make_app()

    @socketio.on('shout')
    def shout(text):
        emit('heard', text, broadcast=True, include_self=False)
        emit('echo', text)  # only the sender

    @socketio.on('multi')
    def multi():
        emit('args', 1, 'two', [3])

    a = socketio.test_client(app)
    b = socketio.test_client(app)
    a.emit('shout', 'hi')
    assert a.get_received() == [{'name': 'echo', 'args': ['hi'], 'namespace': '/'}]
    assert b.get_received() == [{'name': 'heard', 'args': ['hi'], 'namespace': '/'}]
    a.emit('multi')
    assert a.get_received() == [{'name': 'args', 'args': [1, 'two', [3]], 'namespace': '/'}]


def test_send_and_json_events():
    app, socketio = make_app()

    @socketio.on('message')
    def message(data):
        send(data.upper())

    @socketio.on('json')
    def json_event(data):
        send({'got': data}, json=True)

    client = socketio.test_client(app)
    client.send('hello')
    client.send({'a': 1}, json=True)
    assert client.get_received() == [
        {'name': 'message', 'args': 'HELLO', 'namespace': '/'},
        {'name': 'json', 'args': {'got': {'a': 1}}, 'namespace': '/'},
    ]


def test_rooms_join_leave_close():
    app, socketio = make_app()

    @socketio.on('join')
    def join(room):
        join_room(room)
        return sorted(rooms())

    @socketio.on('leave')
    def leave(room):
        leave_room(room)

    @socketio.on('tell')
    def tell(room, text):
        emit('told', text, to=room)

    @socketio.on('close')
    def close(room):
        close_room(room)

    a, b, c = (socketio.test_client(app) for _ in range(3))
    assert a.emit('join', 'r1', callback=True) == sorted(['r1', a.sid])
    b.emit('join', 'r1')
    c.emit('tell', 'r1', 'hello r1')
    assert [m['args'] for m in a.get_received()] == [['hello r1']]
    assert [m['args'] for m in b.get_received()] == [['hello r1']]
    assert c.get_received() == []
    b.emit('leave', 'r1')
    c.emit('tell', 'r1', 'again')
    assert len(a.get_received()) == 1 and b.get_received() == []
    c.emit('close', 'r1')
    c.emit('tell', 'r1', 'nobody')
    assert a.get_received() == [] and b.get_received() == []


def test_managed_session_copies_flask_login_and_keeps_changes_per_connection():
    app, socketio = make_app()

    @app.route('/login/<name>')
    def login(name):
        flask.session['user'] = name
        return 'ok'

    @app.route('/whoami')
    def whoami():
        return flask.session.get('user', '-') + '/' + str(flask.session.get('visits', 0))

    @socketio.on('whoami')
    def sio_whoami():
        return flask.session.get('user')

    @socketio.on('visit')
    def visit():
        flask.session['visits'] = flask.session.get('visits', 0) + 1
        return flask.session['visits']

    http = app.test_client()
    http.get('/login/ann')
    client = socketio.test_client(app, flask_test_client=http)
    assert client.emit('whoami', callback=True) == 'ann'
    assert client.emit('visit', callback=True) == 1
    assert client.emit('visit', callback=True) == 2
    # a Socket.IO event has no response to carry a cookie: HTTP never sees the change
    assert http.get('/whoami').get_data(as_text=True) == 'ann/0'
    # and another connection starts from the cookie again
    other = socketio.test_client(app, flask_test_client=http)
    assert other.emit('visit', callback=True) == 1
    anonymous = socketio.test_client(app)
    assert anonymous.emit('whoami', callback=True) == []  # an ack without values, as Flask-SocketIO's client


def test_unmanaged_session_is_read_from_the_cookie_each_event():
    app, socketio = make_app(manage_session=False)

    @app.route('/login/<name>')
    def login(name):
        flask.session['user'] = name
        return 'ok'

    @socketio.on('whoami')
    def whoami():
        before = flask.session.get('scratch')
        flask.session['scratch'] = 'set'  # never saved: there is no response
        return flask.session.get('user'), before

    http = app.test_client()
    http.get('/login/bob')
    client = socketio.test_client(app, flask_test_client=http)
    assert client.emit('whoami', callback=True) == ['bob', None]
    assert client.emit('whoami', callback=True) == ['bob', None]


def test_refused_connections():
    app, socketio = make_app()

    @socketio.on('connect')
    def on_connect(auth):
        if auth['mode'] == 'false':
            return False
        if auth['mode'] == 'raise':
            raise greensio.exceptions.ConnectionRefusedError('go away', {'code': 7})
        return None

    refused = socketio.test_client(app, auth={'mode': 'false'})
    assert not refused.is_connected()
    assert refused.connect_errors['/'] == {'message': 'Connection rejected by server'}
    raised = socketio.test_client(app, auth={'mode': 'raise'})
    assert not raised.is_connected()
    assert raised.connect_errors['/'] == {'message': 'go away', 'data': {'code': 7}}
    assert socketio.test_client(app, auth={'mode': 'ok'}).is_connected()


@pytest.mark.parametrize('kwargs', [{}, {'silent': True}])  # silent is ignored, as in Flask-SocketIO 5
def test_server_side_disconnect_helper(kwargs):
    app, socketio = make_app()
    reasons = []

    @socketio.on('bye')
    def bye():
        disconnect(**kwargs)

    @socketio.on('disconnect')
    def on_disconnect(reason):
        reasons.append((flask.request.sid, reason))

    client = socketio.test_client(app)
    sid = client.sid
    client.emit('bye')
    assert not client.is_connected()
    assert reasons == [(sid, socketio.reason.SERVER_DISCONNECT)]


def test_error_handlers_namespace_and_default():
    app, socketio = make_app()
    errors = []

    @socketio.on('boom')
    def boom():
        raise ValueError('root')

    @socketio.on('boom', namespace='/other')
    def boom_other():
        raise KeyError('other')

    @socketio.on_error()
    def root_error(exc):
        errors.append(('root', type(exc).__name__, flask.request.event['message']))
        return 'handled'

    @socketio.on_error_default
    def default_error(exc):
        errors.append(('default', type(exc).__name__, flask.request.namespace))
        return 'default handled'

    client = socketio.test_client(app)
    client.connect('/other')
    assert client.emit('boom', callback=True) == 'handled'
    assert client.emit('boom', callback=True, namespace='/other') == 'default handled'
    assert errors == [('root', 'ValueError', 'boom'), ('default', 'KeyError', '/other')]


def test_catch_all_handler_gets_the_event_name():
    app, socketio = make_app()

    @socketio.on('*')
    def anything(event, *args):
        return [event, flask.request.event['message'], list(args)]

    client = socketio.test_client(app)
    assert client.emit('whatever', 1, 2, callback=True) == ['whatever', 'whatever', [1, 2]]


def test_custom_namespace_and_flask_namespace_class():
    app, socketio = make_app()

    class Counter(Namespace):
        def on_connect(self, auth):
            flask.session['count'] = auth['start']

        def on_bump(self, by):
            flask.session['count'] += by
            self.emit('count', flask.session['count'], room=flask.request.sid)
            return flask.request.namespace

        def on_disconnect(self):
            pass

    socketio.on_namespace(Counter('/counter'))
    client = socketio.test_client(app, namespace='/counter', auth={'start': 10})
    assert client.is_connected('/counter') and not client.is_connected('/')
    assert client.emit('bump', 5, namespace='/counter', callback=True) == '/counter'
    assert client.get_received('/counter') == [{'name': 'count', 'args': [15], 'namespace': '/counter'}]
    client.disconnect('/counter')
    assert not client.is_connected('/counter')


def test_plain_greensio_namespace_registers_unchanged():
    app, socketio = make_app()

    class Echo(greensio.Namespace):
        def on_echo(self, sid, data):
            self.emit('echoed', {'sid': sid, 'data': data}, to=sid)

    socketio.on_namespace(Echo('/echo'))
    client = socketio.test_client(app, namespace='/echo')
    client.emit('echo', 'x', namespace='/echo')
    assert client.get_received('/echo') == [
        {'name': 'echoed', 'args': [{'sid': client.get_sid('/echo'), 'data': 'x'}], 'namespace': '/echo'}]


def test_app_factory_registers_handlers_made_before_init_app():
    socketio = SocketIO(ping_interval=5)

    @socketio.on('ping_me')
    def ping_me():
        return flask.current_app.config['NAME']

    def create_app(name):
        app = flask.Flask(name)
        app.config['NAME'] = name
        socketio.init_app(app)
        return app

    app = create_app('factory')
    assert app.extensions['socketio'] is socketio
    assert socketio.server.eio.ping_interval == 5
    assert socketio.test_client(app).emit('ping_me', callback=True) == 'factory'


def test_server_side_emit_outside_handlers_and_close_room():
    app, socketio = make_app()

    @socketio.on('join')
    def join(room):
        join_room(room)

    a, b = socketio.test_client(app), socketio.test_client(app)
    a.emit('join', 'news')
    with app.app_context():
        socketio.emit('headline', 'extra', to='news')
        socketio.emit('everyone', 1, 2)
        socketio.send('plain')
    assert [m['name'] for m in a.get_received()] == ['headline', 'everyone', 'message']
    assert [m['name'] for m in b.get_received()] == ['everyone', 'message']
    assert b.get_received() == []
    socketio.close_room('news')
    socketio.emit('headline', 'late', to='news')
    assert a.get_received() == []


def test_helpers_outside_a_handler_fail_clearly():
    with pytest.raises(RuntimeError):
        emit('x')
    with pytest.raises(RuntimeError):
        join_room('r')


def test_call_needs_async_handlers_so_the_test_client_reports_it():
    app, socketio = make_app()

    @socketio.on('ask')
    def ask():
        call('question', timeout=0.1)

    errors = []

    @socketio.on_error_default
    def on_error(exc):
        errors.append(type(exc))

    socketio.test_client(app).emit('ask')
    assert errors == [RuntimeError]

    app2, socketio2 = make_app()

    @socketio2.on('ask')
    def ask_unhandled():
        call('question', timeout=0.1)

    with pytest.raises(RuntimeError, match='under the test client'):  # the message says why
        socketio2.test_client(app2).emit('ask')


def test_test_client_refuses_message_queue_manager():
    from greensio.testing import InMemoryBus, InMemoryPubSubManager

    manager = InMemoryPubSubManager(InMemoryBus())
    app, socketio = make_app(client_manager=manager)
    try:
        with pytest.raises(RuntimeError, match='in-memory manager'):
            socketio.test_client(app)
    finally:
        manager.close(timeout=1)


def test_protocol_violation_closes_only_that_test_connection():
    app, socketio = make_app()
    good, bad = socketio.test_client(app), socketio.test_client(app)
    socketio.server._handle_eio_message(bad.eio_sid, '2["connect"]')  # reserved event name
    assert not bad.is_connected()
    assert good.is_connected()


def test_testing_module_reexports_the_flask_test_client():
    from greensio import testing

    assert testing.SocketIOTestClient.__module__ == 'greensio.flask_testing'
    with pytest.raises(AttributeError):
        testing.NoSuchHelper  # noqa: B018


def test_catch_all_namespace_handlers_find_the_namespace_in_the_request():
    app, socketio = make_app(namespaces='*')  # as in python-socketio, '*' handlers alone admit no namespace

    @socketio.on('where', namespace='*')
    def where(extra):
        return [flask.request.namespace, extra]

    @socketio.on('*', namespace='*')
    def anything(event, *args):
        return [event, flask.request.namespace, list(args)]

    class Anywhere(Namespace):
        def on_hello(self, name):
            return f'hello {name} in {flask.request.namespace}'

    client = socketio.test_client(app, namespace='/a')
    assert client.emit('where', 1, namespace='/a', callback=True) == ['/a', 1]
    assert client.emit('other', 2, 3, namespace='/a', callback=True) == ['other', '/a', [2, 3]]

    app2, socketio2 = make_app(namespaces='*')
    socketio2.on_namespace(Anywhere('*'))
    client2 = socketio2.test_client(app2, namespace='/b')
    assert client2.emit('hello', 'ann', namespace='/b', callback=True) == 'hello ann in /b'


def test_url_for_and_g_inside_handlers():
    app, socketio = make_app()

    @app.route('/rooms/<name>')
    def room_page(name):
        return name

    @socketio.on('link')
    def link(name):
        assert not hasattr(flask.g, 'seen')  # a fresh g for every event
        flask.g.seen = True
        return flask.url_for('room_page', name=name)

    client = socketio.test_client(app)
    assert client.emit('link', 'lobby', callback=True) == '/rooms/lobby'
    assert client.emit('link', 'den', callback=True) == '/rooms/den'
