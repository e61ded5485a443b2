"""Engine.IO v4 server core: routing, long-polling, websocket, upgrade, heartbeats and close, without sockets.

Each expectation of the protocol's official test suite has a test here
(named after it), plus the state transitions of the session table.  Time
is a number passed in; a shell is a recorder.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest

from greensio._core.eio_codec import CLOSE_PACKET, MESSAGE, PING_PACKET, OutPacket
from greensio._core.eio_http import (
    Handshake,
    HttpRefused,
    Poll,
    Post,
    Preflight,
    Refusal,
    ServerConfig,
    WebSocketRequest,
    compress,
    parse_query,
)
from greensio._core.eio_server import (
    CLOSED,
    CLOSING,
    POLLING,
    PROBING,
    WEBSOCKET,
    EngineCore,
    Reason,
    ServerSession,
    generate_sid,
)
from greensio._core.errors import LocalProtocolError

# the official suite's server: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, cors origin '*'
INTERVAL, TIMEOUT = 0.3, 0.2
Q = 'EIO=4&transport=polling'


class Shell:
    """Records what the core asks of a shell."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str | bytes]] = []
        self.woken: list[str] = []
        self.ends: list[tuple[str, str]] = []

    def message(self, session: ServerSession, data: str | bytes) -> None:
        self.messages.append((session.sid, data))

    def wake_poll(self, session: ServerSession) -> None:
        self.woken.append(session.sid)

    def closed(self, session: ServerSession, reason: str) -> None:
        self.ends.append((session.sid, reason))


def make(**options: Any) -> tuple[EngineCore, Shell]:
    options.setdefault('ping_interval', INTERVAL)
    options.setdefault('ping_timeout', TIMEOUT)
    options.setdefault('cors_allowed_origins', '*')
    shell = Shell()
    return EngineCore(ServerConfig(**options), shell), shell


def route(core: EngineCore, method: str, query: str, **headers: str) -> Any:
    return core.route(method, query, {k.replace('_', '-'): v for k, v in headers.items()})


def handshake(core: EngineCore, now: float = 0.0, sid: str = 'S1') -> tuple[ServerSession, str]:
    """A long-polling session, as the official suite's initLongPollingSession makes it."""
    r = route(core, 'GET', Q)
    assert isinstance(r, Handshake) and r.transport == 'polling'
    session, _ = core.open(sid, 'polling', now)
    body = session.poll(now)
    assert body is not None
    return session, body


def get(core: EngineCore, sid: str, now: float = 0.0) -> str | None:
    r = route(core, 'GET', f'{Q}&sid={sid}')
    assert isinstance(r, Poll), r
    return r.session.poll(now)


def post(core: EngineCore, sid: str, body: bytes | str, now: float = 0.0) -> int:
    """The status a POST gets."""
    data = body.encode() if isinstance(body, str) else body
    r = route(core, 'POST', f'{Q}&sid={sid}', content_length=str(len(data)))
    if isinstance(r, Refusal):
        return r.status
    assert isinstance(r, Post)
    try:
        r.session.receive_post(data, now, post=r)
    except HttpRefused as exc:
        return exc.refusal.status
    assert r.ok().body == b'ok'
    return 200


def refusal(r: Any) -> tuple[int, int | None]:
    assert isinstance(r, Refusal), r
    return r.status, r.code


def ws_session(core: EngineCore, now: float = 0.0, sid: str = 'W1') -> tuple[ServerSession, OutPacket]:
    r = route(core, 'GET', 'EIO=4&transport=websocket', upgrade='websocket')
    assert isinstance(r, WebSocketRequest) and r.session is None
    return core.open(sid, 'websocket', now)


def upgrade(core: EngineCore, session: ServerSession, now: float = 0.0) -> list[OutPacket]:
    r = route(core, 'GET', f'EIO=4&transport=websocket&sid={session.sid}', upgrade='websocket')
    assert isinstance(r, WebSocketRequest) and r.session is session
    step = session.receive_probe('2probe', now)
    assert step is not None and step[0] is False and [p.message() for p in step[1]] == ['3probe']
    step = session.receive_probe('5', now)
    assert step is not None and step[0] is True
    return step[1]


# -- handshake (official suite) -------------------------------------------------------------------------


def test_polling_handshake_opens_a_session() -> None:
    core, _ = make(max_payload=1000000)
    session, body = handshake(core)
    assert body[0] == '0'
    value = json.loads(body[1:])
    assert set(value) == {'sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload'}
    assert value == {'sid': 'S1', 'upgrades': ['websocket'], 'pingInterval': 300, 'pingTimeout': 200,
                     'maxPayload': 1000000}
    assert core.sessions == {'S1': session} and session.state == POLLING


@pytest.mark.parametrize('query', ['transport=polling', 'EIO=abc&transport=polling', 'EIO=3&transport=polling'])
def test_handshake_fails_with_an_invalid_eio(query: str) -> None:
    core, _ = make()
    assert refusal(route(core, 'GET', query)) == (400, 5)
    assert json.loads(route(core, 'GET', query).response().body) == {'code': 5,
                                                                        'message': 'Unsupported protocol version'}


@pytest.mark.parametrize('query', ['EIO=4', 'EIO=4&transport=abc', 'EIO=4&transport=webtransport'])
def test_handshake_fails_with_an_invalid_transport(query: str) -> None:
    core, _ = make()
    assert refusal(route(core, 'GET', query)) == (400, 0)


@pytest.mark.parametrize('method', ['POST', 'PUT', 'DELETE'])
def test_handshake_fails_with_an_invalid_request_method(method: str) -> None:
    core, _ = make()
    assert refusal(route(core, method, Q)) == (400, 2)


def test_websocket_handshake_opens_a_session_with_no_upgrades() -> None:
    core, _ = make()
    session, packet = ws_session(core)
    value = json.loads(packet.message()[1:])  # type: ignore[index]
    assert value['upgrades'] == [] and value['pingInterval'] == 300 and value['maxPayload'] == 1000000
    assert session.state == WEBSOCKET and session.transport == 'websocket'


@pytest.mark.parametrize('query', ['transport=websocket', 'EIO=abc&transport=websocket', 'EIO=4',
                                   'EIO=4&transport=abc'])
def test_websocket_handshake_refused_before_the_upgrade(query: str) -> None:
    core, _ = make()
    assert refusal(route(core, 'GET', query, upgrade='websocket'))[0] == 400


def test_websocket_transport_without_an_upgrade_header_is_a_bad_request() -> None:
    core, _ = make()
    assert refusal(route(core, 'GET', 'EIO=4&transport=websocket')) == (400, 3)


def test_unknown_sid() -> None:
    core, _ = make()
    for method in ('GET', 'POST'):
        assert refusal(route(core, method, f'{Q}&sid=nope')) == (400, 1)
    assert refusal(route(core, 'GET', 'EIO=4&transport=websocket&sid=nope', upgrade='websocket')) == (400, 1)
    assert refusal(route(core, 'GET', f'{Q}&sid={"x" * 1000}')) == (400, 1)


def test_unsupported_method_with_a_sid_is_a_bad_request() -> None:
    core, _ = make()
    handshake(core)
    assert refusal(route(core, 'PUT', f'{Q}&sid=S1')) == (400, 3)


def test_transports_option() -> None:
    core, _ = make(transports=('polling',))
    assert refusal(route(core, 'GET', 'EIO=4&transport=websocket', upgrade='websocket')) == (400, 0)
    _session, body = handshake(core)
    assert json.loads(body[1:])['upgrades'] == []
    core, _ = make(transports=('websocket',))
    assert refusal(route(core, 'GET', Q)) == (400, 0)
    with pytest.raises(LocalProtocolError):
        ServerConfig(transports=('carrier-pigeon',))


def test_allow_upgrades_false_offers_none_and_refuses_the_upgrade() -> None:
    core, _ = make(allow_upgrades=False)
    _session, body = handshake(core)
    assert json.loads(body[1:])['upgrades'] == []
    assert refusal(route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')) == (400, 3)


def test_a_shell_without_websockets_offers_no_upgrade() -> None:
    core = EngineCore(ServerConfig(), Shell(), websocket_available=False)
    assert core.upgrades('polling') == []
    assert refusal(core.route('GET', 'EIO=4&transport=websocket', {'upgrade': 'websocket'})) == (400, 0)


def test_application_refusal_and_discard() -> None:
    core, shell = make()
    session, _ = core.open('S1', 'polling', 0.0)
    core.discard(session)
    assert core.sessions == {} and shell.ends == []
    answer = core.unauthorized({'reason': 'no'})
    assert answer.status == 401 and json.loads(answer.body) == {'reason': 'no'}
    assert json.loads(core.unauthorized().body) == 'Unauthorized'


def test_open_refuses_a_sid_in_use() -> None:
    core, _ = make()
    core.open('S1', 'polling', 0.0)
    with pytest.raises(LocalProtocolError):
        core.open('S1', 'polling', 0.0)


def test_generated_sids_are_unique_and_url_safe() -> None:
    sids = {generate_sid() for _ in range(1000)}
    assert len(sids) == 1000 and all(len(s) == 20 and s.replace('-', '').replace('_', '').isalnum() for s in sids)


def test_parse_query() -> None:
    assert parse_query('EIO=4&transport=polling&t=N8hyd6w') == {'EIO': '4', 'transport': 'polling', 't': 'N8hyd6w'}
    assert parse_query('sid=a%2Bb&sid=c&x') == {'sid': 'a+b', 'x': ''}
    assert parse_query('') == {}


# -- message (official suite) ------------------------------------------------------------------------


@pytest.mark.parametrize('payload', ['4hello', '4test1\x1e4test2\x1e4test3', '4hello\x1ebAQIDBA=='])
def test_polling_echo(payload: str) -> None:
    core, shell = make()
    session, _ = handshake(core)
    assert post(core, 'S1', payload) == 200
    for _, data in shell.messages:  # the suite's server echoes every message
        session.send(OutPacket(MESSAGE, data))
    assert get(core, 'S1') == payload


def test_polling_invalid_packet_closes_the_session() -> None:
    core, shell = make()
    handshake(core)
    assert post(core, 'S1', 'abc') == 400
    assert shell.ends == [('S1', Reason.TRANSPORT_ERROR)]
    assert refusal(route(core, 'GET', f'{Q}&sid=S1')) == (400, 1)


def test_polling_duplicate_poll_closes_the_session() -> None:
    core, shell = make()
    session, _ = handshake(core)
    assert get(core, 'S1') is None  # waits
    with pytest.raises(HttpRefused) as refused:
        get(core, 'S1')
    assert refused.value.refusal.status == 400 and refused.value.refusal.closed is session
    assert shell.woken == ['S1'] and session.finish_poll() == '1'  # the first poll gets a CLOSE
    assert shell.ends == [('S1', Reason.TRANSPORT_ERROR)]
    assert refusal(route(core, 'GET', f'{Q}&sid=S1')) == (400, 1)


def test_websocket_echo_text_and_binary() -> None:
    core, _ = make()
    session, _ = ws_session(core)
    assert session.receive_ws('4hello', 0.0) == 'hello'
    assert session.receive_ws(b'\x01\x02\x03\x04', 0.0) == b'\x01\x02\x03\x04'
    assert session.send(OutPacket(MESSAGE, 'hello')) is True  # the shell writes it
    assert OutPacket(MESSAGE, b'\x01\x02\x03\x04').message() == b'\x01\x02\x03\x04'


@pytest.mark.parametrize('msg', ['abc', '', '9'])
def test_websocket_invalid_packet_closes_the_session(msg: str) -> None:
    core, shell = make()
    session, _ = ws_session(core)
    assert session.receive_ws(msg, 0.0) is None
    assert session.state == CLOSED and shell.ends == [('W1', Reason.TRANSPORT_ERROR)]
    assert session.receive_ws('4late', 0.0) is None and session.send(OutPacket(MESSAGE, 'x')) is False


# -- heartbeat (official suite) --------------------------------------------------------------------------


def test_polling_ping_pong() -> None:
    core, shell = make()
    session, _ = handshake(core)
    now = 0.0
    for _ in range(3):
        assert get(core, 'S1', now) is None
        assert session.deadline == pytest.approx(now + INTERVAL)
        now = session.deadline
        assert session.handle_deadline(now) is False  # buffered for the waiting GET
        assert shell.woken[-1] == 'S1' and session.finish_poll() == '2'
        assert session.deadline == pytest.approx(now + TIMEOUT)
        now += 0.01
        assert post(core, 'S1', '3', now) == 200
        assert session.deadline == pytest.approx(now + INTERVAL)
    assert shell.ends == []


def test_polling_session_never_polled_again_is_gone_at_interval_plus_timeout() -> None:
    core, shell = make()
    session, _ = handshake(core, now=100.0)
    assert session.deadline == 100.0 + INTERVAL
    session.handle_deadline(session.deadline)
    assert session.deadline == 100.0 + INTERVAL + TIMEOUT
    assert session.handle_deadline(session.deadline - 1e-6) is False and session.state == POLLING  # early timer
    session.handle_deadline(session.deadline)
    assert shell.ends == [('S1', Reason.PING_TIMEOUT)] and session.deadline == float('inf')
    assert refusal(route(core, 'GET', f'{Q}&sid=S1')) == (400, 1)


def test_ping_timeout_releases_a_waiting_get_with_close() -> None:
    core, shell = make()
    session, _ = handshake(core)
    session.handle_deadline(INTERVAL)
    assert get(core, 'S1', INTERVAL) == '2'
    assert get(core, 'S1', INTERVAL) is None
    session.handle_deadline(INTERVAL + TIMEOUT)
    assert shell.ends == [('S1', Reason.PING_TIMEOUT)] and session.finish_poll() == '1'


def test_websocket_ping_pong() -> None:
    core, shell = make()
    session, _ = ws_session(core)
    now = 0.0
    for _ in range(3):
        now = session.deadline
        assert session.handle_deadline(now) is True  # write PING_PACKET
        assert PING_PACKET.message() == '2'
        assert session.receive_ws('3', now + 0.05) is None
        assert session.deadline == pytest.approx(now + 0.05 + INTERVAL)
    assert shell.ends == []


def test_websocket_ping_timeout() -> None:
    core, shell = make()
    session, _ = ws_session(core)
    session.handle_deadline(INTERVAL)
    session.handle_deadline(INTERVAL + TIMEOUT)
    assert session.state == CLOSED and shell.ends == [('W1', Reason.PING_TIMEOUT)]
    assert core.sessions == {}


def test_a_late_timer_after_a_pong_only_rearms() -> None:
    core, _ = make()
    session, _ = ws_session(core)
    session.handle_deadline(INTERVAL)
    armed = session.deadline
    session.receive_ws('3', INTERVAL + 0.1)
    assert session.handle_deadline(armed) is False and session.deadline > armed


def test_a_pong_when_none_is_due_changes_nothing() -> None:
    core, _ = make()
    session, _ = ws_session(core)
    session.receive_ws('3', 0.2)
    assert session.deadline == INTERVAL


def test_held_heartbeat_never_times_out_and_keeps_pinging() -> None:
    core, shell = make()
    session, _ = ws_session(core)
    session.hold_heartbeat(True, 0.0)
    assert session.handle_deadline(INTERVAL) is True
    assert session.handle_deadline(session.deadline) is True  # pinged again, not timed out
    assert session.deadline == pytest.approx(3 * INTERVAL) and shell.ends == []
    session.hold_heartbeat(False, 1.0)
    assert session.deadline == 1.0 + TIMEOUT  # a full timeout from the release (earlier than armed)
    session.handle_deadline(session.deadline)
    assert shell.ends == [('W1', Reason.PING_TIMEOUT)]


# -- close (official suite) ------------------------------------------------------------------------------


def test_polling_close_releases_the_waiting_get_with_noop() -> None:
    core, shell = make()
    session, _ = handshake(core)
    assert get(core, 'S1') is None
    assert post(core, 'S1', '1') == 200
    assert shell.woken == ['S1'] and session.finish_poll() == '6'
    assert shell.ends == [('S1', Reason.CLIENT_DISCONNECT)]
    assert refusal(route(core, 'GET', f'{Q}&sid=S1')) == (400, 1)


def test_polling_messages_before_a_close_in_one_post_are_delivered_first() -> None:
    core, shell = make()
    handshake(core)
    assert post(core, 'S1', '4a\x1e1\x1e4b') == 200
    assert shell.messages == [('S1', 'a')] and shell.ends == [('S1', Reason.CLIENT_DISCONNECT)]


def test_websocket_close_packet() -> None:
    core, shell = make()
    session, _ = ws_session(core)
    assert session.receive_ws('1', 0.0) is None
    assert session.state == CLOSED and shell.ends == [('W1', Reason.CLIENT_DISCONNECT)]
    assert session.close_packet_due is False


def test_websocket_transport_close_and_error() -> None:
    core, shell = make()
    a, _ = ws_session(core, sid='A')
    b, _ = ws_session(core, sid='B')
    assert a.transport_closed() is True and b.transport_closed(error=True) is True
    assert a.transport_closed() is False
    assert shell.ends == [('A', Reason.TRANSPORT_CLOSE), ('B', Reason.TRANSPORT_ERROR)]


def test_server_close_on_websocket_asks_the_shell_to_write_close() -> None:
    core, shell = make()
    session, _ = ws_session(core)
    assert core.close(session) is True and core.close(session) is False
    assert session.close_packet_due is True and CLOSE_PACKET.message() == '1'
    assert shell.ends == [('W1', Reason.SERVER_DISCONNECT)] and core.sessions == {}


def test_server_close_while_a_get_waits_sends_what_is_buffered_then_close() -> None:
    core, shell = make()
    session, _ = handshake(core)
    assert get(core, 'S1') is None
    session.send(OutPacket(MESSAGE, 'bye'))
    core.close(session)
    assert session.finish_poll() == '4bye\x1e1'
    assert shell.ends == [('S1', Reason.SERVER_DISCONNECT)] and core.sessions == {}


def test_server_close_without_a_get_lingers_until_the_next_get() -> None:
    core, shell = make()
    session, _ = handshake(core)
    session.send(OutPacket(MESSAGE, 'bye'))
    core.close(session)
    assert session.state == CLOSING and shell.ends == [('S1', Reason.SERVER_DISCONNECT)]
    assert session.send(OutPacket(MESSAGE, 'late')) is False
    assert refusal(route(core, 'POST', f'{Q}&sid=S1', content_length='2')) == (400, 1)  # closed for the peer
    assert get(core, 'S1') == '4bye\x1e1'
    assert session.state == CLOSED and core.sessions == {}
    assert shell.ends == [('S1', Reason.SERVER_DISCONNECT)]  # reported once


def test_a_closing_session_nobody_drains_is_forgotten_at_its_deadline() -> None:
    core, shell = make()
    session, _ = handshake(core)
    core.close(session)
    session.handle_deadline(session.deadline)
    assert session.state == CLOSED and core.sessions == {} and len(shell.ends) == 1


def test_close_all() -> None:
    core, shell = make()
    handshake(core, sid='A')
    ws_session(core, sid='B')
    core.close_all()
    assert core.sessions == {'A': core.sessions['A']} and core.sessions['A'].state == CLOSING
    assert sorted(shell.ends) == [('A', Reason.SERVER_DISCONNECT), ('B', Reason.SERVER_DISCONNECT)]


# -- upgrade (official suite) ----------------------------------------------------------------------------


def test_upgrade_from_polling_to_websocket() -> None:
    core, _ = make()
    session, _ = handshake(core)
    r = route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')
    assert isinstance(r, WebSocketRequest) and r.session is session
    step = session.receive_probe('2probe', 0.0)
    assert step == (False, [step[1][0]]) and step[1][0].message() == '3probe'  # type: ignore[index]
    assert session.state == PROBING
    assert get(core, 'S1') == '6'  # a noop ends the long-polling request cleanly
    step = session.receive_probe('5', 0.0)
    assert step is not None and step[0] is True and session.state == WEBSOCKET
    assert session.receive_ws('4hello', 0.0) == 'hello'


def test_http_requests_with_the_sid_are_refused_after_the_upgrade() -> None:
    core, _ = make()
    session, _ = handshake(core)
    upgrade(core, session)
    assert refusal(route(core, 'POST', f'{Q}&sid=S1', content_length='6')) == (400, 3)
    r = route(core, 'GET', f'{Q}&sid=S1')
    with pytest.raises(HttpRefused) as refused:
        r.session.poll(0.0)
    assert refused.value.refusal.status == 400 and refused.value.refusal.closed is None
    assert session.receive_ws('4hello', 0.0) == 'hello'  # the websocket carries on


def test_a_second_websocket_for_the_sid_is_refused_at_once() -> None:
    core, _ = make()
    session, _ = handshake(core)
    ws = 'EIO=4&transport=websocket&sid=S1'
    assert isinstance(route(core, 'GET', ws, upgrade='websocket'), WebSocketRequest)
    assert refusal(route(core, 'GET', ws, upgrade='websocket')) == (400, 3)  # while the first probes
    session.receive_probe('2probe', 0.0)
    session.receive_probe('5', 0.0)
    assert refusal(route(core, 'GET', ws, upgrade='websocket')) == (400, 3)  # once upgraded
    assert session.receive_ws('4hello', 0.0) == 'hello'


def test_probe_releases_a_waiting_get_with_noop() -> None:
    core, shell = make()
    session, _ = handshake(core)
    assert get(core, 'S1') is None
    route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')
    session.receive_probe('2probe', 0.0)
    assert shell.woken == ['S1'] and session.finish_poll() == '6'


def test_packets_buffered_during_the_probe_go_to_the_websocket() -> None:
    core, _ = make()
    session, _ = handshake(core)
    session.send(OutPacket(MESSAGE, 'before'))
    route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')
    session.receive_probe('2probe', 0.0)
    assert session.send(OutPacket(MESSAGE, 'during')) is False
    done, packets = session.receive_probe('5', 0.0)  # type: ignore[misc]
    assert done and [p.message() for p in packets] == ['4before', '4during']
    assert session.send(OutPacket(MESSAGE, 'after')) is True


@pytest.mark.parametrize('messages', [['4hello'], ['2probe', '4x'], ['5'], [b'\x00'], ['2probe', '2probe']])
def test_a_failed_probe_leaves_the_session_on_polling(messages: list[str | bytes]) -> None:
    core, shell = make()
    session, _ = handshake(core)
    session.send(OutPacket(MESSAGE, 'kept'))
    route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')
    results = [session.receive_probe(m, 0.0) for m in messages]
    assert results[-1] is None and session.state == POLLING and shell.ends == []
    assert get(core, 'S1') == '4kept'
    # the upgrade may be tried again
    assert isinstance(route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket'), WebSocketRequest)


def test_probe_timeout_and_lost_websocket() -> None:
    core, _ = make(upgrade_timeout=10.0)
    session, _ = handshake(core)
    route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')
    session.receive_probe('2probe', 5.0)
    assert session.probe_deadline == 15.0
    session.abort_probe()
    assert session.state == POLLING and session.probe_deadline == float('inf')
    assert session.transport_closed() is False  # the probe websocket never carried the session


def test_session_closed_during_the_probe() -> None:
    core, shell = make()
    session, _ = handshake(core)
    route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')
    session.receive_probe('2probe', 0.0)
    core.close(session)
    assert session.receive_probe('5', 0.0) is None and shell.ends == [('S1', Reason.SERVER_DISCONNECT)]


# -- POST rules -------------------------------------------------------------------------------------------


def test_oversize_post_is_answered_413_from_the_headers() -> None:
    core, shell = make(max_payload=10)
    session, _ = handshake(core)
    r = route(core, 'POST', f'{Q}&sid=S1', content_length='11')
    assert isinstance(r, Refusal) and r.status == 413 and r.close_connection and r.closed is session
    assert r.response().status_line == '413 Payload Too Large'
    assert shell.ends == [('S1', Reason.TRANSPORT_ERROR)]


def test_chunked_post_over_max_payload_is_refused_after_reading_max_plus_one() -> None:
    core, shell = make(max_payload=10)
    handshake(core)
    r = route(core, 'POST', f'{Q}&sid=S1', transfer_encoding='chunked')
    assert isinstance(r, Post) and r.content_length is None and r.max_body == 10
    with pytest.raises(HttpRefused):
        r.session.receive_post(b'4' * 11, 0.0, post=r)
    assert shell.ends == [('S1', Reason.TRANSPORT_ERROR)]


def test_truncated_post_is_never_decoded() -> None:
    core, shell = make()
    handshake(core)
    r = route(core, 'POST', f'{Q}&sid=S1', content_length='10')
    with pytest.raises(HttpRefused):
        r.session.receive_post(b'4hello', 0.0, post=r)
    assert shell.messages == [] and shell.ends == [('S1', Reason.TRANSPORT_ERROR)]


@pytest.mark.parametrize('length', ['+5', '5_0', ' 5', 'five'])
def test_doubtful_content_length_is_refused(length: str) -> None:
    core, _ = make()
    handshake(core)
    r = route(core, 'POST', f'{Q}&sid=S1', content_length=length)
    assert refusal(r) == (400, 3) and r.close_connection


def test_overlapping_posts_close_the_session() -> None:
    core, shell = make()
    session, _ = handshake(core)
    first = route(core, 'POST', f'{Q}&sid=S1', content_length='2')
    assert isinstance(first, Post)
    second = route(core, 'POST', f'{Q}&sid=S1', content_length='2')
    assert refusal(second) == (400, 3) and second.closed is session
    assert shell.ends == [('S1', Reason.TRANSPORT_ERROR)]


def test_a_post_whose_body_never_came_leaves_the_session_open() -> None:
    core, shell = make()
    session, _ = handshake(core)
    lost = route(core, 'POST', f'{Q}&sid=S1', content_length='100')
    assert isinstance(lost, Post)
    session.post_aborted()  # its connection stalled or was cut before the body
    assert session.state == 'polling' and shell.ends == []
    assert post(core, 'S1', '4again') == 200  # not an overlapping POST
    assert shell.messages == [('S1', 'again')]


def test_binary_post_body() -> None:
    core, shell = make()
    handshake(core)
    r = route(core, 'POST', f'{Q}&sid=S1', content_length='3', content_type='application/octet-stream')
    assert isinstance(r, Post) and r.binary
    r.session.receive_post(b'\x00\x01\x02', 0.0, post=r)
    assert shell.messages == [('S1', b'\x00\x01\x02')]


def test_non_utf8_post_is_a_transport_error() -> None:
    core, _ = make()
    handshake(core)
    assert post(core, 'S1', b'4\xff') == 400


def test_stray_control_packets_are_ignored() -> None:
    core, shell = make()
    _session, _ = handshake(core)
    assert post(core, 'S1', '6\x1e5\x1e2\x1e0') == 200 and shell.ends == []
    ws, _ = ws_session(core)
    for msg in ('6', '5', '2', '0'):
        assert ws.receive_ws(msg, 0.0) is None
    assert ws.state == WEBSOCKET


# -- buffering limits ---------------------------------------------------------------------------------


def test_a_client_that_stops_polling_is_closed_at_the_buffer_limit() -> None:
    core, shell = make(max_buffered_packets=3)
    session, _ = handshake(core)
    for i in range(3):
        session.send(OutPacket(MESSAGE, str(i)))
    assert session.send(OutPacket(MESSAGE, 'x')) is False
    assert shell.ends == [('S1', Reason.TRANSPORT_ERROR)]


def test_buffered_packets_are_batched_into_one_poll_and_wake_once() -> None:
    core, shell = make()
    session, _ = handshake(core)
    assert get(core, 'S1') is None
    for i in range(3):
        session.send(OutPacket(MESSAGE, str(i)))
    assert shell.woken == ['S1'] and session.finish_poll() == '40\x1e41\x1e42'
    assert get(core, 'S1') is None


def test_a_cancelled_poll_closes_the_session() -> None:
    core, shell = make()
    session, _ = handshake(core)
    assert get(core, 'S1') is None
    session.poll_aborted()
    assert shell.ends == [('S1', Reason.TRANSPORT_ERROR)]
    assert refusal(route(core, 'GET', f'{Q}&sid=S1')) == (400, 1)


def test_compression() -> None:
    body = b'4' + b'x' * 2000
    packed, encoding = compress(body, 'br, gzip;q=1.0, deflate')
    assert encoding == 'gzip' and gzip.decompress(packed) == body
    packed, encoding = compress(body, 'deflate', methods=('gzip', 'deflate'))
    assert encoding == 'deflate' and zlib.decompress(packed) == body
    assert compress(b'4x', 'gzip') == (b'4x', None)
    assert compress(body, None) == (body, None) and compress(body, 'br') == (body, None)


def test_a_broadcast_packet_is_encoded_once_for_every_recipient() -> None:
    core, _ = make()
    sessions = [handshake(core, sid=f'S{i}')[0] for i in range(3)]
    packet = OutPacket(MESSAGE, 'x')
    for s in sessions:
        s.send(packet)
    bodies = [s.poll(0.0) for s in sessions]
    assert bodies == ['4x'] * 3 and all(b is bodies[0] for b in bodies)


# -- CORS, origins, JSONP, cookie -------------------------------------------------------------------------


def test_same_origin_default() -> None:
    core, _ = make(cors_allowed_origins=None)
    assert isinstance(route(core, 'GET', Q, origin='http://a.test', host='a.test'), Handshake)
    assert refusal(route(core, 'GET', Q, origin='http://evil.test', host='a.test')) == (403, 4)
    assert refusal(route(core, 'GET', Q, origin='http://a.test')) == (403, 4)  # no Host to compare
    assert isinstance(core.route('GET', Q, {'origin': 'https://a.test', 'host': 'a.test'}, scheme='https'),
                      Handshake)
    proxied = {'origin': 'https://pub.test', 'host': 'a.test', 'x-forwarded-proto': 'https',
               'x-forwarded-host': 'pub.test, inner'}
    assert isinstance(core.route('GET', Q, proxied), Handshake)
    assert isinstance(route(core, 'GET', Q), Handshake)  # no Origin: not a browser's cross-site request


def test_origin_lists_star_and_disabled() -> None:
    core, _ = make(cors_allowed_origins=['http://a.test', 'http://b.test'])
    assert isinstance(route(core, 'GET', Q, origin='http://b.test'), Handshake)
    assert refusal(route(core, 'GET', Q, origin='http://c.test')) == (403, 4)
    core, _ = make(cors_allowed_origins='http://a.test')
    assert refusal(route(core, 'GET', Q, origin='http://c.test')) == (403, 4)
    for anything in ('*', ['*', 'http://a.test']):
        core, _ = make(cors_allowed_origins=anything)
        r = route(core, 'GET', Q, origin='http://c.test')
        assert ('Access-Control-Allow-Origin', 'http://c.test') in r.headers
    core, _ = make(cors_allowed_origins=[])
    r = route(core, 'GET', Q, origin='http://c.test')
    assert isinstance(r, Handshake) and r.headers == []


def test_callable_origins_take_the_shells_verdict() -> None:
    core, _ = make(cors_allowed_origins=lambda origin: origin == 'http://a.test')
    with pytest.raises(LocalProtocolError):
        route(core, 'GET', Q, origin='http://a.test')
    assert isinstance(core.route('GET', Q, {'origin': 'http://a.test'}, origin_verdict=True), Handshake)
    assert refusal(core.route('GET', Q, {'origin': 'http://x.test'}, origin_verdict=False)) == (403, 4)


def test_an_origin_with_control_characters_is_a_bad_request() -> None:
    core, _ = make()
    assert refusal(route(core, 'GET', Q, origin='http://a.test\r\nX: y')) == (400, 3)


def test_cors_headers_and_credentials() -> None:
    core, _ = make(cors_allowed_origins='*', cors_credentials=True)
    r = route(core, 'GET', Q, origin='http://a.test')
    assert r.headers == [('Access-Control-Allow-Origin', 'http://a.test'),
                         ('Access-Control-Allow-Credentials', 'true')]
    core, _ = make(cors_credentials=False)
    assert route(core, 'GET', Q, origin='http://a.test').headers == [('Access-Control-Allow-Origin', 'http://a.test')]


def test_preflight() -> None:
    core, _ = make()
    r = route(core, 'OPTIONS', Q, origin='http://a.test', access_control_request_headers='X-Token')
    assert isinstance(r, Preflight)
    answer = r.response()
    assert answer.status == 204 and answer.body == b''
    assert ('Access-Control-Allow-Methods', 'OPTIONS, GET, POST') in answer.headers
    assert ('Access-Control-Allow-Headers', 'X-Token') in answer.headers
    core, _ = make(cors_allowed_origins=['http://a.test'])
    assert refusal(route(core, 'OPTIONS', Q, origin='http://evil.test')) == (403, 4)


def test_jsonp_poll_and_post() -> None:
    core, shell = make()
    r = route(core, 'GET', f'{Q}&j=3')
    assert isinstance(r, Handshake) and r.jsonp_index == 3
    session, _ = core.open('S1', 'polling', 0.0)
    body = session.poll(0.0)
    assert body is not None
    answer = r.response_for(session, body)
    assert answer.body.startswith(b'___eio[3]("0{') and answer.body.endswith(b'");')
    p = route(core, 'POST', f'{Q}&sid=S1&j=3', content_length='12')
    assert isinstance(p, Post)
    p.session.receive_post(b'd=4hello%1E2', 0.0, post=p)
    assert shell.messages == [('S1', 'hello')]
    for bad in ('j=x', 'j=-1', 'j=1234567890'):
        assert refusal(route(core, 'GET', f'{Q}&{bad}')) == (400, 3)


def test_cookie_option() -> None:
    core, _ = make(cookie='io')
    r = route(core, 'GET', Q)
    session, _ = core.open('S1', 'polling', 0.0)
    answer = r.response_for(session, session.poll(0.0))
    assert ('Set-Cookie', 'io=S1; path=/; SameSite=Lax') in answer.headers
    core, _ = make(cookie={'name': 'sid', 'path': '/x', 'HttpOnly': True, 'Max-Age': lambda: '60'})
    r = route(core, 'GET', Q)
    session, _ = core.open('S1', 'polling', 0.0)
    with pytest.raises(LocalProtocolError):  # a callable attribute is user code: the shell calls it
        r.response_for(session, '0{}')
    resolved = {k: v() if callable(v) else v for k, v in r.cookie.items()}
    assert ('Set-Cookie', 'sid=S1; path=/x; HttpOnly; Max-Age=60') in r.response_for(session, '0{}', resolved).headers
    core, _ = make()
    r = route(core, 'GET', Q)
    session, _ = core.open('S1', 'polling', 0.0)
    assert not any(h == 'Set-Cookie' for h, _ in r.response_for(session, '0{}').headers)


def test_poll_response_and_post_ok() -> None:
    core, _ = make()
    handshake(core)
    r = route(core, 'GET', f'{Q}&sid=S1')
    answer = r.response('4x')
    assert answer.status_line == '200 OK' and answer.body == b'4x'
    assert ('Content-Type', 'text/plain; charset=UTF-8') in answer.headers
    p = route(core, 'POST', f'{Q}&sid=S1', content_length='2')
    assert p.ok().body == b'ok'


# -- more state-table rows ------------------------------------------------------------------------------


def test_posts_still_arrive_while_the_upgrade_probes() -> None:
    core, shell = make()
    session, _ = handshake(core)
    route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')
    session.receive_probe('2probe', 0.0)
    assert post(core, 'S1', '4late') == 200 and shell.messages == [('S1', 'late')]


def test_a_ping_due_during_the_probe_reaches_the_websocket_after_it() -> None:
    core, _ = make()
    session, _ = handshake(core)
    route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket')
    session.receive_probe('2probe', 0.0)
    assert session.handle_deadline(INTERVAL) is False  # buffered, not written
    done, packets = session.receive_probe('5', INTERVAL)  # type: ignore[misc]
    assert done and [p.message() for p in packets] == ['2']
    assert session.receive_ws('3', INTERVAL + 0.01) is None and session.deadline == pytest.approx(2 * INTERVAL + 0.01)


def test_a_pong_can_move_the_deadline_earlier_when_the_interval_is_short() -> None:
    core, _ = make(ping_interval=1.0, ping_timeout=5.0)
    session, _ = ws_session(core)
    session.handle_deadline(1.0)
    armed = session.deadline
    session.receive_ws('3', 1.1)
    assert armed == 6.0 and session.deadline == pytest.approx(2.1)  # the shell re-arms after a None


def test_refusal_bodies() -> None:
    core, _ = make(max_payload=1)
    handshake(core)
    too_large = route(core, 'POST', f'{Q}&sid=S1', content_length='2').response()
    assert too_large.body == b'Payload Too Large' and too_large.close_connection
    unknown = route(core, 'GET', f'{Q}&sid=nope').response()
    assert unknown.status_line == '400 Bad Request'
    assert json.loads(unknown.body) == {'code': 1, 'message': 'Session ID unknown'}
    assert ('Content-Type', 'application/json') in unknown.headers
    forbidden = make(cors_allowed_origins=['http://a.test'])[0].route('GET', Q, {'origin': 'http://b.test'})
    assert forbidden.response().status_line == '403 Forbidden'


def test_a_poll_after_the_close_drained_is_unknown() -> None:
    core, _ = make()
    session, _ = handshake(core)
    core.close(session)
    get(core, 'S1')
    with pytest.raises(HttpRefused) as refused:
        session.poll(0.0)
    assert refused.value.refusal.code == 1


# -- invariants under random traffic ----------------------------------------------------------------------


@pytest.mark.parametrize('seed', range(20))
def test_random_traffic_keeps_the_invariants(seed: int) -> None:
    """Whatever the order of events: one ``closed`` per session, a woken GET always has a body,
    the registry holds exactly the sessions not CLOSED, and every packet sent is delivered once
    (to a poll or the websocket) or the session has ended."""
    import random

    rng = random.Random(seed)
    core, shell = make(max_buffered_packets=50)
    session, _ = handshake(core)
    now = 0.0
    waiting = False
    sent: list[str] = []
    delivered: list[str] = []
    ws_attached = False

    def take(body: str) -> None:
        delivered.extend(p[1:] for p in body.split('\x1e') if p.startswith('4'))

    for _ in range(300):
        now += rng.random() * 0.1
        op = rng.choice(['send', 'get', 'finish', 'post_pong', 'post_msg', 'deadline', 'ws', 'probe', 'upgrade',
                         'ws_msg', 'abort', 'close'])
        if op == 'send':
            text = f'm{len(sent)}'
            if session.send(OutPacket(MESSAGE, text)):
                delivered.append(text)  # the shell writes it on the websocket
            sent.append(text)
        elif op == 'get' and not waiting:
            r = core.route('GET', f'{Q}&sid=S1', {})
            if isinstance(r, Poll):
                try:
                    body = r.session.poll(now)
                except HttpRefused:
                    body = ''
                if body is None:
                    waiting = True
                elif body:
                    take(body)
        elif op == 'finish' and waiting and shell.woken:
            body = session.finish_poll()
            assert body
            take(body)
            shell.woken.clear()
            waiting = False
        elif op in ('post_pong', 'post_msg'):
            post(core, 'S1', '3' if op == 'post_pong' else '4up', now)
        elif op == 'deadline':
            if session.handle_deadline(max(now, session.deadline)):
                pass  # a PING written on the websocket
        elif op == 'ws' and not ws_attached:
            ws_attached = isinstance(route(core, 'GET', 'EIO=4&transport=websocket&sid=S1', upgrade='websocket'),
                                     WebSocketRequest)
        elif op in ('probe', 'upgrade') and ws_attached and session.state in (POLLING, PROBING):
            step = session.receive_probe('2probe' if op == 'probe' else '5', now)
            if step is None:
                ws_attached = False
            elif step[0]:
                for p in step[1]:
                    if p.packet_type == MESSAGE:
                        delivered.append(p.data)  # type: ignore[arg-type]
        elif op == 'ws_msg' and session.state == WEBSOCKET:
            session.receive_ws(rng.choice(['3', '4x', '6']), now)
        elif op == 'abort' and ws_attached and session.state in (POLLING, PROBING):
            session.abort_probe()
            ws_attached = False
        elif op == 'close' and rng.random() < 0.1:
            core.close(session)
        assert len(shell.ends) <= 1
        assert (session.state == CLOSED) == ('S1' not in core.sessions)
        if session.state == CLOSED:
            break
    assert len(delivered) == len(set(delivered))
    if session.state not in (CLOSED, CLOSING):
        # what was sent and not delivered is still buffered
        assert set(sent) - set(delivered) <= {p.data for p in session._buffer}
