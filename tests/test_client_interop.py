"""greensio and python-socketio together, both ways, and the seed's
ChatClientNamespace example run as written against a greensio server.

- python-socketio's Client (PyPI) against a greensio Server;
- greensio's Client against python-socketio's Server (on gevent, in this process);
- the seed's ChatClientNamespace example (indentation restored, ``import
  greensio as socketio``) in a subprocess against the seed's ChatNamespace.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import socketio as pysio
from client_support import Recorder
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

import greensio

pytestmark = pytest.mark.timeout(30)

TRANSPORTS = {'websocket': ['websocket'], 'polling': ['polling'], 'upgrade': None}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- python-socketio's client, greensio's server ---------------------------------------------


def greensio_app(seen: Recorder) -> greensio.Server:
    sio = greensio.Server()

    @sio.event
    def connect(sid, environ, auth):
        if auth and 'refuse' in auth:
            raise greensio.exceptions.ConnectionRefusedError('refused', auth['refuse'])
        seen.add({'type': 'connect', 'sid': sid, 'auth': auth})

    @sio.event
    def disconnect(sid, reason):
        seen.add({'type': 'disconnect', 'sid': sid, 'reason': reason})

    @sio.event
    def echo(sid, *args):
        return args

    @sio.event
    def ask(sid, event, *args):
        # a list, not the tuple call() returns: neither codec looks for bytes inside tuples
        return [list(sio.call(event, args, to=sid, timeout=5))]

    @sio.on('say', namespace='/chat')
    def say(sid, text):
        sio.emit('said', {'text': text}, to=sid, namespace='/chat')
        return 'ok'

    return sio


@pytest.mark.parametrize('transport', list(TRANSPORTS))
def test_python_socketio_client_with_greensio_server(serve, transport):
    seen = Recorder()
    url = serve(greensio_app(seen))
    client = pysio.Client(reconnection=False)
    got = Recorder()
    client.on('question', lambda *args: ['answer', *args])
    client.on('said', lambda data: got.add({'type': 'said', 'data': data}), namespace='/chat')
    client.on('connect_error', lambda data: got.add({'type': 'connect_error', 'data': data}))
    client.connect(url, namespaces=['/', '/chat'], auth={'user': 'py'}, transports=TRANSPORTS[transport])
    try:
        assert client.transport() == ('polling' if transport == 'polling' else 'websocket')
        assert seen.wait_for('connect')['auth'] == {'user': 'py'}
        assert client.call('echo', (1, b'\x00\x01', {'k': [b'\xff']})) == (1, b'\x00\x01', {'k': [b'\xff']})
        assert client.call('ask', ('question', b'\x02'), timeout=5) == [['answer', b'\x02']]
        assert client.call('say', 'hi', namespace='/chat') == 'ok'
        assert got.wait_for('said')['data'] == {'text': 'hi'}
    finally:
        client.disconnect()
    # python-socketio's client may close the websocket before its DISCONNECT is sent
    assert seen.wait_for('disconnect')['reason'] in (greensio.Server.reason.CLIENT_DISCONNECT,
                                                     greensio.Server.reason.TRANSPORT_CLOSE)

    refused = pysio.Client(reconnection=False)
    refused.on('connect_error', lambda data: got.add({'type': 'connect_error', 'data': data}))
    with pytest.raises(pysio.exceptions.ConnectionError):
        refused.connect(url, auth={'refuse': {'why': 'test'}}, transports=['websocket'])
    assert got.wait_for('connect_error')['data'] == {'message': 'refused', 'data': {'why': 'test'}}


# -- greensio's client, python-socketio's server --------------------------------------------


@pytest.fixture
def python_socketio_server():
    """python-socketio's Server on gevent's WSGI server, with a record of what it saw."""
    seen = Recorder()
    sio = pysio.Server(async_mode='gevent')

    @sio.event
    def connect(sid, environ, auth):
        if auth and 'refuse' in auth:
            raise pysio.exceptions.ConnectionRefusedError('refused', auth['refuse'])
        seen.add({'type': 'connect', 'sid': sid, 'auth': auth})

    @sio.event
    def disconnect(sid, reason):
        seen.add({'type': 'disconnect', 'sid': sid, 'reason': reason})

    @sio.on('disconnect', namespace='/chat')
    def chat_disconnect(sid, reason):
        seen.add({'type': 'disconnect', 'sid': sid, 'reason': reason})

    @sio.event
    def echo(sid, *args):
        return args

    @sio.event
    def push(sid, event, *args):
        sio.emit(event, args, to=sid)

    @sio.event
    def ask(sid, event, *args):
        # a list, not the tuple call() returns: neither codec looks for bytes inside tuples
        return [list(sio.call(event, args, to=sid, timeout=5))]

    @sio.event
    def kick(sid):
        sio.disconnect(sid)

    @sio.event(namespace='/chat')
    def connect(sid, environ, auth):  # noqa: F811 - one connect handler per namespace
        seen.add({'type': 'connect', 'ns': '/chat', 'sid': sid})

    http = WSGIServer(('127.0.0.1', 0), pysio.WSGIApp(sio), handler_class=WebSocketHandler, log=None)
    http.start()
    yield f'http://127.0.0.1:{http.server_port}', seen
    http.stop(timeout=1)


@pytest.mark.parametrize('transport', list(TRANSPORTS))
def test_greensio_client_with_python_socketio_server(python_socketio_server, transport):
    url, seen = python_socketio_server
    client = greensio.Client(reconnection=False)
    got = Recorder()
    client.on('question', lambda *args: ('answer', *args))
    client.on('*', lambda event, *args: got.add({'type': 'event', 'event': event, 'args': list(args)}))
    client.on('disconnect', lambda reason: got.add({'type': 'disconnect', 'reason': reason}))
    client.connect(url, namespaces=['/', '/chat'], auth={'user': 'green'}, transports=TRANSPORTS[transport])
    assert client.transport() == ('polling' if transport == 'polling' else 'websocket')
    sid = seen.wait_for('connect', auth={'user': 'green'})['sid']
    assert client.get_sid() == sid
    client_chat_sid = client.get_sid('/chat')
    assert seen.wait_for('connect', ns='/chat')['sid'] == client_chat_sid
    assert client.call('echo', (1, b'\x00\x01', {'k': [b'\xff']})) == (1, b'\x00\x01', {'k': [b'\xff']})
    # python-socketio's server.call returns a single value as itself
    assert client.call('ask', ('question', b'\x02'), timeout=5) == [['answer', b'\x02']]
    client.emit('push', ('note', b'\x03', 'text'))
    assert got.wait_for('event', event='note')['args'] == [b'\x03', 'text']
    for i in range(30):  # a burst bigger than python-engineio's 16-packet payload limit
        client.emit('push', ('burst', i))
    assert [got.wait_for('event', event='burst')['args'][0] for _ in range(30)] == list(range(30))
    client.emit('kick')  # leaves '/' only
    assert got.wait_for('disconnect')['reason'] == greensio.Client.reason.SERVER_DISCONNECT
    assert client.connected and list(client.namespaces) == ['/chat']
    client.disconnect()
    assert seen.wait_for('disconnect', sid=client_chat_sid)['reason'] == pysio.Server.reason.CLIENT_DISCONNECT


def test_greensio_client_refused_by_python_socketio_server(python_socketio_server):
    url, _ = python_socketio_server
    client = greensio.Client(reconnection=False)
    got = Recorder()
    client.on('connect_error', lambda *args: got.add({'type': 'connect_error', 'args': list(args)}))
    client.on('connect_error', lambda *args: got.add({'type': 'connect_error', 'ns': '/x', 'args': list(args)}),
              namespace='/x')
    with pytest.raises(greensio.exceptions.ConnectionError):
        client.connect(url, auth={'refuse': [1, 2]}, transports=['websocket'])
    assert got.wait_for('connect_error')['args'] == [{'message': 'refused', 'data': [1, 2]}]
    with pytest.raises(greensio.exceptions.ConnectionError, match='/x'):
        client.connect(url, namespaces=['/x'], transports=['websocket'])
    # python-socketio refuses an unknown namespace with a bare string
    assert got.wait_for('connect_error', ns='/x')['args'] == ['Unable to connect']


# -- the seed's ChatClientNamespace example ---------------------------------------------------


#: The usage example the project started from ("ClientNamespace"), with its
#: indentation restored and greensio imported under python-socketio's name.
SEED_CHAT_CLIENT = '''
import greensio as socketio
class ChatClientNamespace(socketio.ClientNamespace):
    def __init__(self):
        super().__init__('/chat')
        self.username = None
    def on_connect(self):
        print('Connected to chat namespace')
        self.emit('set_username', {'username': 'Alice'})
    def on_disconnect(self):
        print('Disconnected from chat namespace')
    def on_welcome(self, data):
        print(f'Welcome message: {data["message"]}')
    def on_message(self, data):
        print(f'{data["username"]}: {data["message"]}')
    def on_username_set(self, data):
        if data['success']:
            print('Username set successfully')
            self.emit('join_room', {'room': 'general'})
    def send_message(self, message, room='general'):
        self.emit('chat_message', {
            'message': message,
            'room': room
        })

# Use with client
sio = socketio.Client()
chat_ns = ChatClientNamespace()
sio.register_namespace(chat_ns)
sio.connect('http://localhost:5000')

# Send messages through namespace
chat_ns.send_message('Hello everyone!')
sio.wait()
'''


def load_seed_namespaces() -> Any:
    spec = importlib.util.spec_from_file_location('seed_namespaces', os.path.join(ROOT, 'examples', 'seed_namespaces.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_chat_client_namespace_example_runs_as_written(serve, tmp_path):
    seed = load_seed_namespaces()
    seen = Recorder()

    class ObservedChat(seed.ChatNamespace):
        """The seed's ChatNamespace, reporting what it handles to the test."""

        def trigger_event(self, event, *args):
            result = super().trigger_event(event, *args)
            seen.add({'type': event, 'sid': args[0], 'args': list(args[1:])})
            return result

    sio = greensio.Server()
    sio.register_namespace(ObservedChat('/chat'))
    url = serve(sio)
    # the example's only change: the URL of the server the test started
    script = tmp_path / 'chat_client.py'
    script.write_text(SEED_CHAT_CLIENT.replace('http://localhost:5000', url))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        sid = seen.wait_for('connect', timeout=15)['sid']
        assert seen.wait_for('set_username', sid=sid)['args'] == [{'username': 'Alice'}]
        assert seen.wait_for('join_room', sid=sid)['args'] == [{'room': 'general'}]
        assert seen.wait_for('chat_message', sid=sid)['args'] == [{'message': 'Hello everyone!', 'room': 'general'}]
        with sio.session(sid, namespace='/chat') as session:
            assert session['username'] == 'Alice'
        sio.emit('message', {'username': 'Bob', 'message': 'hi Alice'}, to=sid, namespace='/chat')
        # the last namespace disconnected by the server: sio.wait() returns and the script ends
        sio.disconnect(sid, namespace='/chat')
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    # the handlers run on worker threads that start when one is busy (as in python-socketio),
    # and print() writes a text and its newline separately: lines from two handlers may interleave
    printed = ['Connected to chat namespace', 'Welcome message: Welcome to chat!', 'Username set successfully',
               'Bob: hi Alice', 'Disconnected from chat namespace']
    assert all(text in out for text in printed), textwrap.indent(out + err, '  ')
    # on_connect prints before it emits set_username, which the server answers with username_set
    assert out.index('Connected to chat namespace') < out.index('Username set successfully'), out
