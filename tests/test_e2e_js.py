"""End-to-end interop: a greensio Server and the official JS socket.io-client 4.8.

Every test serves a real ``greensio.Server`` on 127.0.0.1 (port 0) and
drives node's ``socket.io-client`` through ``tests/jsclient.py``; assertions
look at what each side saw on the wire (events, acks, reasons, transports).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import FAST_RECONNECT, fence, needs_node, wait_until
from jsclient import JSClient, jsclients

import greensio
import greensio as socketio

pytestmark = [needs_node, pytest.mark.timeout(30)]

TRANSPORTS = {'websocket': ['websocket'], 'polling': ['polling']}


class App:
    """A greensio server with the handlers these tests talk to, plus a record of what it saw."""

    def __init__(self, serve: Any) -> None:
        self.sio = socketio.Server(ping_interval=5, ping_timeout=5)
        self.connected: dict[tuple[str, str], Any] = {}  # (namespace, sid) -> auth
        self.environs: dict[str, dict] = {}
        self.disconnects: list[tuple[str, str, str]] = []  # (namespace, sid, reason)
        self.received: list[tuple[str, str, tuple]] = []  # (event, sid, args)
        self.callbacks: list[tuple] = []
        self.call_results: list[tuple[str, Any, float]] = []  # (sid, result or exception name, seconds)
        self._register()
        self.url = serve(self.sio)

    def _register(self) -> None:
        sio = self.sio

        @sio.event
        def connect(sid: str, environ: dict, auth: Any) -> Any:
            if auth and auth.get('refuse') == 'raise':
                raise greensio.exceptions.ConnectionRefusedError('msg', {'x': 1})
            if auth and auth.get('refuse') == 'false':
                return False
            self.connected[('/', sid)] = auth
            self.environs[sid] = environ
            return None

        @sio.event
        def disconnect(sid: str, reason: str) -> None:
            self.disconnects.append(('/', sid, reason))

        @sio.event
        def echo(sid: str, *args: Any) -> tuple:
            self.received.append(('echo', sid, args))
            return args

        @sio.event
        def count(sid: str, i: int) -> None:
            self.received.append(('count', sid, (i,)))

        @sio.event
        def push(sid: str, event: str, *args: Any) -> None:
            # the client asks for an event back, args spread as separate arguments
            sio.emit(event, tuple(args), to=sid)

        @sio.event
        def burst(sid: str, n: int) -> str:
            for i in range(n):
                sio.emit('n', i, to=sid)
            return 'sent'

        @sio.event
        def join(sid: str, room: str) -> list:
            sio.enter_room(sid, room)
            return sorted(sio.rooms(sid))

        @sio.event
        def leave(sid: str, room: str) -> list:
            sio.leave_room(sid, room)
            return sorted(sio.rooms(sid))

        @sio.event
        def to_room(sid: str, room: Any, data: Any, skip: Any = None) -> None:
            sio.emit('room_msg', data, to=room, skip_sid=skip)

        @sio.event
        def kick_me(sid: str) -> None:
            sio.disconnect(sid)

        @sio.event
        def ask(sid: str, data: Any, timeout: float) -> Any:
            # call() from inside a handler: only this greenlet waits for the ack
            start = time.monotonic()
            try:
                result = sio.call('question', data, to=sid, timeout=timeout)
            except greensio.exceptions.TimeoutError as exc:
                self.call_results.append((sid, type(exc).__name__, time.monotonic() - start))
                return 'timeout'
            self.call_results.append((sid, result, time.monotonic() - start))
            return ['answered', result]

        @sio.event
        def ask_with_callback(sid: str, data: Any) -> None:
            sio.emit('question', data, to=sid, callback=lambda *a: self.callbacks.append(a))

        @sio.on('connect', namespace='/chat')
        def chat_connect(sid: str, environ: dict, auth: Any) -> None:
            self.connected[('/chat', sid)] = auth

        @sio.on('disconnect', namespace='/chat')
        def chat_disconnect(sid: str, reason: str) -> None:
            self.disconnects.append(('/chat', sid, reason))

        @sio.on('say', namespace='/chat')
        def chat_say(sid: str, text: str) -> str:
            sio.emit('said', {'text': text, 'ns': '/chat'}, to=sid, namespace='/chat')
            return 'ok:' + text

    def sid_of(self, connect_msg: dict) -> str:
        """The server-side sid of a JS ``connect`` message (once the handler ran)."""
        sid = connect_msg['id']
        wait_until(lambda: ('/', sid) in self.connected, what=f'connect handler for {sid}')
        return sid


@pytest.fixture
def app(serve: Any) -> Iterator[App]:
    application = App(serve)
    yield application
    application.sio.shutdown()


@pytest.fixture
def js(app: App) -> Iterator[JSClient]:
    """One node process (several sockets via ``sock=``), closed before the server stops."""
    with jsclients() as make:
        yield make()


# -- transports -------------------------------------------------------------------


def test_websocket_only(app: App, js: Any) -> None:
    msg = js.connect(app.url, transports=['websocket'], wait=True)
    assert msg['type'] == 'connect' and msg['transport'] == 'websocket'
    sid = app.sid_of(msg)
    assert app.sio.transport(sid) == 'websocket'
    assert js.call('echo', 'hello', 42, {'x': [1, 2]}) == ['hello', 42, {'x': [1, 2]}]
    assert app.received[-1] == ('echo', sid, ('hello', 42, {'x': [1, 2]}))
    js.disconnect()
    assert js.wait_for('disconnect')['reason'] == 'io client disconnect'
    wait_until(lambda: ('/', sid, 'client disconnect') in app.disconnects, what='disconnect handler')


def test_polling_only(app: App, js: Any) -> None:
    msg = js.connect(app.url, transports=['polling'], wait=True)
    assert msg['type'] == 'connect' and msg['transport'] == 'polling'
    sid = app.sid_of(msg)
    assert js.call('echo', 'via polling') == ['via polling']
    js.emit('push', 'news', 1, 'two')
    ev = js.wait_event('news')
    assert ev['args'] == [1, 'two'] and 'ack_requested' not in ev
    assert app.sio.transport(sid) == 'polling'
    assert js.state()['transport'] == 'polling'
    assert js.find('upgrade') is None


def test_polling_to_websocket_upgrade(app: App, js: Any) -> None:
    msg = js.connect(app.url, wait=True)
    # the probe may finish before the namespace CONNECT reply: either name is fine here
    assert msg['type'] == 'connect' and msg['transport'] in ('polling', 'websocket')
    sid = app.sid_of(msg)
    assert js.wait_for('upgrade')['transport'] == 'websocket'
    assert js.state()['transport'] == 'websocket'
    wait_until(lambda: app.sio.transport(sid) == 'websocket', what='server-side upgrade')
    assert js.call('echo', 'after upgrade') == ['after upgrade']
    js.emit('push', 'after', b'\x01')
    assert js.wait_event('after')['args'] == [b'\x01']
    # the same session throughout: one connect, no disconnect
    assert js.find_all('connect') == [msg] and js.find_all('disconnect') == []


# -- connecting -------------------------------------------------------------------


def test_auth_payload_reaches_connect_handler(app: App, js: Any) -> None:
    msg = js.connect(app.url, transports=['websocket'], auth={'token': 'abc', 'n': [1, 2]}, wait=True)
    sid = app.sid_of(msg)
    assert app.connected[('/', sid)] == {'token': 'abc', 'n': [1, 2]}
    environ = app.environs[sid]
    assert environ['REQUEST_METHOD'] == 'GET' and environ['PATH_INFO'].startswith('/socket.io')
    assert app.sio.get_environ(sid) is environ

    # no auth option: the handler still gets its third argument, as None
    other = js.connect(app.url, sock='noauth', transports=['polling'], wait=True)
    assert app.connected[('/', app.sid_of(other))] is None


def test_refused_connect_with_data(app: App, js: Any) -> None:
    msg = js.connect(app.url, transports=['websocket'], auth={'refuse': 'raise'}, reconnection=False, wait=True)
    assert msg['type'] == 'connect_error'
    assert msg['message'] == 'msg' and msg['data'] == {'x': 1}
    assert not app.connected and not app.disconnects  # refused: no disconnect handler either


def test_refused_connect_return_false(app: App, js: Any) -> None:
    msg = js.connect(app.url, transports=['polling'], auth={'refuse': 'false'}, reconnection=False, wait=True)
    assert msg['type'] == 'connect_error'
    assert msg['message'] == 'Connection rejected by server' and msg['data'] is None
    # the server still serves other clients afterwards
    ok = js.connect(app.url, sock='ok', transports=['websocket'], wait=True)
    assert ok['type'] == 'connect'
    assert js.call('echo', 1, sock='ok') == [1]
    assert not app.disconnects


def test_custom_namespace(app: App, js: Any) -> None:
    main = js.connect(app.url + '/', transports=['websocket'], wait=True)
    chat = js.connect(app.url + '/chat', sock='chat', transports=['websocket'], auth={'user': 'bob'}, wait=True)
    assert chat['type'] == 'connect'
    assert chat['id'] != main['id']  # multiplexed on one connection, one sid per namespace
    wait_until(lambda: ('/chat', chat['id']) in app.connected)
    assert app.connected[('/chat', chat['id'])] == {'user': 'bob'}
    assert js.call('say', 'hi', sock='chat') == ['ok:hi']
    assert js.wait_event('said', sock='chat')['args'] == [{'text': 'hi', 'ns': '/chat'}]
    assert js.events(sock='default') == []
    js.disconnect(sock='chat')
    wait_until(lambda: ('/chat', chat['id'], 'client disconnect') in app.disconnects)
    assert js.call('echo', 'main still up') == ['main still up']


def test_unknown_namespace(app: App, js: Any) -> None:
    msg = js.connect(app.url + '/nope', transports=['websocket'], reconnection=False, wait=True)
    assert msg['type'] == 'connect_error'
    assert msg['message'] == 'Invalid namespace'
    assert not app.connected


# -- acks -------------------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_acks_both_ways(app: App, js: Any, transport: str) -> None:
    sid = app.sid_of(js.connect(app.url, transports=TRANSPORTS[transport], wait=True))
    # client -> server: the handler's return value comes back as the ack
    assert js.call('echo', {'a': 1}, [2, 3]) == [{'a': 1}, [2, 3]]
    assert js.call('join', 'r1') == [sorted([sid, 'r1'])]

    # server -> client: emit(..., callback=) gets the client's ack arguments
    js.emit('ask_with_callback', {'q': 1})
    ev = js.wait_event('question')
    assert ev['args'] == [{'q': 1}] and ev['ack_requested'] is True
    wait_until(lambda: app.callbacks, what='server-side ack callback')
    assert app.callbacks == [({'q': 1},)]

    # server -> client: call() from outside a handler, one value and several
    assert app.sio.call('question', 'x', to=sid, timeout=5) == 'x'
    js.ack_mode('echo', args=['a', b'\x02'])
    assert app.sio.call('question', 1, to=sid, timeout=5) == ('a', b'\x02')
    js.ack_mode('echo', args=[])
    assert app.sio.call('question', 1, to=sid, timeout=5) is None


# -- binary -----------------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_binary_both_ways(app: App, js: Any, transport: str) -> None:
    msg = js.connect(app.url, transports=TRANSPORTS[transport], wait=True)
    blob = bytes(range(256))
    text = '\U0001f600 \U0001d11e \u00e9 \u2028 \x00 "\\ \u00ff'  # astral, separators, NUL, escapes
    nested = {'k': [b'\x00', text, {'deep': b'\xff\xfe'}], 'n': 1}
    assert js.call('echo', blob, nested, [b'a', [b'b']]) == [blob, nested, [b'a', [b'b']]]
    assert app.received[-1][2] == (blob, nested, [b'a', [b'b']])
    js.emit('push', 'blob', {'arr': [b'\x03', b'']}, [{'b': b'\x04'}], 'plain')
    assert js.wait_event('blob')['args'] == [{'arr': [b'\x03', b'']}, [{'b': b'\x04'}], 'plain']
    # a tuple nested in the data is an array on the wire, bytes in it included
    app.sio.emit('pair', {'pair': (b'\x05', 'five')}, to=app.sid_of(msg))
    assert js.wait_event('pair')['args'] == [{'pair': [b'\x05', 'five']}]


# -- rooms ------------------------------------------------------------------------


def test_rooms_and_skip_sid(app: App, js: Any) -> None:
    socks = ['a', 'b', 'c']
    sids = {}
    for name in socks:
        msg = js.connect(app.url, sock=name, transports=['websocket'], forceNew=True, wait=True)
        sids[name] = app.sid_of(msg)
    assert len(set(sids.values())) == 3
    for name in socks:
        assert js.call('join', 'r', sock=name) == [sorted([sids[name], 'r'])]

    def received(name: str) -> list:
        return [e['args'][0] for e in js.events(sock=name, event='room_msg')]

    def fence_all() -> None:
        for name in socks:
            fence(js, name, app.sio, sids[name])

    js.emit('to_room', 'r', 'everyone', sock='a')
    js.emit('to_room', 'r', 'not a', sids['a'], sock='a')
    js.emit('to_room', 'r', 'only c', [sids['a'], sids['b']], sock='a')
    js.emit('to_room', sids['b'], 'to b by sid', sock='a')
    js.emit('to_room', sids['b'], 'skipped', sids['b'], sock='a')
    js.emit('to_room', [sids['a'], 'r'], 'list target once each', sock='c')
    wait_until(lambda: len(received('c')) == 4, what='c got its four room messages')
    fence_all()
    assert received('a') == ['everyone', 'list target once each']
    assert received('b') == ['everyone', 'not a', 'to b by sid', 'list target once each']
    assert received('c') == ['everyone', 'not a', 'only c', 'list target once each']

    assert js.call('leave', 'r', sock='b') == [[sids['b']]]
    app.sio.emit('room_msg', 'after leave', room='r')
    wait_until(lambda: 'after leave' in received('a') and 'after leave' in received('c'))
    fence_all()
    assert 'after leave' not in received('b')


# -- disconnects and reconnection ---------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_server_disconnect(app: App, js: Any, transport: str) -> None:
    sid = app.sid_of(js.connect(app.url, transports=TRANSPORTS[transport], wait=True))
    other = app.sid_of(js.connect(app.url, sock='other', transports=['websocket'], forceNew=True, wait=True))
    app.sio.disconnect(sid)
    msg = js.wait_for('disconnect', sock='default')
    assert msg['reason'] == 'io server disconnect'
    assert ('/', sid, 'server disconnect') in app.disconnects
    assert not app.sio.manager.is_connected(sid, '/')
    # the client does not reconnect after a server disconnect; the other one is unaffected
    assert js.state()['active'] is False
    assert js.call('echo', 'still here', sock='other') == ['still here']

    # from inside a handler, too
    js.emit('kick_me', sock='other')
    assert js.wait_for('disconnect', sock='other')['reason'] == 'io server disconnect'
    wait_until(lambda: ('/', other, 'server disconnect') in app.disconnects)
    assert js.find('disconnect', sock='default') is None  # exactly one disconnect each
    wait_until(lambda: not app.sio.eio.sockets, what='engine connections closed by the clients')

    # a kicked client may come back by itself: a new session
    js.reconnect(sock='default')
    again = app.sid_of(js.wait_for('connect', sock='default'))
    assert again != sid
    assert js.call('echo', 'back again') == ['back again']


def test_reconnect_after_transport_drop(app: App, js: Any) -> None:
    first = js.connect(app.url, transports=['websocket'], wait=True, **FAST_RECONNECT)
    first_sid = app.sid_of(first)
    js.close_engine()
    assert js.wait_for('disconnect')['reason'] == 'forced close'
    js.wait_for('reconnect')
    second = js.wait_for('connect')
    second_sid = app.sid_of(second)
    assert second_sid != first_sid
    wait_until(lambda: any(d[1] == first_sid for d in app.disconnects), what='old sid disconnected')
    assert js.call('echo', 'back') == ['back']
    app.sio.emit('hello_again', {'sid': second_sid}, to=second_sid)
    assert js.wait_event('hello_again')['args'] == [{'sid': second_sid}]
    assert not app.sio.manager.is_connected(first_sid, '/')


# -- ordering under load ------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_200_rapid_emits_in_order(app: App, js: Any, transport: str) -> None:
    sid = app.sid_of(js.connect(app.url, transports=TRANSPORTS[transport], wait=True))
    # client -> server
    js.emit_many('count', 200)
    wait_until(lambda: len(app.received) >= 200, timeout=10, what='200 events at the server')
    assert [r[2][0] for r in app.received] == list(range(200))
    assert {r[1] for r in app.received} == {sid}

    # client -> server with acks: every ack comes back, in order
    cid = js.emit_many('echo', 200, ack=True)
    js.wait_for('acks_done', id=cid, timeout=10)
    acks = [m for m in js.find_all('ack', id=cid)]
    assert [m['index'] for m in acks] == list(range(200))
    assert [m['args'] for m in acks] == [[i] for i in range(200)]

    # server -> client
    assert js.call('burst', 200) == ['sent']
    wait_until(lambda: len(js.events(event='n')) >= 200, timeout=10, what='200 events at the client')
    assert [e['args'] for e in js.events(event='n')] == [[i] for i in range(200)]


# -- call() inside handlers -----------------------------------------------------------


def test_call_inside_handler_does_not_block_others(app: App, js: Any) -> None:
    a = app.sid_of(js.connect(app.url, sock='a', transports=['websocket'], forceNew=True, wait=True))
    b_msg = js.connect(app.url, sock='b', transports=['polling'], forceNew=True, wait=True)
    app.sid_of(b_msg)
    js.ack_mode('delay', sock='a', delay_ms=500)

    cid = js.emit('ask', {'q': 'A?'}, 5, sock='a', ack=True)
    question = js.wait_event('question', sock='a')
    assert question['args'] == [{'q': 'A?'}] and question['ack_requested'] is True

    # while A's handler waits in call(), B and A itself keep getting answers
    b_acks = [js.emit('echo', i, sock='b', ack=True) for i in range(5)]
    b_times = [js.wait_ack(c)['t'] for c in b_acks]
    a_echo = js.wait_ack(js.emit('echo', 'a too', sock='a', ack=True))
    assert a_echo['args'] == ['a too']

    answer = js.wait_ack(cid)
    assert answer['type'] == 'ack' and answer['args'] == [['answered', {'q': 'A?'}]]
    assert max(b_times) < answer['t'] and question['t'] + 500 <= answer['t']
    assert a_echo['t'] < answer['t']
    (result_sid, result, waited), = app.call_results
    assert result_sid == a and result == {'q': 'A?'} and waited >= 0.45


def test_call_inside_handler_times_out(app: App, js: Any) -> None:
    a = app.sid_of(js.connect(app.url, transports=['websocket'], wait=True))
    js.ack_mode('none')
    cid = js.emit('ask', 'never answered', 0.3, ack=True)
    assert js.wait_event('question')['ack_requested'] is True
    answer = js.wait_ack(cid)
    assert answer['type'] == 'ack' and answer['args'] == ['timeout']
    (result_sid, result, waited), = app.call_results
    assert result_sid == a and result == 'TimeoutError' and 0.25 <= waited < 2

    # the timed-out call forgot its callback at once; the late ack is dropped
    # as unknown and the connection carries on
    js.ack_mode('delay', delay_ms=300)
    cid = js.emit('ask', 'late', 0.05, ack=True)
    assert js.wait_ack(cid)['args'] == ['timeout']
    assert not app.sio.manager.callbacks.get(a)
    time.sleep(0.5)  # the driver acks 300 ms after the question: let that late ack arrive first
    assert js.call('echo', 'alive') == ['alive']
    assert [r[1] for r in app.call_results] == ['TimeoutError', 'TimeoutError']



def test_call_inside_handler_with_ordered_handlers(serve: Any) -> None:
    # async_handlers='ordered': one client's events run one after another, so
    # call() must still get its ack (acks never wait behind events) while the
    # same client's next event waits and other clients are served meanwhile
    sio = socketio.Server(async_handlers='ordered')
    log: list[str] = []

    @sio.event
    def ask(sid: str, data: Any) -> Any:
        result = sio.call('question', data, to=sid, timeout=5)
        log.append('ask done')
        return result

    @sio.event
    def echo(sid: str, data: Any) -> Any:
        log.append(f'echo {data}')
        return data

    url = serve(sio)
    with jsclients() as make:
        js = make()
        for name, transport in (('a', 'websocket'), ('b', 'polling')):
            assert js.connect(url, sock=name, forceNew=True, transports=[transport], wait=True)['type'] == 'connect'
        js.ack_mode('delay', sock='a', delay_ms=300)
        ask_id = js.emit('ask', 'A', sock='a', ack=True)
        js.wait_event('question', sock='a')
        a2_id = js.emit('echo', 'A2', sock='a', ack=True)
        b_ack = js.wait_ack(js.emit('echo', 'B', sock='b', ack=True))
        answer = js.wait_ack(ask_id)
        a2 = js.wait_ack(a2_id)
        assert answer['args'] == ['A'] and a2['args'] == ['A2'] and b_ack['args'] == ['B']
        assert b_ack['t'] < answer['t'] <= a2['t']
        assert log == ['echo B', 'ask done', 'echo A2']
    sio.shutdown()

# -- harder cases -------------------------------------------------------------------


def test_traffic_during_upgrade_is_neither_lost_nor_reordered(serve: Any) -> None:
    sio = socketio.Server()
    sent: list[int] = []
    received: list[int] = []
    upgraded_at: list[int] = []

    @sio.event
    def connect(sid: str, environ: dict) -> None:
        def pump() -> None:
            # emit until well after the server switched to the websocket, so the
            # stream spans the probe and the hand-over of the polling queue
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(sent) < 5000:
                sio.emit('n', len(sent), to=sid)
                sent.append(len(sent))
                if not upgraded_at and sio.transport(sid) == 'websocket':
                    upgraded_at.append(len(sent))
                if upgraded_at and len(sent) >= upgraded_at[0] + 100:
                    return
                if len(sent) % 5 == 0:
                    time.sleep(0.001)

        sio.start_background_task(pump)

    @sio.event
    def count(sid: str, i: int) -> None:
        received.append(i)

    url = serve(sio)
    with jsclients() as make:
        js = make()
        js.connect(url)
        batches = 0
        while js.find('upgrade') is None and batches < 100:  # client -> server traffic, too
            js.emit_many('count', 20)
            batches += 1
        js.emit_many('count', 20)
        batches += 1
        assert js.wait_for('upgrade')['transport'] == 'websocket'
        wait_until(lambda: upgraded_at and len(js.events(event='n')) == len(sent) >= upgraded_at[0] + 100,
                   timeout=10, what='every server event at the client')
        assert upgraded_at[0] > 1  # some were emitted before the switch
        assert [e['args'] for e in js.events(event='n')] == [[i] for i in range(len(sent))]
        wait_until(lambda: len(received) == 20 * batches, timeout=10, what='every client event at the server')
        assert received == list(range(20)) * batches
        assert js.find_all('disconnect') == [] and len(js.find_all('connect')) == 1
    sio.shutdown()


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_large_payloads(app: App, js: Any, transport: str) -> None:
    js.connect(app.url, transports=TRANSPORTS[transport], wait=True)
    blob = bytes(range(256)) * 2048  # 512 KiB
    text = 'é' * 200_000  # 400 kB of UTF-8
    assert js.call('echo', blob, timeout=20) == [blob]
    assert js.call('echo', text, timeout=20) == [text]
    js.emit('push', 'big', {'b': blob, 't': text})
    assert js.wait_event('big', timeout=20)['args'] == [{'b': blob, 't': text}]


def test_always_connect_refusal_leaves_other_namespaces_alone(serve: Any) -> None:
    sio = socketio.Server(always_connect=True)
    refused = []

    @sio.on('connect', namespace='/chat')
    def chat_connect(sid: str, environ: dict, auth: Any) -> None:
        refused.append(sid)
        raise greensio.exceptions.ConnectionRefusedError('no chat', {'x': 1})

    @sio.event
    def echo(sid: str, *args: Any) -> tuple:
        return args

    url = serve(sio)
    with jsclients() as make:
        js = make()
        assert js.connect(url, transports=['websocket'], wait=True)['type'] == 'connect'
        js.connect(url + '/chat', sock='chat', transports=['websocket'])
        # always_connect: the client is connected first, then disconnected
        assert js.wait_for('connect', sock='chat')['id'] == refused[0]
        assert js.wait_for('disconnect', sock='chat')['reason'] == 'io server disconnect'
        # regression: the refusal used to carry a payload in the DISCONNECT packet,
        # which socket.io-client cannot parse: it dropped '/' too ('parse error')
        assert js.call('echo', 'still connected') == ['still connected']
        assert js.find('disconnect', sock='default') is None
    sio.shutdown()


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_heartbeat_keeps_idle_clients_and_drops_dead_ones(serve: Any, transport: str) -> None:
    sio = socketio.Server(ping_interval=0.25, ping_timeout=0.5)
    reasons: dict[str, str] = {}

    @sio.event
    def disconnect(sid: str, reason: str) -> None:
        reasons[sid] = reason

    @sio.event
    def echo(sid: str, *args: Any) -> tuple:
        return args

    url = serve(sio)
    with jsclients() as make:
        js = make()
        sid = js.connect(url, transports=TRANSPORTS[transport], reconnection=False, wait=True)['id']
        # idle for several ping periods: the client would report 'ping timeout'
        # after pingInterval + pingTimeout (0.75 s) without a PING from the server
        time.sleep(1.6)
        assert js.find('disconnect') is None
        assert js.state()['connected'] is True
        assert js.call('echo', 'alive') == ['alive']
        assert reasons == {}

        # a client that vanishes without a word (killed) is dropped by the server
        js.proc.kill()
        js.proc.wait(5)
        wait_until(lambda: sid in reasons, timeout=5, what='server-side disconnect of the dead client')
        expected = 'transport close' if transport == 'websocket' else 'ping timeout'
        assert reasons[sid] == expected
        wait_until(lambda: not sio.eio.sockets, what='engine socket removed')
    sio.shutdown()
