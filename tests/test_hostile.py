"""Hostile peers over real connections: every codec limit, enforced on the wire.

A raw websocket client (``rawclient.RawSioClient``) does the Engine.IO and
Socket.IO handshakes by hand and then sends what no real client would.  For
each case the test checks that (a) only the offending connection is closed,
cleanly, or, where the protocol says to ignore the packet, that no handler ran
and nothing was relayed; (b) the server said why in its log; and (c) a
well-behaved python-socketio client connected to the same server still gets
its ack afterwards.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import gevent
import gevent.event
import msgpack
import pytest
import rawclient as rc
import socketio

import greensio

pytestmark = pytest.mark.timeout(30)

PH = '{{"_placeholder":true,"num":{}}}'.format


class Target:
    """A greensio server whose handlers record everything they are asked to do."""

    def __init__(self, serve: Any) -> None:
        self.sio = sio = greensio.Server()
        self.calls: list[tuple[Any, ...]] = []
        self.connects: list[str] = []
        self.disconnects: list[tuple[str, str]] = []

        @sio.event
        def connect(sid: str, environ: dict, auth: Any = None) -> None:
            self.connects.append(sid)

        @sio.event
        def disconnect(sid: str, reason: str) -> None:
            self.disconnects.append((sid, reason))

        @sio.event
        def echo(sid: str, *args: Any) -> Any:
            return args[0] if len(args) == 1 else args

        @sio.event
        def join(sid: str, room: str) -> str:
            sio.enter_room(sid, room)
            return 'joined'

        @sio.event
        def relay(sid: str, room: str, *args: Any) -> None:
            self.calls.append(('relay', sid, *args))
            sio.emit('relayed', args, to=room)

        @sio.event
        def up(sid: str, *args: Any) -> None:
            self.calls.append(('up', sid, *args))

        @sio.on('*')
        def catch_all(event: str, sid: str, *args: Any) -> None:
            self.calls.append(('*', event, sid, *args))

        @sio.on('*', namespace='*')
        def catch_all_namespaces(event: str, namespace: str, sid: str, *args: Any) -> None:
            self.calls.append(('*/*', event, namespace, sid, *args))

        @sio.on('up', namespace='/other')
        def other_up(sid: str, *args: Any) -> None:
            self.calls.append(('/other up', sid, *args))

        self.url = serve(sio)

    def is_connected(self, sid: str) -> bool:
        return self.sio.manager.is_connected(sid, '/')


class GoodClient:
    """python-socketio's own client: the well-behaved neighbour."""

    def __init__(self, url: str) -> None:
        self.client = socketio.Client(reconnection=False)
        self.relayed: list[Any] = []
        self.client.on('relayed', lambda *args: self.relayed.append(args))
        self.client.connect(url, transports=['websocket'], wait_timeout=5)
        assert self.client.call('join', 'room', timeout=5) == 'joined'

    def assert_served(self) -> None:
        assert self.client.connected
        assert self.client.call('echo', 'still here', timeout=5) == 'still here'

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def target(serve: Any, caplog: Any) -> Target:
    # before the server exists, so logger=False does not install its own handler
    caplog.set_level(logging.WARNING, logger='socketio.server')
    caplog.set_level(logging.WARNING, logger='engineio.server')
    return Target(serve)


@pytest.fixture
def good(target: Target) -> Any:
    client = GoodClient(target.url)
    yield client
    client.close()


@pytest.fixture
def attacker(target: Target) -> Any:
    client, sid = rc.connect_sio(target.url)
    client.send_sio('21["join","room"]')
    assert client.recv_sio() == '31["joined"]'
    client.sid = sid
    yield client
    client.close()


def send_all(client: rc.RawSioClient, messages: list[str | bytes]) -> None:
    for message in messages:
        if isinstance(message, str):
            client.send_sio(message)
        else:
            client.send(message)


def assert_closed_cleanly(client: rc.RawSioClient, target: Target) -> None:
    seen = client.wait_closed(timeout=3)
    assert rc.EIO_CLOSE in seen  # Engine.IO CLOSE packet, then ...
    assert client.close_code == 1000  # ... a websocket close frame, then TCP EOF
    assert rc.wait_until(lambda: not target.is_connected(client.sid), timeout=2)
    assert (client.sid, target.sio.reason.SERVER_DISCONNECT) in target.disconnects
    assert client.sid not in target.sio.manager.rooms.get('/', {}).get('room', {})


def log_has(caplog: Any, *fragments: str) -> bool:
    return any(all(f in record.getMessage() for f in fragments) for record in caplog.records)


# -- codec limits: the connection is closed -----------------------------------------------------

ELEVEN = ','.join(PH(i) for i in range(11))

CASES: list[tuple[str, list[str | bytes], str, int]] = [
    # (id, messages after the Socket.IO handshake, log fragment, 'up' calls expected)
    ('eleven-attachments', [f'511-["up",{ELEVEN}]', *[b'x'] * 11], 'attachments', 0),
    ('zero-attachments', ['50-["up"]'], 'attachments', 0),
    ('placeholder-extra-key', ['51-["up",{"_placeholder":true,"num":0,"evil":1}]', b'x'], 'placeholder', 0),
    ('placeholder-num-out-of-range', [f'51-["up",{PH(1)}]', b'x'], 'placeholder', 0),
    ('placeholder-num-not-int', [f'51-["up",{PH(json.dumps("0"))}]', b'x'], 'placeholder', 0),
    ('placeholder-not-true', ['51-["up",{"_placeholder":1,"num":0}]', b'x'], 'placeholder', 0),
    ('more-attachments-than-declared', [f'51-["up",{PH(0)}]', b'a', b'b'], 'without a binary packet', 1),
    ('text-while-attachments-pending', [f'52-["up",{PH(0)},{PH(1)}]', b'a', '2["up"]'], 'pending', 0),
    ('garbage-packet-type', ['9["up"]'], 'unknown packet type', 0),
    ('garbage-packet-text', ['hello'], 'unknown packet type', 0),
    ('ack-id-100-digits', ['2' + '1' * 100 + '["up"]'], 'ack id too long', 0),
    ('invalid-json', ['2["up",'], 'invalid JSON', 0),
    ('json-too-deep', ['2["up",' + '[' * 1000 + ']' * 1000 + ']'], 'invalid JSON', 0),
    ('integer-too-long', ['2["up",' + '7' * 5000 + ']'], 'invalid JSON', 0),
    ('huge-namespace-connect', ['0/' + 'n' * 10_000 + ','], 'namespace too long', 0),
    ('huge-namespace-event', ['2/' + 'n' * 10_000 + ',["up"]'], 'namespace too long', 0),
    ('binary-attachment-without-packet', [b'\x00\x01\x02'], 'without a binary packet', 0),
    ('binary-packet-for-unjoined-namespace', [f'51-/other,["up",{PH(0)}]', b'x'], 'not joined', 0),
    ('connect-error-from-client', ['4{"message":"spoofed"}'], 'CONNECT_ERROR', 0),
    ('event-not-a-list', ['2{"up":1}'], 'invalid payload', 0),
]


@pytest.mark.parametrize(('messages', 'log', 'up_calls'), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_codec_violation_closes_only_the_offender(
    target: Target, good: GoodClient, attacker: rc.RawSioClient, caplog: Any,
    messages: list[str | bytes], log: str, up_calls: int,
) -> None:
    send_all(attacker, messages)
    assert_closed_cleanly(attacker, target)
    assert log_has(caplog, 'protocol violation', log), caplog.text
    assert len([c for c in target.calls if c[0] == 'up']) == up_calls
    assert not [c for c in target.calls if c[0] != 'up']  # nothing reached any catch-all
    good.assert_served()


@pytest.mark.parametrize(
    ('packets', 'log'),
    [
        (['42["up",NaN]'], 'invalid JSON'),
        (['42["connect"]'], 'reserved event'),
        ([f'451-["up",{PH(0)}]', 'bAQID', 'bAQID'], 'without a binary packet'),
        (['4' + '2' + '1' * 100 + '["up"]'], 'ack id too long'),
        ([f'452-["up",{PH(0)},{PH(1)}]', 'bAQID', '42["up"]'], 'pending'),
    ],
    ids=['nan', 'reserved', 'extra-attachment', 'long-ack-id', 'text-while-pending'],
)
def test_codec_violation_over_polling_closes_the_session(
    target: Target, good: GoodClient, caplog: Any, packets: list[str], log: str
) -> None:
    session = rc.PollingSession(target.url)
    sid = session.sio_connect()
    assert session.send(*packets).status == 200  # the Engine.IO payload itself is well formed
    assert rc.wait_until(lambda: not target.is_connected(sid), timeout=3)
    # the session is over: the next poll gets the CLOSE packet, or finds no session
    r = session.poll(timeout=3)
    assert r.status == 400 or rc.decode_payload(r.text) == [rc.EIO_CLOSE]
    assert session.poll(timeout=3).status == 400
    assert [c for c in target.calls if c[0] != 'up'] == [] and len(target.calls) <= 1
    assert log_has(caplog, 'protocol violation', log), caplog.text
    good.assert_served()


def test_binary_attachments_over_polling_are_reassembled(target: Target, good: GoodClient) -> None:
    session = rc.PollingSession(target.url)
    sid = session.sio_connect()
    assert session.send(f'452-["up",{PH(1)},{PH(0)}]', 'bAQID', 'bBAU=').status == 200
    assert rc.wait_until(lambda: target.calls, timeout=3)
    assert target.calls == [('up', sid, b'\x04\x05', b'\x01\x02\x03')]


def test_a_client_cannot_answer_another_clients_ack(
    target: Target, good: GoodClient, attacker: rc.RawSioClient, caplog: Any
) -> None:
    # ack ids are per client: the attacker guessing id 1 must not resolve the
    # server's call() to the good client
    release = gevent.event.Event()
    good.client.on('question', lambda: release.wait(5) and 'genuine')
    answers: list[Any] = []
    waiter = gevent.spawn(lambda: answers.append(target.sio.call('question', to=good.client.get_sid(), timeout=5)))
    attacker.send_sio('31["forged"]')
    attacker.send_sio('21["echo","sync"]')
    assert attacker.recv_sio() == '31["sync"]'  # the forged ack has been processed by now
    assert answers == []
    release.set()
    waiter.join(timeout=5)
    assert answers == ['genuine']
    assert log_has(caplog, 'Unknown callback')


def test_a_client_cannot_join_another_clients_own_room(
    target: Target, good: GoodClient, attacker: rc.RawSioClient, caplog: Any
) -> None:
    # an app that lets clients name rooms must not let one listen to another's private messages
    victim = good.client.get_sid()
    attacker.send_sio(f'21["join","{victim}"]')
    attacker.send_sio('22["echo","sync"]')
    assert attacker.recv_sio() == '32["sync"]'  # no "joined": the handler raised
    assert any(r.exc_info and 'cannot enter a sid room' in str(r.exc_info[1]) for r in caplog.records)
    target.sio.emit('relayed', 'for the victim only', to=victim)
    attacker.send_sio('23["echo","sync"]')
    assert attacker.recv_sio() == '33["sync"]'  # nothing arrived before the echo
    assert rc.wait_until(lambda: good.relayed == [('for the victim only',)], timeout=3)
    good.assert_served()


@pytest.mark.parametrize('accept', [False, True])
def test_events_behind_a_connect_wait_for_its_handler(serve: Any, accept: bool) -> None:
    # a client may send events right behind its CONNECT: none may run before the connect
    # handler has decided, and none at all when it refuses
    sio = greensio.Server()
    ran: list[str] = []

    @sio.event
    def connect(sid: str, environ: dict, auth: Any) -> bool:
        gevent.sleep(0.2)  # an authentication lookup
        ran.append('connect')
        return accept

    @sio.event
    def secret(sid: str) -> str:
        ran.append('secret')
        return 'the secret'

    client = rc.RawSioClient(serve(sio))
    try:
        client.send_sio('0{"token":"x"}')
        client.send_sio('21["secret"]')
        answer = client.recv_sio()
        if accept:
            assert answer.startswith('0{"sid":')
            assert client.recv_sio() == '31["the secret"]'
            assert ran == ['connect', 'secret']
        else:
            assert answer.startswith('4{"message":')
            client.send_sio('0')  # a second attempt, to see the refused event was dropped
            assert rc.wait_until(lambda: ran == ['connect', 'connect'], timeout=3)
            assert ran == ['connect', 'connect']
    finally:
        client.close()


# -- reserved event names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    'packet',
    [
        '2["connect"]', '2["disconnect"]', '2["connect_error",{"message":"x"}]',
        '25["connect",{"token":"forged"}]', '2["disconnecting"]',
        f'51-["connect",{PH(0)}]',
    ],
)
def test_reserved_event_names_never_reach_handlers(
    target: Target, good: GoodClient, attacker: rc.RawSioClient, caplog: Any, packet: str
) -> None:
    send_all(attacker, [packet, b'x'] if packet.startswith('5') else [packet])
    assert_closed_cleanly(attacker, target)
    # no handler ran for the forged event: not the connect/disconnect handlers
    # (each ran once, for real), not the '*' catch-alls
    assert target.calls == []
    assert sorted(target.connects) == sorted([attacker.sid, good.client.get_sid()])
    assert [d for d in target.disconnects if d[0] == attacker.sid] == [
        (attacker.sid, target.sio.reason.SERVER_DISCONNECT)
    ]
    assert log_has(caplog, 'protocol violation', 'reserved event')
    good.assert_served()


# -- non-finite numbers are never relayed ----------------------------------------------------------


@pytest.mark.parametrize('payload', ['NaN', 'Infinity', '-Infinity', '{"x":[1,NaN]}', '1e999', '-1E400'])
def test_non_finite_numbers_are_never_relayed(
    target: Target, good: GoodClient, attacker: rc.RawSioClient, caplog: Any, payload: str
) -> None:
    attacker.send_sio(f'2["relay","room",{payload}]')
    assert_closed_cleanly(attacker, target)
    assert target.calls == []  # the relay handler never saw it
    assert log_has(caplog, 'protocol violation', 'invalid JSON')
    # the room still works, and the first thing the neighbour receives is the
    # legitimate relay: the hostile one was never sent ahead of it
    good.client.emit('relay', ('room', 'fine'))
    assert rc.wait_until(lambda: good.relayed, timeout=5)
    assert good.relayed == [('fine',)]
    good.assert_served()


# -- ignored, connection kept ----------------------------------------------------------------


def test_event_for_a_namespace_not_joined_is_ignored(
    target: Target, good: GoodClient, attacker: rc.RawSioClient, caplog: Any
) -> None:
    attacker.send_sio('2/other,["up","sneaky"]')
    attacker.send_sio('2/other,7["up","sneaky"]')
    attacker.send_sio('3/other,1["fake ack"]')
    attacker.send_sio('21["echo","alive"]')
    # the connection is kept: the next packet is answered in order
    assert attacker.recv_sio() == '31["alive"]'
    assert target.calls == []
    assert target.is_connected(attacker.sid)
    assert log_has(caplog, 'namespace not connected', '/other')
    good.assert_served()


def test_ack_for_an_unknown_id_is_ignored(
    target: Target, good: GoodClient, attacker: rc.RawSioClient, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger='greensio')
    attacker.send_sio('3999["unsolicited"]')
    attacker.send_sio('22["echo","alive"]')
    assert attacker.recv_sio() == '32["alive"]'
    assert target.is_connected(attacker.sid)
    assert 'Unknown callback' in caplog.text
    good.assert_served()


# -- framing below Socket.IO: the websocket is closed with the right code ------------------------------


FRAME_CASES = [
    ('invalid-utf8', rc.build_frame(rc.OP_TEXT, b'42["up","\xff"]'), 1007, 'UTF-8'),
    ('unmasked-client-frame', rc.build_frame(rc.OP_TEXT, b'42["up"]', mask=False), 1002, 'mask'),
    ('reserved-bits', rc.build_frame(rc.OP_TEXT, b'42["up"]', rsv=4), 1002, 'reserved bits'),
    ('unknown-opcode', rc.build_frame(0x3, b''), 1002, 'opcode'),
    ('oversize-control-frame', rc.build_frame(rc.OP_PING, b'p' * 126), 1002, 'control frame'),
    ('continuation-without-start', rc.build_frame(rc.OP_CONT, b'x'), 1002, 'continuation'),
    ('not-an-engineio-packet', rc.build_frame(rc.OP_TEXT, b'x'), 1002, 'invalid Engine.IO packet'),
    ('empty-text-message', rc.build_frame(rc.OP_TEXT, b''), 1002, 'invalid Engine.IO packet'),
]


@pytest.mark.parametrize(('frame', 'code', 'log'), [c[1:] for c in FRAME_CASES], ids=[c[0] for c in FRAME_CASES])
def test_websocket_framing_violation(
    target: Target, good: GoodClient, attacker: rc.RawSioClient, caplog: Any, frame: bytes, code: int, log: str
) -> None:
    attacker.send_raw(frame)
    attacker.wait_closed(timeout=3)
    assert attacker.close_code == code
    assert rc.wait_until(lambda: not target.is_connected(attacker.sid), timeout=2)
    assert target.calls == []
    assert log in caplog.text
    good.assert_served()


# -- the msgpack serializer validates too ------------------------------------------------------------


def _mp(obj: Any) -> bytes:
    return msgpack.packb(obj)


MSGPACK_CASES = [
    ('not-msgpack', b'\xc1\xc1\xc1', 'invalid msgpack'),
    ('text-message', '2["up"]', 'binary messages'),
    ('not-a-map', _mp([2, ['up']]), 'invalid msgpack packet'),
    ('unknown-type', _mp({'type': 9, 'data': ['up'], 'nsp': '/'}), 'invalid msgpack packet'),
    ('reserved-event', _mp({'type': 2, 'data': ['connect'], 'nsp': '/'}), 'reserved event'),
    ('event-not-a-list', _mp({'type': 2, 'data': {'up': 1}, 'nsp': '/'}), 'invalid payload'),
    ('huge-namespace', _mp({'type': 2, 'data': ['up'], 'nsp': '/' + 'n' * 10_000}), 'invalid namespace'),
    ('negative-ack-id', _mp({'type': 2, 'data': ['up'], 'nsp': '/', 'id': -1}), 'ack id'),
    ('ack-id-too-big', _mp({'type': 2, 'data': ['up'], 'nsp': '/', 'id': 2**60}), 'ack id'),
]


@pytest.mark.parametrize(('message', 'log'), [c[1:] for c in MSGPACK_CASES], ids=[c[0] for c in MSGPACK_CASES])
def test_msgpack_violation_closes_only_the_offender(serve: Any, caplog: Any, message: str | bytes, log: str) -> None:
    caplog.set_level(logging.WARNING, logger='socketio.server')
    sio = greensio.Server(serializer='msgpack')
    calls: list[Any] = []
    sio.on('*', lambda event, sid, *args: calls.append(event))
    sio.on('echo', lambda sid, value: value)
    url = serve(sio)
    neighbour = socketio.Client(reconnection=False, serializer='msgpack')
    neighbour.connect(url, transports=['websocket'], wait_timeout=5)
    attacker = rc.RawSioClient(url)
    try:
        attacker.send(_mp({'type': 0, 'nsp': '/'}))
        answer = msgpack.unpackb(attacker.recv())
        assert answer['type'] == 0
        send_all(attacker, [message])
        seen = attacker.wait_closed(timeout=3)
        assert rc.EIO_CLOSE in seen and attacker.close_code == 1000
        assert calls == []
        assert log_has(caplog, 'protocol violation', log), caplog.text
        assert neighbour.call('echo', 'still here', timeout=5) == 'still here'
    finally:
        attacker.close()
        neighbour.disconnect()


def test_many_hostile_connections_in_a_row_leave_nothing_behind(target: Target, good: GoodClient) -> None:
    for i in range(20):
        client, _ = rc.connect_sio(target.url)
        try:
            client.send_sio(['9', '2["x",NaN]', '50-["x"]', '2' + '1' * 100 + '["x"]'][i % 4])
            client.wait_closed(timeout=3)
        finally:
            client.close()
    assert rc.wait_until(lambda: len(target.sio.eio.sockets) == 1, timeout=3)
    assert set(target.sio.manager.rooms['/'][None]) == {good.client.get_sid()}
    good.assert_served()
