"""SimpleClient end to end, and the client's resources: no thread or greenlet
left behind, and a script using the client exits promptly, on green threads
(gevent-patched) and on OS threads."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

import client_support
import pytest
from client_support import CLIENT_LEFT, ServerProcess, node_skip_reason
from e2e_helpers import wait_until
from gevent.threadpool import _WorkerGreenlet
from greenlet import greenlet

import greensio
from greensio import exceptions

pytestmark = pytest.mark.timeout(60)

node_process = client_support.node_process
server = client_support.server



# -- SimpleClient ------------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_simple_client_end_to_end(server, transport):
    with greensio.SimpleClient() as sio:
        assert sio.sid is None and sio.transport == ''
        sio.connect(server.url, transports=[transport])
        sid = sio.sid
        assert sio.connected and sid and sio.transport == transport
        assert server.seen.wait_for('connection', nsp='/')['sid'] == sid
        sio.emit('push', ('hello', 1, b'\x00\xff'))
        assert sio.receive(timeout=5) == ['hello', 1, b'\x00\xff']
        assert sio.call('echo', {'a': [1, 2]}) == {'a': [1, 2]}
        with pytest.raises(exceptions.TimeoutError):
            sio.receive(timeout=0.05)
        sio.emit('flood', 50)
        assert [sio.receive(timeout=5) for _ in range(50)] == [['flood', i] for i in range(50)]
        # the server asks with an ack: SimpleClient acks with nothing, and the event is in the inbox
        assert sio.call('ask', ('question', 2)) == []
        assert sio.receive(timeout=5) == ['question', 2]
        with pytest.raises(RuntimeError, match='Already connected'):
            sio.connect(server.url)
    assert not sio.connected and sio.sid is None and sio.transport == ''
    server.seen.wait_for('disconnect', sid=sid, reason=CLIENT_LEFT[server.kind])
    with pytest.raises(exceptions.DisconnectedError):
        sio.emit('echo')
    with pytest.raises(exceptions.DisconnectedError):
        sio.receive(timeout=1)


def test_simple_client_namespace_and_auth(server):
    with greensio.SimpleClient(reconnection=False) as sio:
        sio.connect(server.url, namespace='/private', auth={'token': 'secret'}, transports=['websocket'])
        assert sio.call('whoami')['nsp'] == '/private'
        assert server.seen.wait_for('connection', nsp='/private')['auth'] == {'token': 'secret'}


def test_simple_client_refused(server):
    sio = greensio.SimpleClient()
    with pytest.raises(exceptions.ConnectionError):
        sio.connect(server.url, namespace='/private', auth={'token': 'nope'}, transports=['websocket'])
    assert not sio.connected and sio.client is None
    with pytest.raises(exceptions.DisconnectedError):
        sio.call('echo', 1)
    with pytest.raises(exceptions.DisconnectedError):
        sio.receive()  # no timeout: must not block


def test_simple_client_call_timeout(server):
    with greensio.SimpleClient() as sio:
        sio.connect(server.url, transports=['websocket'])
        with pytest.raises(exceptions.TimeoutError):
            sio.call('no_such_handler', timeout=0.1)


def test_simple_client_disconnected_by_the_server(server):
    with greensio.SimpleClient() as sio:
        sio.connect(server.url, transports=['polling'])
        sio.emit('push', ('last', 'words'))
        sio.emit('kick', False)
        # what arrived before the disconnect can still be read, then the end shows
        assert sio.receive(timeout=5) == ['last', 'words']
        with pytest.raises(exceptions.DisconnectedError):
            sio.receive()
        assert not sio.connected
        with pytest.raises(exceptions.DisconnectedError):
            sio.emit('echo')


def test_simple_client_waits_through_a_reconnection():
    kind = 'greensio' if node_skip_reason() else 'node'
    with ServerProcess(kind) as proc:
        sio = greensio.SimpleClient(reconnection_delay=0.1, reconnection_delay_max=0.2)
        sio.connect(proc.url, transports=['websocket'])
        first = sio.sid
        proc.kill()
        wait_until(lambda: not sio._live)
        results = []
        caller = threading.Thread(target=lambda: results.append(sio.call('echo', 'queued')))
        caller.start()  # blocks until the client is back
        proc.start()
        caller.join(10)
        assert results == ['queued'] and sio.sid != first
        sio.disconnect()


# -- resources ------------------------------------------------------------------------


def ours(obj: object) -> bool:
    """A live greenlet, not counting gevent's resolver thread pool (it grows under load, process-wide)."""
    return isinstance(obj, greenlet) and not obj.dead and not isinstance(obj, _WorkerGreenlet)


def live_greenlets() -> int:
    return sum(1 for obj in gc.get_objects() if ours(obj))


def greenlets_back_to(baseline: int, before: set, timeout: float = 5.0) -> None:
    """Wait for the greenlet count to come back; on failure, show where the new ones are."""
    deadline = time.monotonic() + timeout
    while live_greenlets() > baseline:
        if time.monotonic() >= deadline:
            stacks = [repr(g) + '\n' + (''.join(traceback.format_stack(g.gr_frame)) if g.gr_frame else '(not started)')
                      for g in gc.get_objects() if ours(g) and id(g) not in before]
            raise AssertionError('greenlets left behind:\n' + '\n'.join(stacks))
        time.sleep(0.005)


def greenlet_ids() -> set:
    return {id(g) for g in gc.get_objects() if ours(g)}


@pytest.fixture(scope='module', params=['node', 'greensio'])
def server_process(request):
    """A server in another process, so that this process holds only the client's greenlets."""
    if request.param == 'node' and node_skip_reason():
        pytest.skip(node_skip_reason())
    with ServerProcess(request.param) as proc:
        yield proc


@pytest.mark.parametrize('transports', [['websocket'], ['polling'], None], ids=['websocket', 'polling', 'upgrade'])
def test_disconnect_leaves_no_greenlet_behind(server_process, transports):
    baseline, before = live_greenlets(), greenlet_ids()
    client = greensio.Client()
    client.on('question', lambda n: n + 1)
    client.connect(server_process.url, namespaces=['/', '/chat'], transports=transports)
    assert client.call('ask', ('question', 1)) == [2]  # starts a handler worker too
    client.emit('flood', 20)
    assert client.call('echo', 'x', namespace='/chat') == 'x'
    assert live_greenlets() > baseline
    client.disconnect()
    greenlets_back_to(baseline, before)


def test_shutdown_of_a_reconnecting_client_leaves_no_greenlet_behind():
    kind = 'greensio' if node_skip_reason() else 'node'
    with ServerProcess(kind) as proc:
        baseline, before = live_greenlets(), greenlet_ids()
        client = greensio.Client(reconnection_delay=0.05, reconnection_delay_max=0.1)
        client.connect(proc.url, transports=['websocket'])
        proc.kill()
        wait_until(lambda: client._reconnect_task is not None)
        client.shutdown()
        greenlets_back_to(baseline, before)


SCRIPT = r'''
import os, sys, threading, time
if os.environ.get('PATCH'):
    from gevent import monkey
    monkey.patch_all()
import greensio

before = threading.active_count()
sio = greensio.Client()
sio.on('question', lambda n: n * 10)
sio.connect(sys.argv[1], transports=[sys.argv[2]] if sys.argv[2] != 'upgrade' else None)
sio.emit('seq', 1)
assert sio.call('ask', ('question', 4)) == [40]
during = threading.active_count()
sio.disconnect()
deadline = time.monotonic() + 5
while threading.active_count() > before and time.monotonic() < deadline:
    time.sleep(0.01)
print(before, during, threading.active_count(), flush=True)
'''


@pytest.mark.parametrize('patched', [False, True], ids=['threads', 'gevent'])
@pytest.mark.parametrize('transport', ['websocket', 'polling', 'upgrade'])
def test_a_script_using_the_client_exits_promptly(server_process, patched, transport):
    env = dict(os.environ, PATCH='1' if patched else '')
    started = time.monotonic()
    out = subprocess.run([sys.executable, '-c', SCRIPT, server_process.url, transport], check=False, env=env,
                         capture_output=True, text=True, timeout=20)
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    before, during, after = map(int, out.stdout.split())
    if not patched:  # OS threads: the reader, the writer and a handler worker ran, and all ended
        assert during > before
    assert after == before
    assert elapsed < 5, f'the script took {elapsed:.1f}s'


SIGINT_SCRIPT = r'''
import sys
import greensio
sio = greensio.Client(reconnection_delay=30, reconnection_delay_max=30)
sio.on('disconnect', lambda reason: print('lost', flush=True))
sio.on('__disconnect_final', lambda: print('final', flush=True))
sio.connect(sys.argv[1], transports=['websocket'])
print('connected', flush=True)
try:
    sio.wait()
except KeyboardInterrupt:
    task = sio._reconnect_task
    if task is not None:
        task.join(2)
    print('interrupted', 'reconnecting' if task is not None and task.is_alive() else 'stopped', flush=True)
'''


def test_ctrl_c_stops_a_reconnection_wait():
    """handle_sigint: Ctrl-C during a 30 s reconnection wait stops the reconnection task too."""
    kind = 'greensio' if node_skip_reason() else 'node'
    with ServerProcess(kind) as server_proc:
        proc = subprocess.Popen([sys.executable, '-c', SIGINT_SCRIPT, server_proc.url], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == 'connected'
            server_proc.kill()
            assert proc.stdout.readline().strip() == 'lost'  # now in the 30 s wait
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert time.monotonic() - started < 3
    assert out.split() == ['final', 'interrupted', 'stopped'], err
