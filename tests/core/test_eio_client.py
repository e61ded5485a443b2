"""Engine.IO v4 client core, without sockets: handshake, polling, upgrade probe, heartbeat, close.

The last tests join this client core to the server core in memory (the
shells' part played by a few lines each), so both sides of every exchange
are checked against each other.
"""

from __future__ import annotations

import pytest

from greensio._core.eio_client import (
    CLOSED,
    PAUSING,
    POLLING,
    PROBING,
    WEBSOCKET,
    ClientReason,
    EngineClient,
)
from greensio._core.eio_codec import MESSAGE, OutPacket, handshake
from greensio._core.eio_http import Poll, Post, ServerConfig, WebSocketRequest
from greensio._core.eio_server import EngineCore, Reason, ServerSession
from greensio._core.errors import LocalProtocolError, RemoteProtocolError

OPEN = '0' + handshake('abc', ['websocket'], 25, 0, 20, 30)


class Shell:
    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.wakes = 0
        self.ends: list[str] = []

    def message(self, data: str | bytes) -> None:
        self.messages.append(data)

    def wake_writer(self) -> None:
        self.wakes += 1

    def closed(self, reason: str) -> None:
        self.ends.append(reason)


def connected(**options: object) -> tuple[EngineClient, Shell]:
    shell = Shell()
    client = EngineClient(shell, **options)  # type: ignore[arg-type]
    client.receive_handshake(OPEN, 0.0)
    return client, shell


def test_handshake_query_and_open() -> None:
    client = EngineClient(Shell())
    assert client.query('polling') == 'EIO=4&transport=polling'
    info = client.receive_handshake(OPEN.encode(), 10.0)
    assert (info.sid, info.upgrades, info.ping_interval, info.ping_timeout, info.max_payload) == \
        ('abc', ('websocket',), 25.0, 20.0, 30)
    assert client.state == POLLING and client.sid == 'abc'
    assert client.query('websocket') == 'EIO=4&transport=websocket&sid=abc'
    assert client.deadline == 10.0 + 45.0
    with pytest.raises(LocalProtocolError):
        client.receive_handshake(OPEN, 0.0)


def test_handshake_body_with_more_packets() -> None:
    shell = Shell()
    client = EngineClient(shell)
    client.receive_handshake(OPEN + '\x1e4hi', 0.0)
    assert shell.messages == ['hi']


@pytest.mark.parametrize('answer', ['4hi', '', '0{}', '0{"sid":"a"}', b'\xff', '{"sid":"a"}'])
def test_a_bad_handshake_answer_is_the_servers_fault(answer: str | bytes) -> None:
    shell = Shell()
    with pytest.raises(RemoteProtocolError):
        EngineClient(shell).receive_handshake(answer, 0.0)
    assert shell.ends == []


def test_websocket_only_handshake() -> None:
    client = EngineClient(Shell(), transports=('websocket',))
    assert client.query('websocket') == 'EIO=4&transport=websocket'
    client.receive_handshake('0' + handshake('w', [], 25, 0, 20, 10), 0.0)
    assert client.state == WEBSOCKET and not client.upgrade_possible()
    with pytest.raises(LocalProtocolError):
        client.query('polling')
    with pytest.raises(LocalProtocolError):
        EngineClient(Shell(), transports=('carrier-pigeon',))


def test_polling_receive_messages_ping_noop_and_binary() -> None:
    client, shell = connected()
    client.poll_started()
    assert not client.may_poll()
    with pytest.raises(LocalProtocolError):
        client.poll_started()
    client.receive_poll('4hello\x1e2\x1ebAQIDBA==\x1e6', 5.0)
    assert shell.messages == ['hello', b'\x01\x02\x03\x04']
    assert client.deadline == 5.0 + 45.0  # the PING moved it
    assert client.take_post_body() == '3'  # the PONG
    assert client.may_poll()
    client.receive_poll(b'', 6.0)
    assert client.state == POLLING


def test_polling_binary_body() -> None:
    client, shell = connected()
    client.poll_started()
    client.receive_poll(b'\x00\x01', 0.0, binary=True)
    assert shell.messages == [b'\x00\x01']


def test_polling_bad_body_or_failed_request_is_a_transport_error() -> None:
    for feed in (lambda c: c.receive_poll('abc', 0.0), lambda c: c.receive_poll(b'\xff', 0.0),
                 lambda c: c.transport_failed(), lambda c: c.post_done(ok=False)):
        client, shell = connected()
        feed(client)
        assert client.state == CLOSED and shell.ends == [ClientReason.TRANSPORT_ERROR]


def test_server_close() -> None:
    client, shell = connected()
    client.receive_poll('4a\x1e1\x1e4b', 0.0)
    assert shell.messages == ['a'] and shell.ends == [ClientReason.SERVER_DISCONNECT]
    assert client.send(OutPacket(MESSAGE, 'late')) is False and client.take_post_body() is None


def test_post_bodies_are_batched_by_max_payload_one_at_a_time() -> None:
    client, shell = connected()
    for text in ('aaaaaaaa', 'bbbbbbbb', 'cccccccc', '€€€€€€€€€€€€'):
        assert client.send(OutPacket(MESSAGE, text)) is False
    assert shell.wakes == 1
    assert client.take_post_body() == '4aaaaaaaa\x1e4bbbbbbbb\x1e4cccccccc'  # 29 bytes of 30
    assert client.take_post_body() is None  # one POST at a time
    client.post_done()
    assert client.take_post_body() == '4' + '€' * 12  # over maxPayload alone, still sent
    client.post_done()
    assert client.take_post_body() is None


def test_max_packets_per_post() -> None:
    client, _ = connected(max_packets_per_post=2)
    for _ in range(3):
        client.send(OutPacket(MESSAGE, 'x'))
    assert client.take_post_body() == '4x\x1e4x'


def test_heartbeat_deadline() -> None:
    client, shell = connected()
    client.handle_deadline(44.0)
    assert client.state == POLLING
    client.handle_deadline(45.0)
    assert shell.ends == [ClientReason.TRANSPORT_ERROR] and client.deadline == float('inf')


def test_upgrade_sequence() -> None:
    client, shell = connected()
    assert client.upgrade_possible()
    client.poll_started()
    client.send(OutPacket(MESSAGE, 'queued'))
    assert client.start_probe().message() == '2probe' and client.state == PROBING
    assert client.receive_probe('3probe') is True and client.state == PAUSING
    assert not client.may_poll() and not client.upgrade_ready and client.take_post_body() is None
    client.receive_poll('6', 1.0)  # the server released the GET with a NOOP
    assert client.upgrade_ready
    assert [p.message() for p in client.finish_upgrade()] == ['5', '4queued']
    assert client.state == WEBSOCKET and client.transport == 'websocket'
    assert client.send(OutPacket(MESSAGE, 'x')) is True
    assert client.receive_ws('4hi', 2.0) == 'hi' and client.receive_ws(b'\x01', 2.0) == b'\x01'
    assert client.receive_ws('2', 3.0) is None and [p.message() for p in client.take_ws_packets()] == ['3']
    assert client.deadline == 48.0 and shell.ends == []


@pytest.mark.parametrize('reply', ['3nope', '4x', b'\x00'])
def test_a_failed_probe_carries_on_polling(reply: str | bytes) -> None:
    client, _ = connected()
    client.start_probe()
    assert client.receive_probe(reply) is False and client.state == POLLING and client.may_poll()


def test_finish_upgrade_refused_while_a_request_is_in_flight() -> None:
    client, _ = connected()
    client.start_probe()
    client.send(OutPacket(MESSAGE, 'x'))
    assert client.take_post_body() == '4x'
    client.receive_probe('3probe')
    with pytest.raises(LocalProtocolError):
        client.finish_upgrade()
    client.post_done()
    assert client.upgrade_ready


def test_no_upgrade_when_not_offered_or_not_allowed() -> None:
    shell = Shell()
    client = EngineClient(shell)
    client.receive_handshake('0' + handshake('a', [], 25, 0, 20, 10), 0.0)
    assert not client.upgrade_possible()
    with pytest.raises(LocalProtocolError):
        client.start_probe()
    client, _ = connected(transports=('polling',))
    assert not client.upgrade_possible()


def test_websocket_bad_packet_and_close() -> None:
    client = EngineClient(Shell(), transports=('websocket',))
    client.receive_handshake('0' + handshake('w', [], 25, 0, 20, 10), 0.0)
    assert client.receive_ws('x', 0.0) is None and client.close_reason == ClientReason.TRANSPORT_ERROR
    client = EngineClient(Shell(), transports=('websocket',))
    client.receive_handshake('0' + handshake('w', [], 25, 0, 20, 10), 0.0)
    assert client.receive_ws('1', 0.0) is None and client.close_reason == ClientReason.SERVER_DISCONNECT


def test_client_close() -> None:
    client, shell = connected()
    client.send(OutPacket(MESSAGE, 'last'))
    assert client.close() is True and client.close() is False
    assert shell.ends == [ClientReason.CLIENT_DISCONNECT]
    assert client.take_post_body() == '4last\x1e1'  # the writer still posts the CLOSE


# -- both cores joined in memory --------------------------------------------------------------------------


class ServerShell:
    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.ends: list[str] = []

    def message(self, session: ServerSession, data: str | bytes) -> None:
        self.messages.append(data)

    def wake_poll(self, session: ServerSession) -> None:
        pass

    def closed(self, session: ServerSession, reason: str) -> None:
        self.ends.append(reason)


def pair() -> tuple[EngineCore, ServerShell, EngineClient, Shell, ServerSession]:
    server_shell, client_shell = ServerShell(), Shell()
    core = EngineCore(ServerConfig(ping_interval=0.3, ping_timeout=0.2, cors_allowed_origins='*'), server_shell)
    client = EngineClient(client_shell)
    core.route('GET', client.query('polling'), {})
    session, _ = core.open('S', 'polling', 0.0)
    body = session.poll(0.0)
    assert body is not None
    client.receive_handshake(body, 0.0)
    return core, server_shell, client, client_shell, session


def client_post(core: EngineCore, client: EngineClient, now: float) -> None:
    body = client.take_post_body()
    assert body is not None
    r = core.route('POST', client.query('polling'), {'content-length': str(len(body.encode()))})
    assert isinstance(r, Post)
    r.session.receive_post(body.encode(), now, post=r)
    client.post_done()


def client_get(core: EngineCore, client: EngineClient, now: float) -> str | None:
    client.poll_started()
    r = core.route('GET', client.query('polling'), {})
    assert isinstance(r, Poll)
    body = r.session.poll(now)
    if body is not None:
        client.receive_poll(body, now)
    return body


def test_joined_polling_heartbeat_and_messages() -> None:
    core, server_shell, client, client_shell, session = pair()
    client.send(OutPacket(MESSAGE, 'up'))
    client_post(core, client, 0.1)
    assert server_shell.messages == ['up']
    session.send(OutPacket(MESSAGE, b'\x00down'))
    session.handle_deadline(0.3)
    assert client_get(core, client, 0.3) == 'bAGRvd24=\x1e2'
    assert client_shell.messages == [b'\x00down']
    client_post(core, client, 0.35)  # the PONG
    assert session.deadline == pytest.approx(0.65) and client.deadline == pytest.approx(0.8)


def test_joined_upgrade() -> None:
    core, _, client, client_shell, session = pair()
    assert client_get(core, client, 0.0) is None  # a GET waits on the server
    r = core.route('GET', client.query('websocket'), {'upgrade': 'websocket'})
    assert isinstance(r, WebSocketRequest) and r.session is session
    step = session.receive_probe(client.start_probe().message(), 0.1)
    assert step is not None
    assert client.receive_probe(step[1][0].message())
    client.receive_poll(session.finish_poll(), 0.1)  # the waiting GET was released with a NOOP
    session.send(OutPacket(MESSAGE, 'buffered'))
    client.send(OutPacket(MESSAGE, 'waited'))
    assert [p.message() for p in client.finish_upgrade()] == ['5', '4waited']
    step = session.receive_probe('5', 0.2)
    assert step is not None and step[0] is True and session.state == WEBSOCKET
    assert [client.receive_ws(p.message(), 0.2) for p in step[1]] == ['buffered']
    assert session.receive_ws('4waited', 0.2) == 'waited'
    assert session.handle_deadline(session.deadline) is True  # the shell writes the PING
    assert client.receive_ws('2', 0.5) is None
    assert session.receive_ws(client.take_ws_packets()[0].message(), 0.55) is None
    assert session.deadline == pytest.approx(0.85) and client_shell.ends == []


def test_joined_close_both_ways() -> None:
    core, server_shell, client, client_shell, session = pair()
    client.close()
    client_post(core, client, 0.0)
    assert server_shell.ends == [Reason.CLIENT_DISCONNECT]
    core, server_shell, client, client_shell, session = pair()
    core.close(session)
    client_get(core, client, 0.0)
    assert client_shell.ends == [ClientReason.SERVER_DISCONNECT] and server_shell.ends == [Reason.SERVER_DISCONNECT]
