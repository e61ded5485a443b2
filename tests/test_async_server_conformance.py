"""Engine.IO conformance and hostile input against ``AsyncServer`` on uvicorn.

The asyncio twin of tests/test_engineio_conformance.py and of the core
cases of tests/test_hostile.py: ``greensio.engineio.AsyncServer`` runs the
Engine.IO core the green server runs, and the same codec and
``ServerConnection`` guard the Socket.IO layer.  Each Engine.IO test fails against python-engineio's own
``AsyncServer``.  The server runs in its own process (``tests/async_app.py``);
the wire is driven by hand with ``rawclient``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import struct
import time
from typing import Any

import gevent
import pytest
import rawclient as rc
from async_support import AsyncServerProcess, skip_reason

pytestmark = [pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ''), pytest.mark.timeout(20)]

PH = '{{"_placeholder":true,"num":{}}}'.format


@pytest.fixture
def remote(async_server: AsyncServerProcess) -> AsyncServerProcess:
    async_server.reset('conformance')
    return async_server


def _with(async_server: AsyncServerProcess, kind: str = 'conformance', **options: Any) -> AsyncServerProcess:
    async_server.reset(kind, **options)
    return async_server


class PoliteClient(rc.RawSioClient):
    """A raw client that answers the server's close frame, as real websocket clients do.

    uvicorn completes the closing handshake (RFC 6455 section 7) before it ends
    the TCP connection, waiting up to its close timeout (10 s) for this answer;
    greensio's own green websocket path shuts the socket down at once.
    """

    _answered = False

    def recv(self, timeout: float | None = None) -> str | bytes:
        try:
            return super().recv(timeout)
        except rc.ConnectionClosed:
            if self.close_code is not None and not self._answered:
                self._answered = True
                try:
                    self.send_frame(rc.OP_CLOSE, struct.pack('!H', self.close_code))
                except OSError:
                    pass
            raise


def connect_sio(url: str, **kwargs: Any) -> tuple[PoliteClient, str]:
    client = PoliteClient(url, **kwargs)
    return client, client.connect_namespace()


def _logged(remote: AsyncServerProcess, *fragments: str) -> bool:
    return any(all(f in message for f in fragments) for _, message in remote('LOGS'))


def _server_fds(remote: AsyncServerProcess) -> int:
    return len(os.listdir(f'/proc/{remote.proc.pid}/fd'))


def _server_rss(remote: AsyncServerProcess) -> int:
    with open(f'/proc/{remote.proc.pid}/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


# -- handshake ---------------------------------------------------------------------------------


def test_open_packet_fields_over_polling(remote: AsyncServerProcess) -> None:
    sid, fields = rc.polling_handshake(remote.url)
    assert set(fields) == {'sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload'}
    assert len(sid) == 20 and sid in remote('list(sio.eio.sockets)')
    assert fields['upgrades'] == ['websocket']
    assert (fields['pingInterval'], fields['pingTimeout'], fields['maxPayload']) == (25000, 20000, 1_000_000)


def test_open_packet_fields_over_websocket(async_server: AsyncServerProcess) -> None:
    remote = _with(async_server, ping_interval=7, ping_timeout=3, max_http_buffer_size=4096)
    client = PoliteClient(remote.url)
    try:
        assert client.open['upgrades'] == []
        assert (client.open['pingInterval'], client.open['pingTimeout'], client.open['maxPayload']) == (
            7000, 3000, 4096)
    finally:
        client.close()


@pytest.mark.parametrize(('interval', 'advertised'), [(0.5, 500), ((0.5, 0.25), 750), (1.5, 1500)])
def test_sub_second_ping_interval_is_advertised(async_server: AsyncServerProcess, interval: Any,
                                                advertised: int) -> None:
    # python-engineio computed int(interval) * 1000: 0 for any sub-second interval
    remote = _with(async_server, ping_interval=interval, ping_timeout=0.25)
    _, fields = rc.polling_handshake(remote.url)
    assert (fields['pingInterval'], fields['pingTimeout']) == (advertised, 250)


def test_sub_second_ping_interval_is_honoured(async_server: AsyncServerProcess) -> None:
    remote = _with(async_server, ping_interval=0.3, ping_timeout=5)
    client, _ = connect_sio(remote.url, answer_pings=False)
    try:
        start = time.monotonic()
        assert client.recv(timeout=3) == rc.EIO_PING
        client.send(rc.EIO_PONG)
        assert client.recv(timeout=3) == rc.EIO_PING
        assert time.monotonic() - start < 2
    finally:
        client.close()


def test_request_without_transport_is_refused(remote: AsyncServerProcess) -> None:
    # python-engineio assumed polling when the parameter was missing
    assert rc.get(remote.url, {'EIO': 4}).status == 400
    sid, _ = rc.polling_handshake(remote.url)
    assert rc.get(remote.url, {'EIO': 4, 'sid': sid}).status == 400
    assert rc.post(remote.url, {'EIO': 4, 'sid': sid}, '6').status == 400
    assert list(remote('sio.eio.sockets')) == [sid]


@pytest.mark.parametrize('version', ['3', ''])
def test_other_protocol_versions_are_refused(remote: AsyncServerProcess, version: str) -> None:
    assert rc.get(remote.url, {'EIO': version, 'transport': 'polling'}).status == 400
    assert remote('sio.eio.sockets') == {}


# -- polling POST -------------------------------------------------------------------------------


def test_post_answer_body_is_ok(remote: AsyncServerProcess) -> None:
    session = rc.PollingSession(remote.url)
    r = session.send(rc.EIO_NOOP)
    assert (r.status, r.body) == (200, b'ok')  # python-engineio said 'OK'


def test_post_with_twenty_packets_delivers_all(remote: AsyncServerProcess) -> None:
    # python-engineio dropped a whole payload of more than 16 packets (and answered OK)
    session = rc.PollingSession(remote.url)
    session.sio_connect()
    r = session.send(*(f'42["count",{i}]' for i in range(20)))
    assert (r.status, r.body) == (200, b'ok')
    assert rc.wait_until(lambda: len(remote('app.counted')) >= 20, timeout=5)
    assert sorted(remote('app.counted')) == list(range(20))


@pytest.mark.parametrize('body', ['x', '4hello\x1e\x1e4again', 'b!!!not-base64', '4ok\x1e7bad'], ids=repr)
def test_malformed_post_closes_the_session(remote: AsyncServerProcess, body: str) -> None:
    # python-engineio answered OK and kept the session
    session = rc.PollingSession(remote.url)
    session.sio_connect()
    assert session.send(body).status == 400
    assert session.poll(timeout=2).status == 400  # the session is gone, not just this request
    assert rc.wait_until(lambda: len(remote('app.disconnects')) == 1, timeout=2)
    assert _logged(remote, 'malformed polling payload')


def test_duplicate_concurrent_get_closes_the_session(remote: AsyncServerProcess) -> None:
    # spec: a second pending GET is an error; python-engineio left both waiting
    session = rc.PollingSession(remote.url)
    first = gevent.spawn(session.poll, 5)
    assert rc.wait_until(lambda: remote('sio.eio.sockets[sid]._polling', sid=session.sid), timeout=2)
    start = time.monotonic()
    assert session.poll(timeout=5).status == 400
    first_result = first.get(timeout=3)
    assert time.monotonic() - start < 2
    assert first_result.status == 400 or rc.decode_payload(first_result.text) == [rc.EIO_CLOSE]
    assert session.poll(timeout=2).status == 400
    assert _logged(remote, 'overlapping polling GET')


def test_a_closed_session_releases_its_pending_poll(remote: AsyncServerProcess) -> None:
    # python-engineio's asyncio socket left the GET waiting for ping_interval + ping_timeout
    session = rc.PollingSession(remote.url)
    session.sio_connect()
    poll = gevent.spawn(session.poll, 10)
    assert rc.wait_until(lambda: remote('sio.eio.sockets[sid]._polling', sid=session.sid), timeout=2)
    start = time.monotonic()
    assert session.send(rc.EIO_CLOSE).status == 200
    assert poll.get(timeout=3).status in (200, 400)
    assert time.monotonic() - start < 2
    assert rc.wait_until(lambda: remote('sio.eio.sockets') == {}, timeout=2)


# -- upgrade --------------------------------------------------------------------------------------


@pytest.mark.parametrize('pending_poll', [True, False], ids=['poll-pending', 'no-poll-pending'])
def test_no_stray_noop_after_upgrade(remote: AsyncServerProcess, pending_poll: bool) -> None:
    # python-engineio answered the client's UPGRADE packet with a NOOP, and
    # queued one for a poll that was not there
    session = rc.PollingSession(remote.url)
    poll = None
    if pending_poll:
        poll = gevent.spawn(session.poll, 5)
        assert rc.wait_until(lambda: remote('sio.eio.sockets[sid]._polling', sid=session.sid), timeout=2)
    client = PoliteClient(remote.url, sid=session.sid)
    try:
        client.send('2probe')
        assert client.recv() == '3probe'
        if poll is not None:
            assert rc.decode_payload(poll.get(timeout=3).text) == [rc.EIO_NOOP]
        client.send(rc.EIO_UPGRADE)
        client.send_sio('0')
        answer = client.recv(timeout=3)
        assert isinstance(answer, str) and answer.startswith('40{"sid":'), answer
        client.send_sio('2["say","hi"]')
        assert client.recv(timeout=3) == '42["said","hi"]'
        client.send_sio('21["echo","x"]')
        assert client.recv(timeout=3) == '431["x"]'
        assert session.send('40').status == 400  # no POST once upgraded
    finally:
        client.close()


def test_messages_queued_before_the_upgrade_arrive_over_the_websocket(remote: AsyncServerProcess) -> None:
    session = rc.PollingSession(remote.url)
    sid = session.sio_connect()
    client = PoliteClient(remote.url, sid=session.sid)
    try:
        client.send('2probe')
        assert client.recv() == '3probe'
        remote("sio.emit('queued', 1, to=sid)", sid=sid)  # lands in the polling queue
        client.send(rc.EIO_UPGRADE)
        assert client.recv(timeout=3) == '42["queued",1]'
    finally:
        client.close()


# -- oversize input --------------------------------------------------------------------------------


@pytest.mark.parametrize('with_sid', [True, False], ids=['session', 'no-session'])
def test_oversize_post_is_answered_at_once_and_the_connection_dropped(async_server: AsyncServerProcess,
                                                                       with_sid: bool) -> None:
    # python-engineio's asyncio server waited for the body, then answered 400
    remote = _with(async_server, max_http_buffer_size=10_000)
    sid, _ = rc.polling_handshake(remote.url)
    baseline = _server_fds(remote)
    query = f'EIO=4&transport=polling&sid={sid}' if with_sid else 'EIO=4&transport=polling&sid=nope'
    sock = socket.create_connection(('127.0.0.1', remote.port), timeout=5)
    try:
        start = time.monotonic()
        sock.sendall(f'POST /socket.io/?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n'
                     f'Content-Length: 10000000\r\n\r\n'.encode())  # ... and not one byte of the body
        assert rc.read_http_response(sock, timeout=3)[0] == 413
        assert rc.wait_eof(sock, timeout=3), 'the server kept the connection open'
        assert time.monotonic() - start < 2
    finally:
        sock.close()
    assert rc.wait_until(lambda: _server_fds(remote) <= baseline, timeout=3), 'a file descriptor leaked'
    if with_sid:
        assert rc.get(remote.url, {'EIO': 4, 'transport': 'polling', 'sid': sid}).status == 400


def test_post_at_the_size_limit_is_accepted(async_server: AsyncServerProcess) -> None:
    remote = _with(async_server, max_http_buffer_size=1000)
    session = rc.PollingSession(remote.url)
    session.sio_connect()
    packet = '42["count",1]'
    body = packet + ' ' * (1000 - len(packet))
    assert session.send(body).status == 200
    assert rc.wait_until(lambda: remote('app.counted') == [1], timeout=3)
    assert session.send(body + ' ').status == 413


def test_websocket_message_over_the_limit_closes_the_connection(async_server: AsyncServerProcess) -> None:
    remote = _with(async_server, max_http_buffer_size=2000)
    client, _ = connect_sio(remote.url)
    try:
        text = '421["echo","' + 'x' * (2000 - 14) + '"]'
        client.send(text)
        assert client.recv_sio() == '31["' + 'x' * (2000 - 14) + '"]'
        client.send('421["echo","' + 'x' * (2000 - 13) + '"]')
        client.wait_closed(timeout=3)
        assert client.close_code == 1009
        assert _logged(remote, 'message too big')
    finally:
        client.close()


def test_websocket_frame_declaring_one_gib_is_never_buffered(remote: AsyncServerProcess) -> None:
    # uvicorn's ws_max_size refuses it from the frame header (see ASGIApp's docstring)
    client, _ = connect_sio(remote.url)
    try:
        rss_before = _server_rss(remote)
        start = time.monotonic()
        header = rc.build_frame(rc.OP_BINARY, b'', declared_length=1 << 30)
        client.send_raw(header[:2] + header[2:10] + b'\x01\x02\x03\x04')
        try:
            client.send_raw(b'\x00' * 65536)
        except OSError:
            pass
        client.wait_closed(timeout=3)
        assert time.monotonic() - start < 2
        assert client.close_code == 1009
        assert _server_rss(remote) - rss_before < 32 * 1024 * 1024
    finally:
        client.close()
    other, _ = connect_sio(remote.url)
    try:
        other.send_sio('21["echo",1]')
        assert other.recv_sio() == '31[1]'
    finally:
        other.close()


# -- dead peers ------------------------------------------------------------------------------------


def test_ping_timeout_closes_the_websocket_tcp_connection(async_server: AsyncServerProcess) -> None:
    remote = _with(async_server, ping_interval=0.2, ping_timeout=0.2)
    client, sid = connect_sio(remote.url, answer_pings=False)
    try:
        start = time.monotonic()
        seen = client.wait_closed(timeout=3)
        assert time.monotonic() - start < 2
        assert rc.EIO_PING in seen
        assert rc.wait_until(lambda: remote('app.disconnects'), timeout=2)
        assert remote('app.disconnects') == [(sid, 'ping timeout')]
    finally:
        client.close()


def test_ping_timeout_releases_a_polling_session(async_server: AsyncServerProcess) -> None:
    remote = _with(async_server, ping_interval=0.2, ping_timeout=0.2)
    session = rc.PollingSession(remote.url)
    sid = session.sio_connect()
    assert session.poll_packets(timeout=3) == [rc.EIO_PING]
    assert rc.wait_until(lambda: remote('app.disconnects'), timeout=3)
    assert remote('app.disconnects') == [(sid, 'ping timeout')]


# -- JSONP -------------------------------------------------------------------------------------------

_JSONP = re.compile(r'^___eio\[(\d+)\]\((.*)\);$', re.DOTALL)


def _jsonp_body(result: rc.HttpResult, index: int) -> str:
    assert result.status == 200
    match = _JSONP.match(result.text)
    assert match, result.text
    assert int(match.group(1)) == index
    return json.loads(match.group(2))


def test_jsonp_escapes_backslashes_and_quotes(remote: AsyncServerProcess) -> None:
    # python-engineio escaped only double quotes: a payload ending in a backslash broke out of the string
    opened = _jsonp_body(rc.get(remote.url, {'EIO': 4, 'transport': 'polling', 'j': 3}), 3)
    sid = json.loads(opened[1:])['sid']
    params = {'EIO': 4, 'transport': 'polling', 'sid': sid, 'j': 3}
    assert rc.post(remote.url, params, 'd=' + '40').status == 200
    connected = _jsonp_body(rc.get(remote.url, params), 3)
    sio_sid = json.loads(connected[2:])['sid']
    remote('sio.eio.send(sid, data)', sid=sid, data='raw ends with a backslash \\')
    remote("sio.emit('msg', data, to=sid)", sid=sio_sid, data='quote " backslash \\ and \u2028 separator \\')
    packets = rc.decode_payload(_jsonp_body(rc.get(remote.url, params), 3))
    assert packets[0] == '4raw ends with a backslash \\'
    assert json.loads(packets[1][2:]) == ['msg', 'quote " backslash \\ and \u2028 separator \\']


# -- hostile Socket.IO input: the same codec limits, the same ServerConnection -------------------------

ELEVEN = ','.join(PH(i) for i in range(11))

HOSTILE = [
    # (id, messages after the Socket.IO handshake, log fragment)
    ('eleven-attachments', [f'511-["up",{ELEVEN}]', *[b'x'] * 11], 'attachments'),
    ('zero-attachments', ['50-["up"]'], 'attachments'),
    ('placeholder-num-out-of-range', [f'51-["up",{PH(1)}]', b'x'], 'placeholder'),
    ('text-while-attachments-pending', [f'52-["up",{PH(0)},{PH(1)}]', b'a', '2["up"]'], 'pending'),
    ('garbage-packet-type', ['9["up"]'], 'unknown packet type'),
    ('ack-id-100-digits', ['2' + '1' * 100 + '["up"]'], 'ack id too long'),
    ('json-too-deep', ['2["up",' + '[' * 1000 + ']' * 1000 + ']'], 'invalid JSON'),
    ('non-finite-number', ['2["relay","room",NaN]'], 'invalid JSON'),
    ('huge-namespace', ['0/' + 'n' * 10_000 + ','], 'namespace too long'),
    ('binary-attachment-without-packet', [b'\x00\x01\x02'], 'without a binary packet'),
    ('reserved-event-name', ['2["connect"]'], 'reserved event'),
    ('connect-error-from-client', ['4{"message":"spoofed"}'], 'CONNECT_ERROR'),
]


@pytest.fixture
def hostile(async_server: AsyncServerProcess) -> AsyncServerProcess:
    return _with(async_server, 'hostile')


@pytest.mark.parametrize(('messages', 'log'), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_codec_violation_closes_only_the_offender(hostile: AsyncServerProcess, messages: list[str | bytes],
                                                  log: str) -> None:
    good, good_sid = connect_sio(hostile.url)
    attacker, attacker_sid = connect_sio(hostile.url)
    try:
        for client in (good, attacker):
            client.send_sio('21["join","room"]')
            assert client.recv_sio() == '31["joined"]'
        for message in messages:
            if isinstance(message, str):
                attacker.send_sio(message)
            else:
                attacker.send(message)
        seen = attacker.wait_closed(timeout=3)
        assert rc.EIO_CLOSE in seen and attacker.close_code == 1000  # Engine.IO CLOSE, then a clean close
        assert rc.wait_until(lambda: (attacker_sid, 'server disconnect') in hostile('app.disconnects'), timeout=2)
        assert not hostile("sio.manager.is_connected(sid, '/')", sid=attacker_sid)
        assert _logged(hostile, 'protocol violation', log), hostile('LOGS')
        assert hostile('app.calls') == []  # no handler, no catch-all ran
        # the neighbour is served, and was relayed nothing
        good.send_sio('22["echo","still here"]')
        assert good.recv_sio() == '32["still here"]'
        assert hostile('[d for d in app.disconnects if d[0] == sid]', sid=good_sid) == []
    finally:
        good.close()
        attacker.close()


def test_codec_violation_over_polling_closes_the_session(hostile: AsyncServerProcess) -> None:
    session = rc.PollingSession(hostile.url)
    sid = session.sio_connect()
    assert session.send('42["up",NaN]').status == 200  # the Engine.IO payload itself is well formed
    assert rc.wait_until(lambda: not hostile("sio.manager.is_connected(sid, '/')", sid=sid), timeout=3)
    r = session.poll(timeout=3)
    assert r.status == 400 or rc.decode_payload(r.text) == [rc.EIO_CLOSE]
    assert session.poll(timeout=3).status == 400
    assert hostile('app.calls') == []
    assert _logged(hostile, 'protocol violation', 'invalid JSON')


def test_binary_attachments_over_polling_are_reassembled(hostile: AsyncServerProcess) -> None:
    session = rc.PollingSession(hostile.url)
    sid = session.sio_connect()
    assert session.send(f'452-["up",{PH(1)},{PH(0)}]', 'bAQID', 'bBAU=').status == 200
    assert rc.wait_until(lambda: hostile('app.calls'), timeout=3)
    assert hostile('app.calls') == [('up', sid, b'\x04\x05', b'\x01\x02\x03')]


def test_a_client_cannot_answer_another_clients_ack(hostile: AsyncServerProcess) -> None:
    good, good_sid = connect_sio(hostile.url)
    attacker, _ = connect_sio(hostile.url)
    try:
        waiter = gevent.spawn(hostile, "sio.call('question', to=sid, timeout=5)", sid=good_sid)
        assert good.recv_sio() == '21["question"]'
        attacker.send_sio('31["forged"]')  # the id the good client was asked to answer
        attacker.send_sio('22["echo","sync"]')
        assert attacker.recv_sio() == '32["sync"]'  # the forged ack has been processed by now
        assert not waiter.ready()
        good.send_sio('31["genuine"]')
        assert waiter.get(timeout=5) == 'genuine'
        assert _logged(hostile, 'Unknown callback')
    finally:
        good.close()
        attacker.close()


@pytest.mark.parametrize('accept', [False, True])
def test_events_behind_a_connect_wait_for_its_handler(hostile: AsyncServerProcess, accept: bool) -> None:
    # a client may send events right behind its CONNECT: none may run before the connect
    # handler has decided, and none at all when it refuses
    client = rc.RawSioClient(hostile.url)
    auth = {'token': 'good' if accept else 'bad'}
    try:
        client.send_sio('0/slow,' + json.dumps(auth))
        client.send_sio('2/slow,1["secret"]')
        answer = client.recv_sio()
        if accept:
            assert answer.startswith('0/slow,{"sid":')
            assert client.recv_sio() == '3/slow,1["the secret"]'
            assert hostile('app.calls') == [('slow connect', auth), ('secret',)]
        else:
            assert answer.startswith('4/slow,{"message":')
            client.send_sio('0/slow,' + json.dumps(auth))  # a second attempt, behind the refused event
            assert client.recv_sio().startswith('4/slow,{"message":')
            assert hostile('app.calls') == [('slow connect', auth), ('slow connect', auth)]
    finally:
        client.close()


# -- async_mode ---------------------------------------------------------------------------------------


def test_asgi_app_serves_a_server_created_without_async_mode() -> None:
    import greensio

    # python-engineio picked 'sanic' whenever its driver module imported, sanic installed or not
    detected = greensio.AsyncServer()
    expected = 'aiohttp' if importlib.util.find_spec('aiohttp') else 'asgi'
    assert detected.async_mode == expected
    greensio.ASGIApp(detected)  # AsyncServer() + ASGIApp, as python-socketio's docs write it
    assert detected.async_mode == detected.eio.async_mode == 'asgi'
    if expected == 'aiohttp':
        with pytest.raises(ValueError, match="async_mode='asgi'"):
            greensio.ASGIApp(greensio.AsyncServer(async_mode='aiohttp'))  # an explicit choice is kept
