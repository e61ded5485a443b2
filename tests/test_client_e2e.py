"""greensio's Client end to end, against the official Node socket.io 4.8 server
(tests/js/node_server.js, one process for the module) and against a greensio
server in this process; both speak the events listed in node_server.js.

The test process is gevent-patched (conftest), so the client runs on green
threads here; test_client_simple.py runs it on OS threads in a subprocess.
"""

from __future__ import annotations

import logging
from typing import Any

import client_support
import pytest
from client_support import CLIENT_LEFT, TRANSPORTS, Recorder

import greensio
from greensio import exceptions

pytestmark = pytest.mark.timeout(30)

# the shared fixtures: every test runs against Node socket.io and a greensio server
node_process = client_support.node_process
server = client_support.server



@pytest.fixture
def make_client(server):
    """Clients made here are shut down before the server goes away."""
    made: list[greensio.Client] = []

    def make(**options: Any) -> greensio.Client:
        options.setdefault('reconnection', False)
        client = greensio.Client(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown()


def record(client: greensio.Client, namespace: str = '/', events=('connect', 'disconnect', 'connect_error',
                                                                     '__disconnect_final')) -> Recorder:
    """Register handlers that put the client's lifecycle events in a Recorder."""
    got = Recorder()
    for event in events:
        def handler(*args, _event=event):
            got.add({'type': _event, 'args': list(args)})

        client.on(event, handler, namespace=namespace)
    return got


# -- connecting ------------------------------------------------------------------------


@pytest.mark.parametrize('transport', list(TRANSPORTS))
def test_connect_emit_disconnect(server, make_client, transport):
    client = make_client()
    got = record(client)
    client.connect(server.url, transports=TRANSPORTS[transport])
    assert client.connected and client.sid
    assert client.transport() == ('polling' if transport == 'polling' else 'websocket')
    got.wait_for('connect', args=[])
    seen = server.seen.wait_for('connection', nsp='/')
    assert client.get_sid() == client.get_sid('/') == client.namespaces['/'] == seen['sid']
    assert seen['sid'] != client.sid  # the per-namespace sid, not the Engine.IO one
    assert client.call('echo', (1, 'two', {'three': [3]})) == (1, 'two', {'three': [3]})

    client.disconnect()
    assert not client.connected and client.namespaces == {} and client.sid is None
    got.wait_for('disconnect', args=[greensio.Client.reason.CLIENT_DISCONNECT])
    got.wait_for('__disconnect_final')
    server.seen.wait_for('disconnect', sid=seen['sid'], reason=CLIENT_LEFT[server.kind])
    client.wait()  # returns at once: disconnected for good


def test_connect_twice_and_emit_to_unconnected_namespace(server, make_client):
    client = make_client()
    client.connect(server.url, transports=['websocket'])
    with pytest.raises(exceptions.ConnectionError, match='Already connected'):
        client.connect(server.url)
    with pytest.raises(exceptions.BadNamespaceError, match='/chat is not a connected namespace'):
        client.emit('echo', namespace='/chat')
    with pytest.raises(ValueError, match='reserved'):
        client.emit('connect')


def test_unreachable_server_raises_and_reports_connect_error(make_client, server):
    client = make_client()
    got = record(client)
    # a port from the same server, closed: connection refused at once
    url = 'http://127.0.0.1:1'
    with pytest.raises(exceptions.ConnectionError):
        client.connect(url, transports=['polling'])
    assert got.wait_for('connect_error')['args']
    assert not client.connected
    client.wait()


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_auth_dict_and_callable(server, make_client, transport):
    client = make_client()
    client.connect(server.url, namespaces=['/', '/private'], auth={'token': 'secret'},
                   transports=TRANSPORTS[transport])
    assert set(client.namespaces) == {'/', '/private'}
    assert server.seen.wait_for('connection', nsp='/private')['auth'] == {'token': 'secret'}
    server.seen.wait_for('connection', nsp='/')
    client.disconnect()

    calls = []

    def auth():
        calls.append(1)
        return {'token': 'secret', 'n': len(calls)}

    client = make_client()
    client.connect(server.url, namespaces='/private', auth=auth, transports=TRANSPORTS[transport])
    assert list(client.namespaces) == ['/private']  # '/' was not asked for
    assert server.seen.wait_for('connection', nsp='/private')['auth'] == {'token': 'secret', 'n': 1}
    assert calls == [1]  # once per connection, for every namespace
    assert server.seen.find('connection', nsp='/') is None


def test_refusal_data_reaches_connect_error(server, make_client):
    client = make_client()
    got = record(client, '/private')
    with pytest.raises(exceptions.ConnectionError, match='One or more namespaces failed to connect: /private'):
        client.connect(server.url, namespaces=['/', '/private'], auth={'token': 'wrong'})
    assert got.wait_for('connect_error')['args'] == [
        {'message': 'not authorized', 'data': {'code': 4001, 'reason': 'bad token'}}]
    assert client.failed_namespaces == ['/private'] and not client.connected
    # the namespace that was accepted is left again
    server.seen.wait_for('disconnect', nsp='/')

    client = make_client()
    got = record(client)
    with pytest.raises(exceptions.ConnectionError):
        client.connect(server.url, auth={'refuse': ['a', 1]}, transports=['websocket'])
    assert got.wait_for('connect_error')['args'] == [{'message': 'refused', 'data': ['a', 1]}]


def test_unknown_namespace_is_refused(server, make_client):
    client = make_client()
    got = record(client, '/nowhere')
    with pytest.raises(exceptions.ConnectionError, match='/nowhere'):
        client.connect(server.url, namespaces=['/nowhere'], transports=['websocket'])
    assert got.wait_for('connect_error')['args'] == [{'message': 'Invalid namespace'}]


def test_namespaces_follow_the_handlers(server, make_client):
    client = make_client()
    got = record(client, '/chat')
    client.connect(server.url, transports=['websocket'])
    assert list(client.namespaces) == ['/chat']
    got.wait_for('connect')
    assert client.call('whoami', namespace='/chat')['sid'] == client.get_sid('/chat')
    assert client.get_sid('/') is None


def test_connect_without_waiting(server, make_client):
    client = make_client()
    got = record(client, '/chat')
    client.connect(server.url, namespaces=['/chat'], transports=['websocket'], wait=False)
    assert client.connected
    got.wait_for('connect')
    assert client.call('echo', 1, namespace='/chat') == 1


# -- events and acks -----------------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_acks_both_ways(server, make_client, transport):
    client = make_client()
    answers = Recorder()

    @client.on('question')
    def question(*args):
        return ('answer', *args)

    @client.event
    def quiet(*args):
        return None

    client.connect(server.url, transports=TRANSPORTS[transport])
    client.emit('echo', ({'a': 1}, [2]), callback=lambda *args: answers.add({'type': 'ack', 'args': list(args)}))
    assert answers.wait_for('ack')['args'] == [{'a': 1}, [2]]
    client.send('hi', callback=lambda *args: answers.add({'type': 'sent', 'args': list(args)}))
    server.seen.wait_for('event', event='message', args=['hi'])
    # the server asks this client (with an ack) and acks our call with the answer
    assert client.call('ask', ('question', 7)) == ['answer', 7]
    assert client.call('ask', ('quiet',)) == []
    # no handler at all: the client still acks, with nothing
    assert client.call('ask', ('nobody_handles_this', 1)) == []


def test_call_timeout(server, make_client):
    client = make_client()
    client.connect(server.url, transports=['websocket'])
    with pytest.raises(exceptions.TimeoutError):
        client.call('no_such_handler', 1, timeout=0.2)  # neither server acks unhandled events
    assert client.call('echo', 'still fine') == 'still fine'


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_binary_both_ways(server, make_client, transport):
    client = make_client()
    got = Recorder()
    client.on('blob', lambda *args: got.add({'type': 'blob', 'args': list(args)}))
    client.on('bounce', lambda data: {'back': data, 'extra': b'\xfe'})
    client.connect(server.url, transports=TRANSPORTS[transport])
    payload = {'raw': b'\x00\x01\x02', 'list': [bytearray(b'\xff' * 3000), 'text']}
    assert client.call('echo', payload) == {'raw': b'\x00\x01\x02', 'list': [b'\xff' * 3000, 'text']}
    client.emit('push', ('blob', b'\x10', {'n': [b'\x11']}))
    assert got.wait_for('blob')['args'] == [b'\x10', {'n': [b'\x11']}]
    assert client.call('ask', ('bounce', b'\x20')) == [{'back': b'\x20', 'extra': b'\xfe'}]


def test_catch_all_handlers(server, make_client):
    client = make_client()
    got = Recorder()
    client.on('*', lambda event, *args: got.add({'type': 'any', 'event': event, 'args': list(args)}))
    client.on('named', lambda *args: got.add({'type': 'named', 'args': list(args)}))
    client.on('*', lambda event, ns, *args: got.add({'type': 'any-ns', 'event': event, 'ns': ns, 'args': list(args)}),
              namespace='*')
    client.connect(server.url, namespaces=['/', '/chat'], transports=['websocket'])
    client.emit('push', ('named', 1))
    client.emit('push', ('other', 2, 'x'))
    client.emit('push', ('elsewhere', 3), namespace='/chat')  # '/chat' has no handlers: the '*' namespace
    assert got.wait_for('named')['args'] == [1]
    assert got.wait_for('any')['event'] == 'other'
    assert got.wait_for('any-ns') == {'type': 'any-ns', 'event': 'elsewhere', 'ns': '/chat', 'args': [3]}
    assert got.find('any', event='named') is None


def test_class_based_namespace(server, make_client):
    got = Recorder()

    class Chat(greensio.ClientNamespace):
        def on_connect(self):
            got.add({'type': 'connect', 'sid': self.client.get_sid(self.namespace)})
            self.emit('seq', 'from on_connect')

        def on_disconnect(self, reason):
            got.add({'type': 'disconnect', 'reason': reason})

        def on_news(self, data):
            got.add({'type': 'news', 'data': data})

        def on_question(self, n):
            return n * 2

    chat = Chat('/chat')
    client = make_client()
    client.register_namespace(chat)
    with pytest.raises(ValueError):
        client.register_namespace(greensio.Namespace('/chat'))
    client.connect(server.url, transports=['websocket'])
    assert list(client.namespaces) == ['/chat']
    assert got.wait_for('connect')['sid'] == client.get_sid('/chat')
    chat.emit('push', ('news', {'n': 1}))
    assert got.wait_for('news')['data'] == {'n': 1}
    assert chat.call('ask', ('question', 21)) == [42]
    assert chat.call('stats')['seq'] == ['from on_connect']
    chat.send('via send', room='ignored')
    server.seen.wait_for('event', nsp='/chat', event='message', args=['via send'])
    chat.disconnect()
    assert got.wait_for('disconnect')['reason'] == greensio.Client.reason.CLIENT_DISCONNECT


# -- disconnects from the server ------------------------------------------------------------


@pytest.mark.parametrize('close', [False, True], ids=['namespace', 'connection'])
def test_server_initiated_disconnect(server, make_client, close):
    client = make_client(reconnection=True, reconnection_delay=0.1)
    got = record(client)
    client.connect(server.url, transports=['websocket'])
    client.emit('kick', close)
    got.wait_for('disconnect', args=[greensio.Client.reason.SERVER_DISCONNECT])
    got.wait_for('__disconnect_final')
    client.wait()  # a disconnect by the server is final: no reconnection
    assert not client.connected and client._reconnect_task is None
    assert got.find('connect') is not None and got.find('connect') is got.messages[0]


def test_server_disconnects_one_of_two_namespaces(server, make_client):
    client = make_client()
    got = record(client, '/chat')
    client.connect(server.url, namespaces=['/', '/chat'], transports=['polling'])
    client.emit('kick', False, namespace='/chat')
    got.wait_for('disconnect', args=[greensio.Client.reason.SERVER_DISCONNECT])
    assert client.connected and list(client.namespaces) == ['/']
    assert client.call('echo', 'left') == 'left'


# -- volume and order -------------------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_200_rapid_emits_arrive_in_order(server, make_client, transport):
    client = make_client()
    flood: list[int] = []
    done = Recorder()

    @client.on('flood')
    def on_flood(i):
        flood.append(i)
        if i == 199:
            done.add({'type': 'done'})

    client.connect(server.url, transports=TRANSPORTS[transport])
    for i in range(200):
        client.emit('seq', i)
    assert client.call('stats')['seq'] == list(range(200))
    client.emit('flood', 200)
    done.wait_for('done')
    assert flood == list(range(200))


def test_emit_from_a_native_thread_is_sent_by_the_hub(server, make_client):
    from e2e_helpers import wait_until
    from gevent.monkey import get_original

    start_new_thread = get_original('_thread', 'start_new_thread')
    os_thread = get_original('_thread', 'get_ident')
    client = make_client()
    client.connect(server.url, transports=['websocket'])
    # gevent's objects belong to one hub: the packets must be queued from its OS thread
    queued_from = set()
    send = client.eio.send
    client.eio.send = lambda data: (queued_from.add(os_thread()), send(data))[1]
    acked = Recorder()
    outcome: list[Any] = []

    def native() -> None:  # an OS thread, not a greenlet: no gevent call may run here
        try:
            for i in range(50):
                client.emit('seq', i)
            client.emit('echo', 'from a thread', callback=lambda *args: acked.add({'type': 'ack', 'args': args}))
            outcome.append(client.call('echo', 'called from a thread'))
            client.emit('seq', 'x', namespace='/never-connected')
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)
        else:
            outcome.append(None)

    start_new_thread(native, ())
    wait_until(lambda: len(outcome) == 2, what='the native thread to finish')
    assert outcome[0] == 'called from a thread'
    assert isinstance(outcome[1], exceptions.BadNamespaceError)  # raised in the emitting thread
    assert queued_from == {os_thread()}
    assert acked.wait_for('ack')['args'] == ('from a thread',)
    assert client.call('stats')['seq'] == list(range(50))


def test_broadcast_reaches_every_client(server, make_client):
    clients = [make_client() for _ in range(3)]
    got = Recorder()
    for n, client in enumerate(clients):
        client.on('hello', lambda data, _n=n: got.add({'type': 'hello', 'n': _n, 'data': data}))
        client.connect(server.url, transports=['websocket'])
    clients[0].emit('broadcast', ('hello', 'all'))
    assert sorted(got.wait_for('hello', n=n)['n'] for n in range(3)) == [0, 1, 2]


def test_handler_that_blocks_does_not_stop_acks(server, make_client):
    """A handler calling call() waits for an ack while events keep flowing."""
    client = make_client()
    got = Recorder()

    @client.on('start')
    def start(_):
        got.add({'type': 'inner', 'value': client.call('echo', 'inner')})

    client.on('after', lambda v: got.add({'type': 'after', 'value': v}))
    client.connect(server.url, transports=['websocket'])
    client.emit('push', ('start', 0))
    client.emit('push', ('after', 1))
    assert got.wait_for('inner')['value'] == 'inner'
    assert got.wait_for('after')['value'] == 1


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_a_server_that_breaks_the_protocol_is_dropped_and_reconnected_to(serve, transport):
    url = serve(client_support.poisoning_server())
    client = greensio.Client(reconnection=True, reconnection_delay=0.05, randomization_factor=0)
    got = record(client)
    try:
        client.connect(url, transports=TRANSPORTS[transport])
        got.wait_for('connect')
        first_sid = client.sid
        client.emit('poison', '2["x",NaN]')
        # as after a failed transport (and as socket.io-client after a "parse error")
        got.wait_for('disconnect', args=[greensio.Client.reason.TRANSPORT_ERROR])
        got.wait_for('connect', timeout=5)  # connected again
        assert client.call('echo', 'back', timeout=5) == 'back'
        assert client.connected and client.sid != first_sid
    finally:
        client.shutdown()


def test_msgpack_serializer_with_a_greensio_server(serve):
    sio = greensio.Server(serializer='msgpack')
    sio.on('echo', lambda sid, *args: args)
    sio.on('ask', lambda sid, event, *args: [sio.call(event, args, to=sid, timeout=5)])
    url = serve(sio)
    client = greensio.Client(serializer='msgpack', reconnection=False)
    client.on('double', lambda n: n * 2)
    try:
        for transports in (['websocket'], ['polling']):
            client.connect(url, transports=transports)
            assert client.call('echo', (1, b'\x00', {'k': [b'\x01']})) == (1, b'\x00', {'k': [b'\x01']})
            assert client.call('ask', ('double', 21)) == [42]
            client.disconnect()
    finally:
        client.shutdown()


def test_options_python_socketio_accepts_are_accepted():
    client = greensio.Client(reconnection=False, logger=logging.getLogger('test'), engineio_logger=False, request_timeout=2,
                             ssl_verify=False, websocket_extra_options={}, timestamp_requests=False,
                             async_mode='gevent', unknown_option=1)
    assert client.eio.request_timeout == 2 and client.eio.ssl_verify is False
    assert greensio.Client.reserved_events == ['connect', 'connect_error', 'disconnect', '__disconnect_final']
    assert (greensio.Client.reason.CLIENT_DISCONNECT, greensio.Client.reason.SERVER_DISCONNECT,
            greensio.Client.reason.TRANSPORT_ERROR) == ('client disconnect', 'server disconnect', 'transport error')
    assert client.transport() is None and client.get_sid() is None and not client.connected
    task = client.start_background_task(client.sleep, 0)
    task.join(5)
    assert not task.is_alive()
