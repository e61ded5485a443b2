"""greensio.testing.TestClient: a plain Server tested in-process (no sockets, no sleeps)."""

import pytest

import greensio
from greensio import exceptions
from greensio.testing import InMemoryPubSubManager, TestClient

pytestmark = pytest.mark.timeout(10)


def test_connect_sees_auth_query_headers_and_environ():
    sio = greensio.Server()
    seen = {}

    @sio.event
    def connect(sid, environ, auth):
        seen.update(sid=sid, auth=auth, query=environ['QUERY_STRING'], agent=environ['HTTP_X_AGENT'],
                    extra=environ['extra'])
        sio.emit('welcome', {'sid': sid}, to=sid)

    client = TestClient(sio, auth={'token': 't'}, query_string={'room': 'a'}, headers={'X-Agent': 'pytest'},
                        environ={'extra': 1})
    assert client.is_connected()
    assert client.connect_error is None
    assert seen == {'sid': client.sid, 'auth': {'token': 't'}, 'query': 'EIO=4&transport=polling&room=a',
                    'agent': 'pytest', 'extra': 1}
    assert sio.get_environ(client.sid)['HTTP_X_AGENT'] == 'pytest'
    assert client.get_received() == [{'name': 'welcome', 'args': [{'sid': client.sid}], 'namespace': '/'}]
    assert client.get_received() == []


def test_refused_connect_keeps_the_refusal_data():
    sio = greensio.Server()

    @sio.event
    def connect(sid, environ, auth):
        if auth != {'token': 'ok'}:
            raise greensio.exceptions.ConnectionRefusedError('bad auth', {'code': 7})

    client = TestClient(sio, auth={'token': 'nope'})
    assert not client.is_connected()
    assert client.connect_error == {'message': 'bad auth', 'data': {'code': 7}}
    assert client.connect(auth={'token': 'ok'}) is True
    assert client.connect_error is None


def test_emit_with_ack_and_call():
    sio = greensio.Server()
    sio.on('add', lambda sid, a, b: a + b)
    sio.on('pair', lambda sid, x: (x, x * 2))
    sio.on('nothing', lambda sid: None)
    client = TestClient(sio)
    assert client.emit('add', 2, 3, callback=True) == 5
    assert client.emit('pair', 'a', callback=True) == ['a', 'aa']
    assert client.emit('add', 1, 1) is None
    assert client.call('add', 2, 3) == 5
    assert client.call('pair', 'a') == ('a', 'aa')
    assert client.call('nothing') is None
    with pytest.raises(exceptions.TimeoutError):
        client.call('unknown')


def test_rooms_and_broadcast_between_two_clients():
    sio = greensio.Server()

    @sio.event
    def join(sid, room):
        sio.enter_room(sid, room)

    @sio.event
    def say(sid, room, text):
        sio.emit('said', {'from': sid, 'text': text}, room=room, skip_sid=sid)

    @sio.event
    def shout(sid, text):
        sio.emit('shouted', text)

    a, b, c = TestClient(sio), TestClient(sio), TestClient(sio)
    a.emit('join', 'r1')
    b.emit('join', 'r1')
    a.emit('say', 'r1', 'hi')
    assert a.get_received() == []
    assert b.get_received() == [{'name': 'said', 'args': [{'from': a.sid, 'text': 'hi'}], 'namespace': '/'}]
    assert c.get_received() == []
    c.emit('shout', 'all')
    for client in (a, b, c):
        assert client.get_received() == [{'name': 'shouted', 'args': ['all'], 'namespace': '/'}]


def test_server_emits_and_calls_from_outside_a_handler():
    sio = greensio.Server()
    client = TestClient(sio)
    sio.emit('news', {'n': 1}, to=client.sid)
    assert client.get_received() == [{'name': 'news', 'args': [{'n': 1}], 'namespace': '/'}]

    assert sio.call('ping', to=client.sid) is None  # no handler: an empty ack, at once

    @client.on('question')
    def answer(x):
        return x * 10

    client.on('pair', lambda: ('a', 'b'))
    assert sio.call('question', 4, to=client.sid) == 40
    assert sio.call('pair', to=client.sid) == ('a', 'b')
    assert [e['name'] for e in client.get_received()] == ['ping', 'question', 'pair']


def test_binary_arguments_and_acks():
    sio = greensio.Server()
    sio.on('blob', lambda sid, data: {'echo': data, 'size': len(data)})

    @sio.event
    def push(sid):
        sio.emit('bytes', (b'\x00\x01', {'nested': b'\xff'}), to=sid)

    client = TestClient(sio)
    assert client.emit('blob', b'\x00\xff' * 4, callback=True) == {'echo': b'\x00\xff' * 4, 'size': 8}
    assert client.call('blob', bytearray(b'ab')) == {'echo': b'ab', 'size': 2}
    client.emit('push')
    assert client.get_received() == [{'name': 'bytes', 'args': [b'\x00\x01', {'nested': b'\xff'}], 'namespace': '/'}]
    client.on('bin', lambda data: data + b'!')
    assert sio.call('bin', b'\x01', to=client.sid) == b'\x01!'


def test_disconnect_runs_the_handler_both_ways():
    sio = greensio.Server()
    log = []

    @sio.event
    def disconnect(sid, reason):
        log.append((sid, reason))

    client = TestClient(sio)
    sid = client.sid
    client.disconnect()
    assert log == [(sid, sio.reason.CLIENT_DISCONNECT)]
    assert not client.is_connected()
    with pytest.raises(RuntimeError):
        client.emit('anything')

    other = TestClient(sio)
    sio.disconnect(other.sid)
    assert not other.is_connected()
    assert log[-1] == (other.sid, sio.reason.SERVER_DISCONNECT)


def test_class_based_namespace_other_than_root():
    sio = greensio.Server()
    log = []

    class Chat(greensio.Namespace):
        def on_connect(self, sid, environ, auth):
            log.append(('connect', auth))
            self.emit('hello', 'chat', to=sid)

        def on_echo(self, sid, data):
            return data, self.namespace

        def on_disconnect(self, sid, reason):
            log.append(('disconnect', reason))

    sio.register_namespace(Chat('/chat'))
    client = TestClient(sio, namespace='/chat', auth={'k': 1})
    assert client.is_connected('/chat')
    assert not client.is_connected()
    assert client.get_sid('/chat') is not None and client.sid is None
    assert client.get_received('/chat') == [{'name': 'hello', 'args': ['chat'], 'namespace': '/chat'}]
    assert client.emit('echo', 5, namespace='/chat', callback=True) == [5, '/chat']
    assert client.call('echo', 'x', namespace='/chat') == ('x', '/chat')
    client.disconnect('/chat')
    assert log == [('connect', {'k': 1}), ('disconnect', sio.reason.CLIENT_DISCONNECT)]


def test_several_namespaces_on_one_connection():
    sio = greensio.Server()
    sio.on('where', lambda sid: '/', namespace='/')
    sio.on('where', lambda sid: '/a', namespace='/a')
    client = TestClient(sio)
    assert client.connect('/a')
    assert client.call('where') == '/'
    assert client.call('where', namespace='/a') == '/a'
    client.disconnect('/a')
    assert client.is_connected() and not client.is_connected('/a')


def test_refuses_a_message_queue_server():
    sio = greensio.Server(client_manager=InMemoryPubSubManager(channel='tc-test', write_only=True))
    with pytest.raises(RuntimeError, match='message queue'):
        TestClient(sio)
