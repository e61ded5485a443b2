"""greensio.flask over real sockets, with the official JavaScript client.

The Flask app is served by greensio's gevent server on 127.0.0.1 (port 0);
the session cookie comes from a real HTTP login through the same server.
"""

import flask
import gevent
import pytest
import requests
from e2e_helpers import wait_until

from greensio.flask import SocketIO, emit, join_room

try:
    from jsclient import jsclients, skip_reason
except ImportError:  # pragma: no cover
    from tests.jsclient import jsclients, skip_reason

pytestmark = [
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ''),
    pytest.mark.timeout(30),
]


def build_app():
    app = flask.Flask(__name__)
    app.config['SECRET_KEY'] = 'socket test'
    socketio = SocketIO(app, ping_interval=5)
    state = {'acks': []}

    @app.route('/login/<name>')
    def login(name):
        flask.session['user'] = name
        return 'welcome ' + name

    @socketio.on('connect')
    def on_connect(auth):
        if auth and auth.get('refuse'):
            return False
        join_room('everyone')
        return None

    @socketio.on('whoami')
    def whoami():
        return {'user': flask.session.get('user'), 'sid': flask.request.sid,
                'namespace': flask.request.namespace, 'app': flask.current_app.name}

    @socketio.on('say')
    def say(text):
        emit('said', {'from': flask.session.get('user'), 'text': text}, to='everyone', include_self=False)
        return 'sent'

    @socketio.on('ask_back')
    def ask_back(question):
        def answered(*args):
            # the ack arrives later, on another greenlet, in this client's request context
            state['acks'].append((flask.request.sid, flask.session.get('user'), list(args)))

        emit('question', question, callback=answered)

    @socketio.on('slow_call')
    def slow_call():
        return socketio.call('quiz', 'six times seven?', to=flask.request.sid, timeout=5)

    return app, socketio, state


def login_cookie(base_url, name):
    http = requests.Session()
    assert http.get(f'{base_url}/login/{name}', timeout=5).text == 'welcome ' + name
    return '; '.join(f'{k}={v}' for k, v in http.cookies.items())



@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_session_request_and_helpers_over_real_transport(serve, transport):
    app, _socketio, state = build_app()
    url = serve(app)
    with jsclients() as make:
        ann, bob = make(), make()
        ann.connect(url, transports=[transport], extraHeaders={'Cookie': login_cookie(url, 'ann')}, wait=True)
        bob.connect(url, transports=[transport], extraHeaders={'Cookie': login_cookie(url, 'bob')}, wait=True)
        who = ann.call('whoami')[0]
        assert who['user'] == 'ann' and who['namespace'] == '/' and who['app'] == app.name
        assert who['sid'] == ann.state()['sid']
        assert ann.call('say', 'hello bob') == ['sent']
        assert bob.wait_event('said')['args'] == [{'from': 'ann', 'text': 'hello bob'}]
        assert not ann.find('event', event='said')
        bob.emit('ask_back', 'ready?')
        assert bob.wait_event('question')['args'] == ['ready?']
        wait_until(lambda: state['acks'])
        assert state['acks'] == [(bob.state()['sid'], 'bob', ['ready?'])]


def test_blocking_call_to_the_js_client_and_refusal(serve):
    app, _socketio, _ = build_app()
    url = serve(app)
    with jsclients() as make:
        js = make()
        js.connect(url, transports=['websocket'], wait=True)
        js.ack_mode('echo', args=[42])
        assert js.call('slow_call') == [42]
        refused = make()
        msg = refused.connect(url, transports=['websocket'], auth={'refuse': True}, wait=True)
        assert msg['type'] == 'connect_error'
        assert msg['message'] == 'Connection rejected by server'


def test_http_routes_still_served_next_to_socketio(serve):
    app, _, _ = build_app()
    url = serve(app)
    assert requests.get(f'{url}/login/zed', timeout=5).text == 'welcome zed'
    assert requests.get(f'{url}/nope', timeout=5).status_code == 404
    handshake = requests.get(f'{url}/socket.io/?EIO=4&transport=polling', timeout=5)
    assert handshake.status_code == 200 and handshake.text.startswith('0{')


def test_run_serves_until_stop():
    app, socketio, _ = build_app()
    runner = gevent.spawn(socketio.run, app, host='127.0.0.1', port=0)
    wait_until(lambda: socketio.wsgi_server is not None and socketio.wsgi_server.started)
    port = socketio.wsgi_server.server_port
    assert requests.get(f'http://127.0.0.1:{port}/login/run', timeout=5).text == 'welcome run'
    socketio.stop()
    runner.join(timeout=5)
    assert runner.dead
    with pytest.raises(requests.ConnectionError):
        requests.get(f'http://127.0.0.1:{port}/login/run', timeout=2)


def broker_reachable(port):
    import socket

    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize(('url', 'port', 'manager'), [
    ('amqp://guest:guest@127.0.0.1:5672//', 5672, 'KombuManager'),
    ('redis://127.0.0.1:6379/0', 6379, 'RedisManager'),
])
def test_message_queue_option_and_write_only_emitter(serve, url, port, manager):
    if not broker_reachable(port):
        pytest.skip(f'no broker on 127.0.0.1:{port}')
    import uuid

    channel = f'greensio-flask-test-{uuid.uuid4().hex[:8]}'
    app = flask.Flask(__name__)
    socketio = SocketIO(app, message_queue=url, channel=channel)
    assert type(socketio.server.manager).__name__ == manager

    @socketio.on('join')
    def join(room):
        join_room(room)
        return 'joined'

    base = serve(app)
    external = SocketIO(message_queue=url, channel=channel)  # no app: a write-only emitter
    assert external.server.manager.write_only
    try:
        with jsclients() as make:
            js = make()
            js.connect(base, transports=['websocket'], wait=True)
            assert js.call('join', 'news') == ['joined']
            external.emit('headline', {'text': 'from a worker process'}, to='news')
            assert js.wait_event('headline', timeout=10)['args'] == [{'text': 'from a worker process'}]
    finally:
        external.server.manager.close()
        socketio.server.manager.close()
