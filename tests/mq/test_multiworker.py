"""Several workers, with and without sticky sessions, on RabbitMQ, driven by the official JS client.

Each scenario (``multiworker.scenario``): clients connect, each sends echo
events with acks, then one client and an external process (a write-only
``KombuManager``) broadcast to everyone.  Every ack must be answered, every
broadcast delivered to every client once and in order.  The tests run a
smaller scenario than the driver's default (100 clients x 1,000 events, the
benchmark's size) so that each takes seconds: ``CLIENTS`` x ``EVENTS``.

Sticky setups, where every request of a session reaches the worker that owns
it: one gunicorn worker; nginx with ``ip_hash`` in front of gunicorns of one
worker each.  Without sticky sessions (several gunicorn workers on one
socket; nginx round-robin in front of gunicorns of two workers each; the chat
demo in a browser; a worker killed mid-stream) a request may reach a worker
that does not own its session, which hands it to the owner.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from demo_process import (
    BROWSER_DIR,
    BROWSER_SOCKETIO_JS,
    CHROMIUM,
    browser_skip_reason,
    gunicorn_chat,
)
from jsclient import skip_reason

from .conftest import needs_rabbitmq
from .helpers import AMQP_URL
from .multiworker import (
    booted_pids,
    channel,
    gunicorn_app,
    gunicorns,
    lost_anything,
    nginx,
    nginx_executable,
    scenario,
    workers_of,
)

needs_nginx = pytest.mark.skipif(nginx_executable() is None, reason='nginx is not installed (apt-get install -y nginx)')

#: The scenario's size in these tests (the driver's default is 100 x 1,000).
CLIENTS = 100
EVENTS = 20
BROADCASTS = 10
#: Echoes in flight per client.
WINDOW = 4

pytestmark = [
    needs_rabbitmq,
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ''),
    pytest.mark.timeout(90),
]

#: ``polling``: long-polling only; ``default``: polling, then the upgrade to websocket.
TRANSPORTS = ['polling', 'default']


def run(url: str, name: str, transports: str, **options) -> dict:
    options = {'clients': CLIENTS, 'events': EVENTS, 'broadcasts': BROADCASTS, 'window': WINDOW, **options}
    return scenario(url, name, external=BROADCASTS, transports=transports, **options)


def assert_nothing_lost(result: dict, transports: str) -> None:
    assert result['errors'] == {}, result['errors']
    missed = {i: m for i, c in enumerate(result['clients']) if (m := lost_anything(c, EVENTS, BROADCASTS, BROADCASTS))}
    assert missed == {}, missed
    expected = 'polling' if transports == 'polling' else 'websocket'
    assert {c['transport'] for c in result['clients']} == {expected}


def assert_clean_log(*procs) -> None:
    for proc in procs:
        assert 'Traceback' not in proc.log, proc.log


@pytest.mark.parametrize('transports', TRANSPORTS)
def test_one_worker(transports):
    with channel() as name:
        with gunicorn_app(1, name) as (url, proc):
            result = run(url, name, transports)
        assert_nothing_lost(result, transports)
        assert workers_of(result) == set(booted_pids(proc))
        assert_clean_log(proc)


@needs_nginx
@pytest.mark.parametrize('transports', TRANSPORTS)
def test_nginx_ip_hash_in_front_of_two_single_worker_gunicorns(transports):
    with channel() as name:
        with gunicorns(2, 1, name) as instances, nginx([url for url, _ in instances], sticky=True) as url:
            result = run(url, name, transports, spread=True)
        assert_nothing_lost(result, transports)
        # both instances had clients, so broadcasts crossed the message queue
        assert workers_of(result) == {pid for _, proc in instances for pid in booted_pids(proc)}
        assert_clean_log(*(proc for _, proc in instances))


@pytest.mark.parametrize('transports', TRANSPORTS)
def test_four_gunicorn_workers_on_one_socket(transports):
    with channel() as name:
        with gunicorn_app(4, name) as (url, proc):
            result = run(url, name, transports)
        assert_nothing_lost(result, transports)
        assert len(workers_of(result)) > 1, 'the kernel gave every connection to one worker'
        assert_clean_log(proc)


@needs_nginx
@pytest.mark.parametrize('machines', [False, True], ids=['one machine', 'two machines'])
@pytest.mark.parametrize('transports', TRANSPORTS)
def test_nginx_round_robin_in_front_of_two_gunicorns_of_two_workers(transports, machines):
    # two machines: the instances share only the queue, which carries the requests between them
    with channel() as name:
        with gunicorns(2, 2, name, machines) as instances, nginx([url for url, _ in instances], sticky=False) as url:
            result = run(url, name, transports)
        assert_nothing_lost(result, transports)
        assert len(workers_of(result)) > 1, 'sessions are owned by one worker only'
        assert_clean_log(*(proc for _, proc in instances))


@pytest.mark.parametrize('transports', ['websocket', 'polling'])
def test_a_worker_killed_mid_stream(transports):
    killed = []

    def kill_busiest(connected):
        pid = int(max(connected['workers'], key=connected['workers'].get))
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    with channel() as name, gunicorn_app(4, name) as (url, proc):
        result = run(url, name, transports, reconnect=True, ack_timeout=5000, deadline=10, wait=10,
                     on_halfway=kill_busiest)
        booted = booted_pids(proc)
    victims = [c for c in result['clients'] if c['pids'][:1] == killed]
    others = [c for c in result['clients'] if c['pids'][:1] != killed]
    assert victims and others, result['connected']
    missed = {i: m for i, c in enumerate(others) if (m := lost_anything(c, EVENTS, BROADCASTS, BROADCASTS))}
    assert missed == {}, (result['errors'], missed)
    for client in victims:
        # reconnected to a live worker (perhaps the one gunicorn started in place of the dead one)
        assert client['disconnects'] and client['pids'][-1] in booted and client['pids'][-1] != killed[0], repr(client)
        # the echoes in flight on the dead connection fail; on websocket the client notices at once, on
        # long-polling at its next request or the ping timeout, and the echoes it emitted until then fail
        # too; the rest are answered
        allowed = WINDOW if transports == 'websocket' else 2 * WINDOW
        assert client['acked'] + client['ack_failed'] == EVENTS and client['ack_failed'] <= allowed, client
        assert lost_anything(client, client['acked'], BROADCASTS, BROADCASTS).keys() <= {'ack_failed', 'disconnects'}
    assert 'Traceback' not in proc.log, proc.log


CHAT_SKIP = browser_skip_reason(BROWSER_SOCKETIO_JS, 'socket.io-client')


@pytest.mark.skipif(CHAT_SKIP is not None, reason=CHAT_SKIP or '')
def test_chat_demo_in_two_browser_tabs_on_long_polling_on_four_workers(tmp_path):
    screenshot = str(tmp_path / 'chat.png')
    with channel() as name:
        env = {'GREENSIO_MESSAGE_QUEUE': AMQP_URL, 'CHAT_CHANNEL': name, 'CHAT_TRANSPORTS': 'polling',
               'GREENSIO_SOCKETIO_JS': BROWSER_SOCKETIO_JS, 'CHAT_ACCESS_LOG': '-',
               'GUNICORN_CMD_ARGS': '--access-logformat "access %(p)s %(s)s %(r)s"'}
        with gunicorn_chat(workers=4, **env) as (url, proc):
            tabs = subprocess.run(['node', os.path.join(BROWSER_DIR, 'chat_two_tabs.js'), url, screenshot],
                                  check=False, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=75,
                                  env={**os.environ, 'CHROMIUM': CHROMIUM})
    report = tabs.stdout + tabs.stderr
    assert tabs.returncode == 0, report
    # the page reconnects after a refused request: the log shows whether any was refused
    refused = [line for line in proc.log.splitlines()
               if line.startswith('access ') and '/socket.io/' in line and int(line.split()[2]) >= 400]
    assert refused == [], '\n'.join(refused)
    assert report.count('"transport":"polling"') == 2, report
    assert '"step":"lobby message crossed tabs"' in report and '"step":"room message crossed tabs"' in report, report
    assert 'Traceback' not in proc.log, proc.log
