"""``python -m greensio call / sockets / rooms / workers`` against real worker processes.

Two greensio workers (tests/mq/mq_server.py) on RabbitMQ or Redis, a client
on each; the command line, in a subprocess of its own, asks them through the
broker and prints what they answered.  First, the manager's side of it on an
in-memory bus: a client of the cluster that no worker counts as one of them.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

import greensio
from greensio._core.pubsub import FETCH_SOCKETS
from greensio.testing import InMemoryBus, InMemoryPubSubManager

from .conftest import needs_rabbitmq, needs_redis
from .helpers import (
    AMQP_URL,
    REDIS_URL,
    Process,
    Recorder,
    delete_stream,
    unique_channel,
    wait_until,
)
from .test_faults import fleet_of
from .test_operability import cli

BACKENDS = [pytest.param('kombu', marks=needs_rabbitmq), pytest.param('redis', marks=needs_redis),
            pytest.param('redis-streams', marks=needs_redis)]


def answer(event: str, args: tuple) -> object:
    """What the clients answer a ``question``: who they are and what they were asked."""
    return {'asked': args[0], 'event': event} if event == 'question' else None


@pytest.mark.timeout(30)
def test_a_client_of_the_cluster_is_answered_and_never_counted():
    bus = InMemoryBus()
    workers = []
    for _ in range(2):
        manager = InMemoryPubSubManager(bus, channel='cli')
        manager.heartbeat_interval = 60  # what the client learns comes from its hello, not a periodic heartbeat
        sio = greensio.Server(client_manager=manager)
        manager.initialize()  # what the first client's connection does
        workers.append(sio)
    for sio in workers:
        wait_until(lambda sio=sio: len(sio.manager.workers()) == 2, 5, 'the workers know each other')
    client = InMemoryPubSubManager(bus, channel='cli')
    try:
        assert client._listen_as_client(5)
        wait_until(lambda: sorted(client.workers()[1:]) == sorted(w.manager.host_id for w in workers), 5,
                   'both workers announced to the client')
        gathering = client._start_request(FETCH_SOCKETS, '/', 5, to=None, skip=None)
        done = threading.Event()
        gathering.on_change = done.set
        for wait in client._waits(gathering):
            done.clear()
            done.wait(wait)
        assert (gathering.answers, gathering.missing, gathering.replied) == ([], 0, gathering.expected)
        for sio in workers:
            assert client.host_id not in sio.manager.workers()
    finally:
        client.close(timeout=1)
        for sio in workers:
            sio.shutdown()


@pytest.mark.timeout(180)
@pytest.mark.parametrize('backend', BACKENDS)
def test_call_sockets_rooms_workers_across_two_workers(backend):
    url = AMQP_URL if backend == 'kombu' else REDIS_URL
    with fleet_of(backend, emitter=False) as fleet:
        a, b = (Recorder(u, w, answer=answer) for w, u in zip('ab', fleet.urls))
        try:
            assert a.client.call('join', 'ops', timeout=10) == 'joined'
            assert b.client.call('join', 'ops', timeout=10) == 'joined'
            assert b.client.call('join', 'night shift', timeout=10) == 'joined'
            common = ('--message-queue', url, '--channel', fleet.channel,
                      *(['--streams'] if backend == 'redis-streams' else []))

            for client in (a, b):  # a client of each worker answers, wherever the command connects
                started = time.monotonic()
                run = cli('call', 'question', '{"n": 1, "text": "é"}', f'--to={client.sid}',  # a sid may start with '-'
                          *common)
                assert (run.returncode, run.stderr) == (0, ''), run.stderr
                assert json.loads(run.stdout) == {'asked': {'n': 1, 'text': 'é'}, 'event': 'question'}
                assert time.monotonic() - started < 8  # answered, not timed out (python start-up included)

            run = cli('call', 'question', '2', '--to', 'ops', *common)  # a room: every client's answer
            assert run.returncode == 0, run.stderr
            assert sorted(json.loads(run.stdout), key=json.dumps) == [{'asked': 2, 'event': 'question'}] * 2

            run = cli('sockets', *common)
            assert run.returncode == 0, run.stderr
            lines = sorted(line.split('\t') for line in run.stdout.splitlines())
            assert lines == sorted([[a.sid, '127.0.0.1', 'ops'], [b.sid, '127.0.0.1', 'night shift,ops']]) or \
                lines == sorted([[a.sid, '127.0.0.1', 'ops'], [b.sid, '127.0.0.1', 'ops,night shift']])
            run = cli('sockets', '--to', 'night shift', '--json', *common)
            assert run.returncode == 0, run.stderr
            (only,) = json.loads(run.stdout)
            assert only['sid'] == b.sid and set(only['rooms']) == {b.sid, 'ops', 'night shift'}
            assert only['namespace'] == '/' and only['handshake']['address'] == '127.0.0.1'

            run = cli('rooms', *common)
            assert (run.returncode, run.stdout) == (0, 'night shift\t1\nops\t2\n'), run.stderr
            run = cli('rooms', '--json', *common)
            assert json.loads(run.stdout) == {'night shift': 1, 'ops': 2}

            run = cli('workers', '--json', *common)
            assert run.returncode == 0, run.stderr
            assert sorted(json.loads(run.stdout)) == sorted(fleet.host_ids)

            run = cli('emit', 'news', '[1]', '--to', 'ops', *common)  # the same options reach them
            assert run.returncode == 0, run.stderr
            assert a.wait_for('news') == b.wait_for('news') == [([1],)]

            run = cli('sockets', '--namespace', '/nobody', *common)
            assert (run.returncode, run.stdout, run.stderr) == (0, '', '')

            # no such client: a clear line once the timeout is over
            run = cli('call', 'question', '3', '--to', 'no-such-sid', '--timeout', '2', *common)
            assert run.returncode == 3 and run.stdout == ''
            assert run.stderr.splitlines() == [(
                'python -m greensio: error: no answer within 2 s: no client no-such-sid in namespace / '
                'on the 2 worker(s) that answered')]
        finally:
            a.disconnect()
            b.disconnect()


@pytest.mark.timeout(60)
@pytest.mark.parametrize('backend', BACKENDS)
def test_no_worker_on_the_channel(backend):
    url = AMQP_URL if backend == 'kombu' else REDIS_URL
    streams = ['--streams'] if backend == 'redis-streams' else []
    channel = unique_channel()
    run = cli('sockets', '--message-queue', url, '--channel', channel, '--timeout', '1', *streams)
    if streams:
        delete_stream(channel)  # the command's hello created it
    assert run.returncode == 3 and run.stdout == ''
    assert run.stderr.startswith('python -m greensio: error: no greensio worker announced itself on channel ')
    assert len(run.stderr.splitlines()) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize('command', [('call', 'question', '1', '--to', 'x'), ('sockets',), ('rooms',),
                                     ('workers',)])
@pytest.mark.parametrize('url', ['amqp://guest:secret@127.0.0.1:9//', 'redis://127.0.0.1:9/0'])
def test_broker_unreachable_fails_in_one_line(command, url):
    run = cli(*command, '--message-queue', url, '--channel', unique_channel(), '--timeout', '1.5')
    assert run.returncode == 1, run.stderr
    assert run.stdout == ''
    (line,) = run.stderr.splitlines()
    assert line.startswith('python -m greensio: error: the message queue at ')
    assert 'could not be reached' in line and 'secret' not in line



@needs_redis
@pytest.mark.timeout(120)
def test_call_reaches_a_client_of_a_python_socketio_worker():
    """A mixed fleet: the greensio worker announces itself; the python-socketio one, which sends no
    heartbeat, still delivers the call to its client and returns its ack."""
    channel = unique_channel()
    common = ('--backend', 'redis', '--url', REDIS_URL, '--channel', channel)
    workers = [Process('mq_server.py', *common), Process('mq_server.py', *common, '--impl', 'socketio')]
    try:
        greensio_client, old = (Recorder(f'http://127.0.0.1:{w.value("PORT", 30)}', name, answer=answer)
                                for w, name in zip(workers, ('new', 'old')))
        args = ('--message-queue', REDIS_URL, '--channel', channel)

        def answered() -> bool:  # python-socketio subscribes when its first client connects
            run = cli('call', 'question', '"p"', f'--to={old.sid}', '--timeout', '3', *args)
            return run.returncode == 0 and json.loads(run.stdout) == {'asked': 'p', 'event': 'question'}

        wait_until(answered, 30, 'the python-socketio client answered the command line')
        run = cli('sockets', '--json', *args)
        assert [s['sid'] for s in json.loads(run.stdout)] == [greensio_client.sid]  # greensio's clients only
        greensio_client.disconnect()
        old.disconnect()
    finally:
        for worker in workers:
            worker.stop()
