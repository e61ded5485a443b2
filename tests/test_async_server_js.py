"""The server interop scenarios of tests/test_e2e_js.py, against ``AsyncServer`` on uvicorn.

The JS socket.io-client 4.8 (``tests/jsclient.py``) talks to a greensio
``AsyncServer`` served by uvicorn in its own process (``tests/async_app.py``;
this process is gevent-patched).  The scenarios that use tests/test_e2e_js.py's
``App`` run here *unchanged*: they are imported and get this module's ``app``,
a ``RemoteApp`` whose handlers are the asyncio twins of ``App``'s.  The
scenarios that build their own server are restated below, each against the
asyncio twin of that server (``async_app.KINDS``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from async_support import AsyncServerProcess, RemoteApp, skip_reason
from e2e_helpers import needs_node, wait_until
from jsclient import JSClient, jsclients

# the scenarios themselves, run unchanged against RemoteApp (fixtures resolve here)
from test_e2e_js import (  # noqa: F401
    TRANSPORTS,
    test_200_rapid_emits_in_order,
    test_acks_both_ways,
    test_binary_both_ways,
    test_call_inside_handler_does_not_block_others,
    test_call_inside_handler_times_out,
    test_custom_namespace,
    test_large_payloads,
    test_polling_only,
    test_polling_to_websocket_upgrade,
    test_reconnect_after_transport_drop,
    test_refused_connect_return_false,
    test_refused_connect_with_data,
    test_rooms_and_skip_sid,
    test_server_disconnect,
    test_unknown_namespace,
    test_websocket_only,
)

pytestmark = [
    needs_node,
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ''),
    pytest.mark.timeout(30),
]


@pytest.fixture
def app(async_server: AsyncServerProcess) -> RemoteApp:
    return RemoteApp(async_server, 'e2e')


@pytest.fixture
def js(app: RemoteApp) -> Iterator[JSClient]:
    with jsclients() as make:
        yield make()


def test_the_server_is_an_asyncserver_on_uvicorn(app: RemoteApp) -> None:
    remote = app._remote
    assert remote('type(sio).__module__ + "." + type(sio).__name__') == 'greensio.aio.async_server.AsyncServer'
    assert remote('sio.async_mode') == 'asgi'
    assert remote('type(sio.manager).__name__') == 'AsyncManager'


def test_auth_payload_reaches_connect_handler(app: RemoteApp, js: Any) -> None:
    # tests/test_e2e_js.py's version, less the identity check (the environ stays in the server process)
    msg = js.connect(app.url, transports=['websocket'], auth={'token': 'abc', 'n': [1, 2]}, wait=True)
    sid = app.sid_of(msg)
    assert app.connected[('/', sid)] == {'token': 'abc', 'n': [1, 2]}
    environ = app.sio.get_environ(sid)
    assert environ['REQUEST_METHOD'] == 'GET' and environ['PATH_INFO'].startswith('/socket.io')
    assert app._remote('sio.get_environ(sid) is app.environs[sid]', sid=sid) is True

    other = js.connect(app.url, sock='noauth', transports=['polling'], wait=True)
    assert app.connected[('/', app.sid_of(other))] is None


# -- the scenarios of tests/test_e2e_js.py that build their own server -----------------------------


def _kind(async_server: AsyncServerProcess, kind: str) -> AsyncServerProcess:
    async_server.reset(kind)
    return async_server


def test_call_inside_handler_with_ordered_handlers(async_server: AsyncServerProcess) -> None:
    remote = _kind(async_server, 'ordered')
    with jsclients() as make:
        js = make()
        for name, transport in (('a', 'websocket'), ('b', 'polling')):
            assert js.connect(remote.url, sock=name, forceNew=True, transports=[transport],
                              wait=True)['type'] == 'connect'
        js.ack_mode('delay', sock='a', delay_ms=300)
        ask_id = js.emit('ask', 'A', sock='a', ack=True)
        js.wait_event('question', sock='a')
        a2_id = js.emit('echo', 'A2', sock='a', ack=True)
        b_ack = js.wait_ack(js.emit('echo', 'B', sock='b', ack=True))
        answer = js.wait_ack(ask_id)
        a2 = js.wait_ack(a2_id)
        assert answer['args'] == ['A'] and a2['args'] == ['A2'] and b_ack['args'] == ['B']
        assert b_ack['t'] < answer['t'] <= a2['t']
        assert remote('app.log') == ['echo B', 'ask done', 'echo A2']


def test_traffic_during_upgrade_is_neither_lost_nor_reordered(async_server: AsyncServerProcess) -> None:
    remote = _kind(async_server, 'upgrade_traffic')
    with jsclients() as make:
        js = make()
        js.connect(remote.url)
        batches = 0
        while js.find('upgrade') is None and batches < 100:  # client -> server traffic, too
            js.emit_many('count', 20)
            batches += 1
        js.emit_many('count', 20)
        batches += 1
        assert js.wait_for('upgrade')['transport'] == 'websocket'

        def all_arrived() -> bool:
            upgraded_at, sent = remote('(app.upgraded_at, len(app.sent))')
            return bool(upgraded_at) and len(js.events(event='n')) == sent >= upgraded_at[0] + 100

        wait_until(all_arrived, timeout=10, what='every server event at the client')
        sent = remote('len(app.sent)')
        assert remote('app.upgraded_at[0]') > 1  # some were emitted before the switch
        assert [e['args'] for e in js.events(event='n')] == [[i] for i in range(sent)]
        wait_until(lambda: remote('len(app.received)') == 20 * batches, timeout=10,
                   what='every client event at the server')
        assert remote('app.received') == list(range(20)) * batches
        assert js.find_all('disconnect') == [] and len(js.find_all('connect')) == 1


def test_always_connect_refusal_leaves_other_namespaces_alone(async_server: AsyncServerProcess) -> None:
    remote = _kind(async_server, 'always_connect')
    with jsclients() as make:
        js = make()
        assert js.connect(remote.url, transports=['websocket'], wait=True)['type'] == 'connect'
        js.connect(remote.url + '/chat', sock='chat', transports=['websocket'])
        assert js.wait_for('connect', sock='chat')['id'] == remote('app.refused[0]')
        assert js.wait_for('disconnect', sock='chat')['reason'] == 'io server disconnect'
        assert js.call('echo', 'still connected') == ['still connected']
        assert js.find('disconnect', sock='default') is None


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_heartbeat_keeps_idle_clients_and_drops_dead_ones(async_server: AsyncServerProcess,
                                                          transport: str) -> None:
    remote = _kind(async_server, 'heartbeat')
    with jsclients() as make:
        js = make()
        sid = js.connect(remote.url, transports=TRANSPORTS[transport], reconnection=False, wait=True)['id']
        # idle for several ping periods (sub-second pingInterval, advertised as such)
        time.sleep(1.6)
        assert js.find('disconnect') is None
        assert js.state()['connected'] is True
        assert js.call('echo', 'alive') == ['alive']
        assert remote('app.reasons') == {}

        js.proc.kill()
        js.proc.wait(5)
        wait_until(lambda: sid in remote('app.reasons'), timeout=5, what='server-side disconnect of the dead client')
        expected = 'transport close' if transport == 'websocket' else 'ping timeout'
        assert remote('app.reasons')[sid] == expected
        wait_until(lambda: not remote('sio.eio.sockets'), what='engine socket removed')
