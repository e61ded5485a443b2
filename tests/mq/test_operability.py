"""Operability on real brokers: ``python -m greensio emit`` to the clients of two
worker processes (the other commands: test_cli_cluster.py), bad command lines,
and readiness and queue metrics through a RabbitMQ outage.

The outage uses test_faults.py's ``rabbitmq_stopped`` (RabbitMQ is always
started again, in a ``finally``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import gevent
import pytest
from prometheus_client.parser import text_string_to_metric_families

import greensio
from greensio.health import Health
from greensio.metrics import Metrics

from .conftest import needs_rabbitmq, needs_redis
from .helpers import (
    AMQP_URL,
    REDIS_URL,
    Recorder,
    delete_exchange,
    unique_channel,
    wait_until,
)
from .test_faults import fleet_of, rabbitmq_stopped


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'greensio', *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def get(url: str) -> tuple[int, dict | str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read().decode(), exc.code
    return status, (json.loads(body) if body.startswith('{') else body)


@pytest.mark.timeout(120)
@pytest.mark.parametrize('backend', [pytest.param('kombu', marks=needs_rabbitmq),
                                     pytest.param('redis', marks=needs_redis)])
def test_cli_emit_reaches_the_clients_of_two_workers(backend):
    url = AMQP_URL if backend == 'kombu' else REDIS_URL
    with fleet_of(backend, emitter=False) as fleet:
        in_room = [Recorder(u, f'{w}-in') for w, u in zip('ab', fleet.urls)]
        outside = [Recorder(u, f'{w}-out') for w, u in zip('ab', fleet.urls)]
        for client in in_room:
            assert client.client.call('join', 'ops', timeout=10) == 'joined'
        try:
            # Redis pub/sub drops what is published before a worker's listener
            # subscribed: emit until every client got one, then count exactly
            for _ in range(10):
                assert cli('emit', 'warm', 'null', '--message-queue', url, '--channel', fleet.channel).returncode == 0
                if all(client.of('warm') for client in (*in_room, *outside)):
                    break
                gevent.sleep(0.5)
            for client in (*in_room, *outside):
                client.wait_for('warm')
            run = cli('emit', 'news', '{"n": 1, "text": "é"}', '--to', 'ops', '--message-queue', url,
                      '--channel', fleet.channel)
            assert (run.returncode, run.stdout, run.stderr) == (0, '', '')
            for client in in_room:
                assert client.wait_for('news') == [({'n': 1, 'text': 'é'},)]
            run = cli('emit', 'all', '[1, 2]', '--message-queue', url, '--channel', fleet.channel)
            assert run.returncode == 0, run.stderr
            for client in (*in_room, *outside):
                assert client.wait_for('all') == [([1, 2],)]  # a JSON array is one argument
            # 'all' went out after 'news' from the same publisher: nothing more can come
            for client in outside:
                assert client.of('news') == []
        finally:
            for client in (*in_room, *outside):
                client.disconnect()


@pytest.mark.timeout(60)
@pytest.mark.parametrize('url', ['amqp://guest:secret@127.0.0.1:9//', 'redis://127.0.0.1:9/0'])
def test_cli_with_the_broker_unreachable_fails_in_one_line(url):
    run = cli('emit', 'news', '1', '--message-queue', url, '--channel', unique_channel(), '--timeout', '1.5')
    assert run.returncode == 1
    assert run.stdout == ''
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith('python -m greensio: error: the message queue at ')
    assert 'could not be reached' in lines[0] and 'secret' not in lines[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize('args', [
    ('emit', 'news', '{"n": 1', '--message-queue', AMQP_URL),        # malformed JSON
    ('emit', 'news', "{'n': 1}", '--message-queue', AMQP_URL),       # Python, not JSON
    ('emit', 'news', '1', '--message-queue', AMQP_URL, '--namespace', 'chat'),
    ('emit', 'news'),                                                 # DATA missing
    ('emit', 'news', '1', '--timeout', 'soon', '--message-queue', AMQP_URL),
    ('publish', 'news', '1'),
    ('call', 'question', '{"n": 1', '--to', 'x', '--message-queue', AMQP_URL),    # malformed JSON
    ('call', 'question', '1', '--message-queue', AMQP_URL),                       # --to missing
    ('call', 'question', '1', '--to', 'x', '--namespace', 'chat', '--message-queue', AMQP_URL),
    ('sockets', '--timeout', '0', '--message-queue', AMQP_URL),
    ('rooms', '--to', 'x', '--message-queue', AMQP_URL),                          # rooms takes no --to
    ('sockets', '--streams', '--message-queue', AMQP_URL),                        # streams: Redis only
])
def test_cli_bad_input_exits_2_with_one_line(args):
    run = cli(*args)
    assert run.returncode == 2
    assert run.stdout == ''
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith('python -m greensio: error: ')


def families(url: str) -> dict[str, float]:
    status, text = get(url)
    assert status == 200
    return {(s.name + (f'[{s.labels["state"]}]' if 'state' in s.labels else '')): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


@needs_rabbitmq
@pytest.mark.timeout(240)
def test_readiness_and_queue_metrics_through_a_rabbitmq_outage(serve):
    channel = unique_channel()
    manager = greensio.KombuManager(AMQP_URL, channel=channel, outbox_size=40)
    sio = greensio.Server(client_manager=manager)
    metrics = Metrics(sio, worker='a')
    health = Health(sio)  # ready below 20 messages waiting
    url = serve(greensio.WSGIApp(sio, health.wsgi_app(metrics.wsgi_app())))
    client = Recorder(url, 'a0')  # initialises the manager (listener, publisher)
    try:
        sio.emit('before', 0)
        client.wait_for('before')
        wait_until(lambda: manager.outbox_length == 0, 20, 'first emit confirmed')
        assert get(url + '/readyz') == (200, {'status': 'ok', 'message_queue': 'healthy', 'outbox': 0})
        published = families(url + '/metrics')['greensio_queue_published_total']
        assert published >= 1
        with rabbitmq_stopped():
            for i in range(25):
                sio.emit('during', i)
            wait_until(lambda: get(url + '/readyz')[0] == 503, 60, 'not ready')
            status, body = get(url + '/readyz')
            assert status == 503
            assert body['status'] == 'unavailable' and body['message_queue'] == 'degraded'
            assert body['outbox'] == 25
            assert get(url + '/healthz')[0] == 200  # alive all the same: no restart wanted
            m = families(url + '/metrics')
            assert m['greensio_message_queue_state[degraded]'] == 1
            assert m['greensio_message_queue_state[healthy]'] == 0
            assert m['greensio_outbox_messages'] == 25
            assert m['greensio_outbox_capacity'] == 40
            client.wait_for('during', 25)  # local clients do not wait for the broker
        wait_until(lambda: get(url + '/readyz')[0] == 200, 90, 'ready again')
        wait_until(lambda: manager.outbox_length == 0, 60, 'outbox drained')
        status, body = get(url + '/readyz')
        assert (status, body) == (200, {'status': 'ok', 'message_queue': 'healthy', 'outbox': 0})
        m = families(url + '/metrics')
        assert m['greensio_message_queue_state[healthy]'] == 1
        assert m['greensio_outbox_messages'] == 0
        assert m['greensio_queue_published_total'] == published + 25
        assert len(client.of('during')) == 25  # and no copy of its own messages came back
    finally:
        client.disconnect()
        metrics.close()
        manager.close(timeout=5)
        delete_exchange(channel)
