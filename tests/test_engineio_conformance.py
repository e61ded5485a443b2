"""Engine.IO v4 conformance of greensio's server, over real sockets.

Each python-engineio defect that ``greensio/engine.py`` corrects has a test
here written so that python-engineio's behaviour fails it; the rest pins the
handshake (OPEN fields, protocol version, transport, unknown sessions).  The
wire is driven by hand with ``rawclient`` so nothing is hidden by a client
library's tolerance.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from typing import Any

import gevent
import pytest
import rawclient as rc

import greensio

pytestmark = pytest.mark.timeout(20)


class App:
    """A greensio server with a few handlers that record what they see."""

    def __init__(self, serve: Any, **options: Any) -> None:
        self.sio = greensio.Server(**options)
        self.counted: list[int] = []
        self.disconnects: list[tuple[str, str]] = []

        @self.sio.event
        def count(sid: str, i: int) -> None:
            self.counted.append(i)

        @self.sio.event
        def echo(sid: str, *args: Any) -> Any:
            return args

        @self.sio.event
        def say(sid: str, text: str) -> None:
            self.sio.emit('said', text, to=sid)

        @self.sio.event
        def disconnect(sid: str, reason: str) -> None:
            self.disconnects.append((sid, reason))

        self.url = serve(self.sio)

    def socket_of(self, eio_sid: str) -> Any:
        return self.sio.eio.sockets.get(eio_sid)


@pytest.fixture
def app(serve: Any) -> App:
    return App(serve)


# -- handshake ------------------------------------------------------------------------------


def test_open_packet_fields_over_polling(app: App) -> None:
    sid, fields = rc.polling_handshake(app.url)
    assert set(fields) == {'sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload'}
    assert isinstance(sid, str) and len(sid) == 20 and sid in app.sio.eio.sockets
    assert fields['upgrades'] == ['websocket']
    assert (fields['pingInterval'], fields['pingTimeout'], fields['maxPayload']) == (25000, 20000, 1_000_000)


def test_open_packet_fields_over_websocket(serve: Any) -> None:
    app = App(serve, ping_interval=7, ping_timeout=3, max_http_buffer_size=4096)
    client = rc.RawSioClient(app.url)
    try:
        assert client.open['upgrades'] == []  # nothing to upgrade to
        assert (client.open['pingInterval'], client.open['pingTimeout'], client.open['maxPayload']) == (
            7000, 3000, 4096)
    finally:
        client.close()


@pytest.mark.parametrize(('interval', 'advertised'), [(0.5, 500), ((0.5, 0.25), 750), (1.5, 1500)])
def test_sub_second_ping_interval_is_advertised(serve: Any, interval: Any, advertised: int) -> None:
    # python-engineio computed int(interval) * 1000: 0 for any sub-second interval
    app = App(serve, ping_interval=interval, ping_timeout=0.25)
    _, fields = rc.polling_handshake(app.url)
    assert fields['pingInterval'] == advertised
    assert fields['pingTimeout'] == 250


def test_sub_second_ping_interval_is_honoured(serve: Any) -> None:
    app = App(serve, ping_interval=0.3, ping_timeout=5)
    client, _ = rc.connect_sio(app.url, answer_pings=False)
    try:
        start = time.monotonic()
        assert client.recv(timeout=3) == rc.EIO_PING
        client.send(rc.EIO_PONG)
        assert client.recv(timeout=3) == rc.EIO_PING
        assert time.monotonic() - start < 2
    finally:
        client.close()


@pytest.mark.parametrize('version', ['3', '2', '5', ''])
def test_other_protocol_versions_are_refused(app: App, version: str) -> None:
    r = rc.get(app.url, {'EIO': version, 'transport': 'polling'})
    assert r.status == 400
    assert app.sio.eio.sockets == {}


def test_request_without_transport_is_refused(app: App) -> None:
    # python-engineio assumed polling when the parameter was missing
    assert rc.get(app.url, {'EIO': 4}).status == 400
    sid, _ = rc.polling_handshake(app.url)
    assert rc.get(app.url, {'EIO': 4, 'sid': sid}).status == 400
    assert rc.post(app.url, {'EIO': 4, 'sid': sid}, '6').status == 400


def test_unknown_transport_is_refused(app: App) -> None:
    assert rc.get(app.url, {'EIO': 4, 'transport': 'carrier-pigeon'}).status == 400


def test_unknown_sid_is_refused(app: App) -> None:
    params = {'EIO': 4, 'transport': 'polling', 'sid': 'no-such-session-xxxx'}
    assert rc.get(app.url, params).status == 400
    assert rc.post(app.url, params, '40').status == 400


# -- polling POST ---------------------------------------------------------------------------


def test_post_answer_body_is_ok(app: App) -> None:
    session = rc.PollingSession(app.url)
    r = session.send(rc.EIO_NOOP)
    assert r.status == 200
    assert r.body == b'ok'  # the spec and the reference server; python-engineio said 'OK'


def test_post_with_twenty_packets_delivers_all(app: App) -> None:
    # python-engineio dropped a whole payload of more than 16 packets (and answered OK)
    session = rc.PollingSession(app.url)
    session.sio_connect()
    r = session.send(*(f'42["count",{i}]' for i in range(20)))
    assert (r.status, r.body) == (200, b'ok')
    assert rc.wait_until(lambda: len(app.counted) >= 20, timeout=5)
    assert sorted(app.counted) == list(range(20))


@pytest.mark.parametrize(
    'body',
    ['x', '4hello\x1e\x1e4again', '\x1e', 'b!!!not-base64', '9', '4ok\x1e7bad', b'4\xff\xfe'],
    ids=repr,
)
def test_malformed_post_closes_the_session(app: App, caplog: Any, body: str | bytes) -> None:
    caplog.set_level(logging.WARNING, logger='engineio.server')
    session = rc.PollingSession(app.url)
    session.sio_connect()
    r = session.send(body)
    assert r.status == 400
    assert session.poll(timeout=2).status == 400  # the session is gone, not just this request
    assert rc.wait_until(lambda: len(app.disconnects) == 1, timeout=2)
    assert 'malformed polling payload' in caplog.text


def test_post_after_upgrade_is_refused(app: App) -> None:
    session = rc.PollingSession(app.url)
    client = rc.RawSioClient(app.url, sid=session.sid)
    try:
        client.send('2probe')
        assert client.recv() == '3probe'
        client.send(rc.EIO_UPGRADE)
        assert rc.wait_until(lambda: app.socket_of(session.sid).upgraded, timeout=2)
        assert session.send('40').status == 400
    finally:
        client.close()


# -- polling GET ------------------------------------------------------------------------------


def test_duplicate_concurrent_get_closes_the_session(app: App, caplog: Any) -> None:
    # spec: a second pending GET is an error; python-engineio left both waiting
    caplog.set_level(logging.WARNING, logger='engineio.server')
    session = rc.PollingSession(app.url)
    first = gevent.spawn(session.poll, 5)
    assert rc.wait_until(lambda: getattr(app.socket_of(session.sid), '_polling', False), timeout=2)
    start = time.monotonic()
    second = session.poll(timeout=5)
    assert second.status == 400
    first_result = first.get(timeout=3)
    assert time.monotonic() - start < 2
    # the waiting poll is released by the close, with a CLOSE packet or an error
    assert first_result.status == 400 or rc.decode_payload(first_result.text) == [rc.EIO_CLOSE]
    assert session.poll(timeout=2).status == 400
    assert 'overlapping polling GET' in caplog.text


# -- upgrade ------------------------------------------------------------------------------------


def _upgrade(app: App, session: rc.PollingSession, pending_poll: bool) -> tuple[rc.RawSioClient, Any]:
    poll = None
    if pending_poll:
        poll = gevent.spawn(session.poll, 5)
        assert rc.wait_until(lambda: getattr(app.socket_of(session.sid), '_polling', False), timeout=2)
    client = rc.RawSioClient(app.url, sid=session.sid)
    client.send('2probe')
    assert client.recv() == '3probe'
    if poll is not None:
        # the pending poll is released with a NOOP so the client can pause polling
        assert rc.decode_payload(poll.get(timeout=3).text) == [rc.EIO_NOOP]
    client.send(rc.EIO_UPGRADE)
    return client, poll


@pytest.mark.parametrize('pending_poll', [True, False], ids=['poll-pending', 'no-poll-pending'])
def test_no_stray_noop_after_upgrade(app: App, pending_poll: bool) -> None:
    # python-engineio answered the client's UPGRADE packet with a NOOP
    session = rc.PollingSession(app.url)
    client, _ = _upgrade(app, session, pending_poll)
    try:
        client.send_sio('0')
        answer = client.recv(timeout=3)
        assert isinstance(answer, str) and answer.startswith('40{"sid":'), answer
        client.send_sio('2["say","hi"]')
        assert client.recv(timeout=3) == '42["said","hi"]'
        client.send_sio('21["echo","x"]')
        assert client.recv(timeout=3) == '431["x"]'
    finally:
        client.close()


@pytest.mark.parametrize('how', ['closed-at-once', 'wrong-probe', 'no-upgrade-packet'])
def test_failed_upgrade_leaves_the_polling_session_working(app: App, how: str) -> None:
    # the spec: a client whose probe fails keeps polling, so the session must survive
    session = rc.PollingSession(app.url)
    sid = session.sio_connect()
    client = rc.RawSioClient(app.url, sid=session.sid)
    if how == 'wrong-probe':
        client.send('2notprobe')
    elif how == 'no-upgrade-packet':
        client.send('2probe')
        assert client.recv() == '3probe'
    client.close()
    assert rc.wait_until(lambda: not app.socket_of(session.sid).upgrading, timeout=3)
    assert session.send('421["echo","still polling"]').body == b'ok'
    assert session.poll_packets(timeout=3) == ['431["still polling"]']
    assert app.sio.manager.is_connected(sid, '/') and app.disconnects == []


def test_messages_queued_before_the_upgrade_arrive_over_the_websocket(app: App) -> None:
    session = rc.PollingSession(app.url)
    sid = session.sio_connect()
    client = rc.RawSioClient(app.url, sid=session.sid)
    try:
        client.send('2probe')
        assert client.recv() == '3probe'
        app.sio.emit('queued', 1, to=sid)  # lands in the polling queue
        client.send(rc.EIO_UPGRADE)
        # first the queued message: no NOOP (it was meant for a poll that never came)
        assert client.recv(timeout=3) == '42["queued",1]'
    finally:
        client.close()


# -- oversize input -----------------------------------------------------------------------------


@pytest.mark.parametrize('with_sid', [True, False], ids=['session', 'no-session'])
def test_oversize_post_is_answered_at_once_and_the_connection_dropped(serve: Any, with_sid: bool) -> None:
    # python-engineio never answered and kept the socket and its greenlet forever
    app = App(serve, max_http_buffer_size=10_000)
    baseline = rc.open_fds()
    sid, _ = rc.polling_handshake(app.url)
    assert rc.wait_until(lambda: rc.open_fds() == baseline, timeout=3)
    query = f'EIO=4&transport=polling&sid={sid}' if with_sid else 'EIO=4&transport=polling&sid=nope'
    sock = socket.create_connection(('127.0.0.1', int(app.url.rsplit(':', 1)[1])), timeout=5)
    try:
        start = time.monotonic()
        sock.sendall(
            f'POST /socket.io/?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n'
            f'Content-Length: 10000000\r\n\r\n'.encode()
        )  # ... and not one byte of the body
        status, _ = rc.read_http_response(sock, timeout=3)
        assert status == 413
        assert rc.wait_eof(sock, timeout=3), 'the server kept the connection open'
        assert time.monotonic() - start < 2
    finally:
        sock.close()
    assert rc.wait_until(lambda: rc.open_fds() == baseline, timeout=3), 'a file descriptor leaked'
    if with_sid:
        assert rc.get(app.url, {'EIO': 4, 'transport': 'polling', 'sid': sid}).status == 400


def test_post_at_the_size_limit_is_accepted(serve: Any) -> None:
    app = App(serve, max_http_buffer_size=1000)
    session = rc.PollingSession(app.url)
    session.sio_connect()
    packet = '42["count",1]'
    body = packet + ' ' * (1000 - len(packet))  # JSON tolerates the padding
    assert len(body.encode()) == 1000
    assert session.send(body).status == 200
    assert rc.wait_until(lambda: app.counted == [1], timeout=3)


def test_websocket_frame_declaring_one_gib_is_never_buffered(app: App, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger='engineio.server')
    client, _ = rc.connect_sio(app.url)
    try:
        rss_before = rc.rss_bytes()
        start = time.monotonic()
        header = rc.build_frame(rc.OP_BINARY, b'', declared_length=1 << 30)
        client.send_raw(header[:2] + header[2:10] + b'\x01\x02\x03\x04')  # length 2**30, then the mask
        try:
            client.send_raw(b'\x00' * 65536)  # a first slice of the "payload"
        except OSError:
            pass  # already closed: fine
        client.wait_closed(timeout=3)
        assert time.monotonic() - start < 2
        assert client.close_code == 1009
        assert rc.rss_bytes() - rss_before < 32 * 1024 * 1024
        assert 'message too big' in caplog.text
    finally:
        client.close()
    # the server carries on
    other, _ = rc.connect_sio(app.url)
    try:
        other.send_sio('21["echo",1]')
        assert other.recv_sio() == '31[1]'
    finally:
        other.close()


def test_websocket_message_at_the_size_limit_is_accepted(serve: Any) -> None:
    app = App(serve, max_http_buffer_size=2000)
    client, _ = rc.connect_sio(app.url)
    try:
        text = '421["echo","' + 'x' * (2000 - 14) + '"]'
        assert len(text) == 2000
        client.send(text)
        assert client.recv_sio() == '31["' + 'x' * (2000 - 14) + '"]'
        client.send('421["echo","' + 'x' * (2000 - 13) + '"]')
        client.wait_closed(timeout=3)
        assert client.close_code == 1009
    finally:
        client.close()


# -- dead peers -------------------------------------------------------------------------------


def test_ping_timeout_closes_the_websocket_tcp_connection(serve: Any) -> None:
    app = App(serve, ping_interval=0.2, ping_timeout=0.2)
    client, sid = rc.connect_sio(app.url, answer_pings=False)
    try:
        start = time.monotonic()
        seen = client.wait_closed(timeout=3)  # recv() returned b'' before this returns
        assert time.monotonic() - start < 2
        assert rc.EIO_PING in seen
        assert rc.wait_until(lambda: app.disconnects, timeout=2)
        assert app.disconnects[0][0] == sid
        assert app.disconnects[0][1] == app.sio.reason.PING_TIMEOUT  # as python-socketio reports it
        assert app.sio.eio.sockets == {} or all(s.closed for s in app.sio.eio.sockets.values())
    finally:
        client.close()


def test_ping_timeout_releases_a_polling_session(serve: Any) -> None:
    app = App(serve, ping_interval=0.2, ping_timeout=0.2)
    session = rc.PollingSession(app.url)
    sid = session.sio_connect()
    # never answer the PING: the session ends with a CLOSE or an error
    packets = session.poll_packets(timeout=3)
    assert packets == [rc.EIO_PING]
    assert rc.wait_until(lambda: app.disconnects, timeout=3)
    assert app.disconnects == [(sid, app.sio.reason.PING_TIMEOUT)]


# -- JSONP ------------------------------------------------------------------------------------------

_JSONP = re.compile(r'^___eio\[(\d+)\]\((.*)\);$', re.DOTALL)


def _jsonp_body(result: rc.HttpResult, index: int) -> str:
    assert result.status == 200
    match = _JSONP.match(result.text)
    assert match, result.text
    assert int(match.group(1)) == index
    return json.loads(match.group(2))  # a JS string literal that is also valid JSON


def test_jsonp_escapes_backslashes_and_quotes(app: App) -> None:
    # python-engineio escaped only double quotes, so a payload ending in a
    # backslash escaped the closing quote and broke out of the string
    opened = _jsonp_body(rc.get(app.url, {'EIO': 4, 'transport': 'polling', 'j': 3}), 3)
    sid = json.loads(opened[1:])['sid']
    params = {'EIO': 4, 'transport': 'polling', 'sid': sid, 'j': 3}
    assert rc.post(app.url, params, 'd=' + '40').status == 200
    connected = _jsonp_body(rc.get(app.url, params), 3)
    assert connected.startswith('40{"sid":')
    sio_sid = json.loads(connected[2:])['sid']
    app.sio.eio.send(sid, 'raw ends with a backslash \\')
    app.sio.emit('msg', 'quote " backslash \\ and \u2028 line separator \\', to=sio_sid)
    body = _jsonp_body(rc.get(app.url, params), 3)
    packets = rc.decode_payload(body)
    assert packets[0] == '4raw ends with a backslash \\'
    assert json.loads(packets[1][2:]) == ['msg', 'quote " backslash \\ and \u2028 line separator \\']
