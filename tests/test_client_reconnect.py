"""Reconnection: the server process dies and comes back on the same port.

The servers run as subprocesses (Node socket.io 4.8 and a greensio server,
see client_support.py) so that killing one is a real transport failure.
Delays are 0.1 s so each test takes well under a second of waiting.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from client_support import Recorder, ServerProcess, node_skip_reason
from e2e_helpers import wait_until

import greensio
from greensio import exceptions

pytestmark = pytest.mark.timeout(60)

FAST = {'reconnection_delay': 0.1, 'reconnection_delay_max': 0.2}


@pytest.fixture(params=['node', 'greensio'])
def server_process(request):
    if request.param == 'node' and node_skip_reason():
        pytest.skip(node_skip_reason())
    proc = ServerProcess(request.param).start()
    yield proc
    proc.kill()



def lifecycle(client: greensio.Client, namespaces=('/',)) -> Recorder:
    got = Recorder()
    for ns in namespaces:
        for event in ('connect', 'disconnect', 'connect_error', '__disconnect_final'):
            client.on(event, lambda *args, _e=event, _ns=ns: got.add({'type': _e, 'ns': _ns, 'args': list(args)}),
                      namespace=ns)
    return got


@pytest.mark.parametrize('transports', [['websocket'], ['polling']], ids=['websocket', 'polling'])
def test_reconnects_after_the_server_restarts(server_process, transports):
    counter = itertools.count(1)
    client = greensio.Client(**FAST)
    got = lifecycle(client, ['/', '/chat'])
    client.connect(server_process.url, namespaces=['/', '/chat'], transports=transports,
                   auth=lambda: {'attempt': next(counter)})
    first = {ns: client.get_sid(ns) for ns in ('/', '/chat')}
    for ns in ('/', '/chat'):
        got.wait_for('connect', ns=ns)
    assert client.call('echo', 'before') == 'before'

    port = server_process.port
    server_process.kill()
    for ns in ('/', '/chat'):
        assert got.wait_for('disconnect', ns=ns)['args'] == [greensio.Client.reason.TRANSPORT_ERROR]
    assert not client.connected
    wait_until(lambda: client._reconnect_task is not None)
    with pytest.raises(exceptions.BadNamespaceError):
        client.emit('echo', 'while down')

    server_process.start()
    assert server_process.port == port
    for ns in ('/', '/chat'):
        got.wait_for('connect', ns=ns, timeout=10)
    seen = server_process.recorder.wait_for('connection', nsp='/chat')
    assert seen['auth']['attempt'] > 1  # auth was called again for the new connection
    wait_until(lambda: client.connected)
    assert client.get_sid('/chat') == seen['sid'] != first['/chat']
    assert client.call('echo', 'after', namespace='/chat') == 'after'
    client.emit('seq', 1)
    assert client.call('stats')['seq'] == [1]
    assert got.find('__disconnect_final') is None

    client.disconnect()
    got.wait_for('__disconnect_final', ns='/')
    assert client._reconnect_task is None


def test_only_namespaces_still_connected_come_back(server_process):
    client = greensio.Client(**FAST)
    got = lifecycle(client, ['/', '/chat'])
    client.connect(server_process.url, namespaces=['/', '/chat'], transports=['websocket'])
    got.wait_for('connect', ns='/')
    client.emit('kick', False, namespace='/chat')  # the server ends /chat for good
    got.wait_for('__disconnect_final', ns='/chat')
    server_process.kill()
    got.wait_for('disconnect', ns='/')
    server_process.start()
    got.wait_for('connect', ns='/', timeout=10)
    wait_until(lambda: client.connected)
    assert list(client.namespaces) == ['/']
    server_process.recorder.wait_for('connection', nsp='/')
    assert server_process.recorder.find('connection', nsp='/chat') is None
    client.disconnect()


def test_gives_up_after_reconnection_attempts(server_process):
    client = greensio.Client(reconnection_attempts=2, **FAST)
    got = lifecycle(client)
    client.connect(server_process.url, transports=['websocket'])
    server_process.kill()
    got.wait_for('disconnect', args=[greensio.Client.reason.TRANSPORT_ERROR])
    got.wait_for('__disconnect_final', timeout=10)
    # each failed attempt reported the transport error to connect_error
    assert got.wait_for('connect_error') and got.wait_for('connect_error')
    client.wait()  # returns: the client gave up
    assert client._reconnect_task is None and not client.connected


def test_shutdown_stops_a_reconnection(server_process):
    client = greensio.Client(reconnection_delay=30, reconnection_delay_max=30)
    got = lifecycle(client)
    client.connect(server_process.url, transports=['polling'])
    server_process.kill()
    got.wait_for('disconnect')
    wait_until(lambda: client._reconnect_task is not None)
    task = client._reconnect_task
    assert task.is_alive()
    started = time.monotonic()
    client.shutdown()
    assert time.monotonic() - started < 2  # the 30 s wait was cut short
    got.wait_for('__disconnect_final')
    assert not task.is_alive() and client._reconnect_task is None
    client.wait()


def test_connect_retry_waits_for_a_server_that_starts_later(server_process):
    port = server_process.port
    server_process.kill()
    client = greensio.Client(**FAST)
    done = Recorder()

    def connect():
        try:
            client.connect(f'http://127.0.0.1:{port}', transports=['websocket'], retry=True)
            done.add({'type': 'connected'})
        except Exception as exc:  # noqa: BLE001 - reported to the test
            done.add({'type': 'failed', 'error': repr(exc)})

    thread = threading.Thread(target=connect)
    thread.start()
    server_process.start()
    assert done.wait_for('connected', timeout=10)
    thread.join(5)
    assert client.call('echo', 'late') == 'late'
    client.disconnect()


def test_connect_retry_gives_up(server_process):
    port = server_process.port
    server_process.kill()
    client = greensio.Client(reconnection_attempts=2, **FAST)
    got = lifecycle(client)
    with pytest.raises(exceptions.ConnectionError):
        client.connect(f'http://127.0.0.1:{port}', transports=['websocket'], retry=True)
    assert len([m for m in got.messages if m['type'] == 'connect_error']) == 3  # first try + 2 retries
    got.wait_for('__disconnect_final')
    client.wait()
