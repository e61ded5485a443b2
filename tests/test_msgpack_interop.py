"""The msgpack serializer against the official JavaScript parser, on the wire.

``serializer='msgpack'`` claims compatibility with the npm package
``socket.io-msgpack-parser`` (3.x), the parser socket.io documents for its
``parser`` option.  These tests prove it with real sockets on 127.0.0.1:

* a greensio ``Server(serializer='msgpack')`` and node's socket.io-client with
  that parser (``tests/js/client_driver.js``, ``parser: 'msgpack'``), over
  websocket and over polling;
* a greensio ``Client(serializer='msgpack')`` and the Node socket.io server
  started with that parser (``tests/js/node_server.js``, ``"parser": "msgpack"``).

Both servers speak the events of ``node_server.js`` (``client_support.build_server``
for greensio).  msgpack carries bytes natively: no attachments, any nesting.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from client_support import (
    HERE,
    TRANSPORTS,
    Recorder,
    ServerProcess,
    build_server,
    node_skip_reason,
)
from e2e_helpers import wait_until
from jsclient import JSClient, jsclients

import greensio

pytestmark = [
    pytest.mark.skipif(node_skip_reason() is not None, reason=node_skip_reason() or ''),
    pytest.mark.skipif(not os.path.isdir(os.path.join(HERE, 'js', 'node_modules', 'socket.io-msgpack-parser')),
                       reason='run "npm ci" in tests/js to install socket.io-msgpack-parser'),
    pytest.mark.timeout(30),
]

#: Nested data with every msgpack family: str (non-ASCII, astral), positive,
#: negative and 64-bit ints, a float, nil, booleans, bin, arrays and maps.
DATA = {
    'text': 'h\u00e9llo \u4e16\u754c \U0001f600',
    'ints': [0, 1, -1, 127, 128, -33, 65536, 2**40, -(2**40)],
    'float': 1.5,
    'none': None,
    'flags': [True, False],
    'blob': b'\x00\x01\x7f\x80\xff',
    'nested': {'deep': [b'', {'k\u00fc': [b'\xde\xad\xbe\xef', None, 2.25]}]},
}
AUTH = {'token': 'secret', 'user': 'j\u00fcrgen', 'n': 7}


def _assert_exact(got: Any, expected: Any) -> None:
    """Equal, with the same types (``1 == 1.0 == True`` would hide a lost int or float)."""
    assert got == expected
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, dict):
        for key, value in expected.items():
            _assert_exact(got[key], value)
    elif isinstance(expected, (list, tuple)):
        for g, e in zip(got, expected):
            _assert_exact(g, e)


# -- greensio Server, JS socket.io-client with socket.io-msgpack-parser -------------------------------


@pytest.fixture
def msgpack_server(serve: Any) -> Iterator[tuple[greensio.Server, str, Recorder]]:
    seen = Recorder()
    sio = build_server(seen, serializer='msgpack')
    yield sio, serve(sio), seen
    sio.shutdown()


@pytest.fixture
def js() -> Iterator[JSClient]:
    with jsclients() as make:
        yield make()


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_js_msgpack_client_with_greensio_server(msgpack_server: Any, js: JSClient, transport: str) -> None:
    sio, url, seen = msgpack_server
    opts = {'parser': 'msgpack', 'transports': TRANSPORTS[transport], 'reconnection': False}

    # connect with auth: the CONNECT packet's data reaches the connect handler
    msg = js.connect(url, auth=AUTH, wait=True, **opts)
    assert msg['type'] == 'connect' and msg['transport'] == transport
    sid = msg['id']
    connection = seen.wait_for('connection', nsp='/', sid=sid)
    _assert_exact(connection['auth'], AUTH)
    assert connection['transport'] == transport

    # client -> server with an ack: the handler gets the values, the ack returns them
    ack = js.call('echo', DATA, 'two', None)
    _assert_exact(ack, [DATA, 'two', None])
    _assert_exact(seen.wait_for('event', event='echo', sid=sid)['args'], [DATA, 'two', None])

    # server -> client, an event and a call() the client acks (it echoes by default)
    sio.emit('news', (DATA, b'\x01'), to=sid)
    _assert_exact(js.wait_event('news')['args'], [DATA, b'\x01'])
    _assert_exact(sio.call('question', DATA, to=sid, timeout=5), DATA)
    js.ack_mode('echo', args=['several', b'\x02', {'b': [b'\x03']}])
    _assert_exact(sio.call('question', 1, to=sid, timeout=5), ('several', b'\x02', {'b': [b'\x03']}))
    # the server asks from inside a handler; the answer is acked back to the client
    js.ack_mode('echo')
    _assert_exact(js.call('ask', 'question', DATA), [[DATA]])

    # a custom namespace on the same connection
    chat = js.connect(url + '/chat', sock='chat', auth={'room': '\u00e9t\u00e9'}, wait=True, **opts)
    assert chat['type'] == 'connect' and chat['id'] != sid
    _assert_exact(seen.wait_for('connection', nsp='/chat', sid=chat['id'])['auth'], {'room': '\u00e9t\u00e9'})
    _assert_exact(js.call('echo', {'in': 'chat', 'b': b'\x04'}, sock='chat'), [{'in': 'chat', 'b': b'\x04'}])
    js.emit('push', 'chat_news', [b'\x05', 'x'], sock='chat')
    _assert_exact(js.wait_event('chat_news', sock='chat')['args'], [[b'\x05', 'x']])
    assert js.events(sock='default', event='chat_news') == []

    # server-initiated disconnects: from a handler (/chat), then from outside (/)
    js.emit('kick', sock='chat')
    assert js.wait_for('disconnect', sock='chat')['reason'] == 'io server disconnect'
    seen.wait_for('disconnect', nsp='/chat', sid=chat['id'], reason='server disconnect')
    assert js.call('echo', 'still here') == ['still here']
    sio.disconnect(sid)
    assert js.wait_for('disconnect', sock='default')['reason'] == 'io server disconnect'
    seen.wait_for('disconnect', nsp='/', sid=sid, reason='server disconnect')
    assert js.state()['active'] is False  # no reconnection after a server disconnect
    assert js.find_all('connect_error') == []


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_js_msgpack_client_without_auth_and_client_disconnect(msgpack_server: Any, js: JSClient,
                                                              transport: str) -> None:
    sio, url, seen = msgpack_server
    # no auth option: socket.io-client sends CONNECT with data undefined
    msg = js.connect(url, parser='msgpack', transports=TRANSPORTS[transport], reconnection=False, wait=True)
    assert msg['type'] == 'connect'
    assert seen.wait_for('connection', nsp='/', sid=msg['id'])['auth'] == {}
    assert js.call('echo') == []
    js.disconnect()
    assert js.wait_for('disconnect')['reason'] == 'io client disconnect'
    seen.wait_for('disconnect', nsp='/', sid=msg['id'], reason='client disconnect')
    wait_until(lambda: not sio.eio.sockets, what='engine connection closed by the client')


# -- greensio Client, the Node socket.io server with socket.io-msgpack-parser -------------------------


@pytest.fixture(scope='module')
def node_msgpack() -> Iterator[ServerProcess]:
    with ServerProcess('node', parser='msgpack') as proc:
        yield proc


@pytest.fixture
def node(node_msgpack: ServerProcess) -> ServerProcess:
    node_msgpack.recorder.clear()
    return node_msgpack


@pytest.fixture
def client() -> Iterator[greensio.Client]:
    made = greensio.Client(serializer='msgpack', reconnection=False)
    yield made
    made.shutdown()


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_greensio_msgpack_client_with_node_server(node: ServerProcess, client: greensio.Client,
                                                  transport: str) -> None:
    got = Recorder()
    client.on('blob', lambda *args: got.add({'type': 'blob', 'args': list(args)}))
    client.on('question', lambda *args: ['answer', *args])
    client.on('disconnect', lambda reason: got.add({'type': 'disconnect', 'reason': reason}))

    client.connect(node.url, namespaces=['/', '/private'], auth=AUTH, transports=TRANSPORTS[transport])
    assert client.transport() == transport and set(client.namespaces) == {'/', '/private'}
    connection = node.recorder.wait_for('connection', nsp='/')
    _assert_exact(connection['auth'], AUTH)
    assert connection['sid'] == client.get_sid('/') and connection['transport'] == transport
    node.recorder.wait_for('connection', nsp='/private')

    # call(): several values go out as separate arguments and come back as a tuple
    _assert_exact(client.call('echo', (DATA, b'\x00', None), timeout=5), (DATA, b'\x00', None))
    _assert_exact(node.recorder.wait_for('event', event='echo', nsp='/')['args'], [DATA, b'\x00', None])
    _assert_exact(client.call('echo', {'ns': 'private'}, namespace='/private', timeout=5), {'ns': 'private'})

    # emit with a callback
    acks = Recorder()
    client.emit('echo', DATA, callback=lambda *args: acks.add({'type': 'ack', 'args': list(args)}))
    _assert_exact(acks.wait_for('ack')['args'], [DATA])

    # binary from the server, nested
    client.emit('push', ('blob', {'b': b'\xff\x00', 'list': [b'', b'\x01']}, b'\x02'))
    _assert_exact(got.wait_for('blob')['args'], [{'b': b'\xff\x00', 'list': [b'', b'\x01']}, b'\x02'])

    # the server's emit with an ack to this client: its handler's return value is the ack
    _assert_exact(client.call('ask', ('question', DATA, b'\x03'), timeout=5), [['answer', DATA, b'\x03']])

    # the server disconnects the namespace; then the client leaves /private itself
    client.emit('kick')
    assert got.wait_for('disconnect')['reason'] == greensio.Client.reason.SERVER_DISCONNECT
    node.recorder.wait_for('disconnect', nsp='/', reason='server namespace disconnect')
    client.disconnect()
    node.recorder.wait_for('disconnect', nsp='/private', reason='client namespace disconnect')
