"""The chat demo under gunicorn: the documented command, one worker and two on RabbitMQ.

gunicorn runs examples/chat/gunicorn.conf.py on a listening socket bound here
(port 0) and handed over as ``--bind fd://N``; clients are the official JS
client.  The two-worker test connects websocket clients until both workers
hold some (the ``welcome`` event names the worker's pid), then checks that a
chat message from one client and a broadcast from an external process
(``examples/chat/broadcaster.py``) reach every client exactly once.
"""

import os
import socket
import subprocess
import sys
import urllib.request
import uuid

import gevent
import pytest

import greensio

try:
    from demo_process import ROOT, child_env, gunicorn_chat
    from jsclient import jsclients, skip_reason
except ImportError:  # pragma: no cover
    from tests.demo_process import ROOT, child_env, gunicorn_chat
    from tests.jsclient import jsclients, skip_reason

AMQP_URL = os.environ.get('GREENSIO_TEST_AMQP', 'amqp://guest:guest@127.0.0.1:5672//')
#: Clients tried before concluding the kernel never hands one to the second worker.
MAX_CLIENTS = 24

pytestmark = [
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ''),
    pytest.mark.timeout(90),
]


def rabbitmq_reachable():
    try:
        socket.create_connection(('127.0.0.1', 5672), timeout=1).close()
        return True
    except OSError:
        return False


def fetch(url):
    """GET without keep-alive: an idle connection would hold up gunicorn's graceful stop for its whole timeout."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def chat_client(js, url, sock, name, transport='websocket'):
    """Connect ``sock`` to /chat, set its username; return the worker pid from ``welcome``."""
    js.connect(f'{url}/chat', sock=sock, transports=[transport], forceNew=True, wait=True)
    welcome = js.wait_event('welcome', sock=sock)
    assert js.call('set_username', {'username': name}, sock=sock) == [{'success': True, 'username': name}]
    return welcome['args'][0]['worker']


def received_texts(js, sock):
    return [e['args'][0]['message'] for e in js.events(sock=sock, event='message')]


def wait_for_text(js, sock, text):
    js.wait_for(lambda m: m.get('type') == 'event' and m.get('sock') == sock and m.get('event') == 'message'
                and m['args'][0]['message'] == text, timeout=15, consume=False)


@pytest.mark.parametrize('worker_class', ['greensio.gunicorn.GeventWebSocketWorker',
                                          'geventwebsocket.gunicorn.workers.GeventWebSocketWorker'])
def test_chat_on_one_gunicorn_worker(worker_class):
    with gunicorn_chat(workers=1, worker_class=worker_class) as (url, proc):
        status, page = fetch(url + '/')
        assert status == 200 and b'socket.io.min.js' in page
        status, client_js = fetch(url + '/socket.io.min.js')
        assert status == 200 and len(client_js) > 10_000
        with jsclients() as make:
            js = make()
            chat_client(js, url, 'ws', 'ws-user', 'websocket')
            chat_client(js, url, 'poll', 'poll-user', 'polling')
            assert js.call('chat_message', {'message': 'over polling'}, sock='poll') == [{'success': True}]
            assert js.call('chat_message', {'message': 'over websocket'}, sock='ws') == [{'success': True}]
            for sock in ('ws', 'poll'):
                wait_for_text(js, sock, 'over polling')
                wait_for_text(js, sock, 'over websocket')
            for sock in ('ws', 'poll'):
                # a clean close also ends the pending long-poll, so gunicorn stops at once
                js.disconnect(sock=sock)
                js.wait_for('disconnect', sock=sock)
    assert 'Traceback' not in proc.log, proc.log


def test_access_log_lines_for_long_polling_answered_without_wsgi():
    # greensio's handler answers long-polling requests of a session from the
    # parsed request; gunicorn's access log still gets a line for each
    import rawclient

    with gunicorn_chat(workers=1, GUNICORN_CMD_ARGS='--access-logfile -') as (url, proc):
        session = rawclient.PollingSession(url)
        assert session.send('40/chat,').status == 200
        assert session.poll().status == 200
        status, _ = fetch(url + '/')  # a request that ends the connection, so the log is flushed behind it
        assert status == 200
    polls = [line for line in proc.log.splitlines() if f'sid={session.sid}' in line]
    assert len(polls) == 2 and all('" 200 ' in line for line in polls), proc.log
    assert 'POST /socket.io/' in polls[0] and 'GET /socket.io/' in polls[1]
    assert 'Traceback' not in proc.log, proc.log


@pytest.mark.skipif(not hasattr(greensio, 'KombuManager'), reason='greensio.KombuManager is not available')
@pytest.mark.skipif(not rabbitmq_reachable(), reason='RabbitMQ is not running on 127.0.0.1:5672')
def test_two_workers_on_rabbitmq_deliver_every_broadcast_to_every_client():
    channel = f'greensio-test-{uuid.uuid4().hex[:8]}'
    env = {'GREENSIO_MESSAGE_QUEUE': AMQP_URL, 'CHAT_CHANNEL': channel}
    with gunicorn_chat(workers=2, **env) as (url, proc), jsclients() as make:
        js = make()
        workers = {}
        for i in range(MAX_CLIENTS):
            sock = f'c{i}'
            workers[sock] = chat_client(js, url, sock, f'user{i}')
            if len(set(workers.values())) == 2 and i >= 3:
                break
            gevent.sleep(0.1)  # a busy machine lets one worker win every accept in a burst
        assert len(set(workers.values())) == 2, f'every client landed on one worker: {workers}'
        first = next(iter(workers))
        assert js.call('chat_message', {'message': 'from a client'}, sock=first) == [{'success': True}]
        broadcaster = subprocess.run(
            [sys.executable, '-m', 'examples.chat.broadcaster', '--message', 'from outside'], cwd=ROOT,
            env=child_env(**env), capture_output=True, text=True, timeout=30, check=False)
        assert broadcaster.returncode == 0, broadcaster.stdout + broadcaster.stderr
        for sock in workers:
            wait_for_text(js, sock, 'from a client')
            wait_for_text(js, sock, 'from outside')
        for sock in workers:  # exactly once each, in order
            assert received_texts(js, sock) == ['from a client', 'from outside'], sock
    assert 'Traceback' not in proc.log, proc.log
