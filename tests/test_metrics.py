"""Metrics and health endpoints of a real server, scraped over HTTP during known traffic.

python-socketio clients over 127.0.0.1 (websocket and polling) drive a
greensio ``Server`` in this process; the figures Prometheus would read are
parsed with prometheus_client's own parser and compared exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import gevent
import pytest
import socketio as pysocketio
from e2e_helpers import wait_until
from prometheus_client.parser import text_string_to_metric_families

import greensio
from greensio.health import Health
from greensio.metrics import HANDLER_BUCKETS, Metrics
from greensio.testing import InMemoryBus, InMemoryPubSubManager

pytestmark = pytest.mark.timeout(60)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample as ``{(name, sorted labels without worker): value}``; checks the worker label."""
    status, text = get(url)
    assert status == 200, text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop('worker') == 'w1', sample
            samples[sample.name, tuple(sorted(labels.items()))] = sample.value
    return samples


def client(url: str, transports: list[str], namespaces: list[str] | None = None, auth=None) -> pysocketio.Client:
    c = pysocketio.Client(reconnection=False)
    c.on('slow', lambda *args: gevent.sleep(1.0) or 'late')
    c.connect(url, transports=transports, namespaces=namespaces or ['/'], auth=auth, wait_timeout=10)
    return c


def make_server() -> greensio.Server:
    sio = greensio.Server(async_mode='gevent')

    @sio.on('echo')
    def echo(sid, data):
        return data

    @sio.on('echo', namespace='/chat')
    def chat_echo(sid, data):
        return data

    @sio.on('connect', namespace='/chat')
    def chat_connect(sid, environ, auth):
        return not (auth or {}).get('refuse')

    @sio.on('ask_slow')
    def ask_slow(sid):
        try:
            sio.call('slow', to=sid, timeout=0.2)
        except greensio.exceptions.TimeoutError:
            return 'timed out'
        return 'answered'

    return sio


def test_metrics_count_known_traffic_exactly(serve):
    sio = make_server()
    metrics = Metrics(sio, worker='w1')
    health = Health(sio)
    url = serve(greensio.WSGIApp(sio, metrics.wsgi_app(health.wsgi_app())))
    ws = [client(url, ['websocket']) for _ in range(2)]
    polling = client(url, ['polling'], ['/', '/chat'])
    with pytest.raises(pysocketio.exceptions.ConnectionError):
        client(url, ['websocket'], ['/chat'], auth={'refuse': True})
    try:
        for c in ws:
            for i in range(3):
                assert c.call('echo', {'n': i}, timeout=10) == {'n': i}
        assert polling.call('echo', 'x', namespace='/chat', timeout=10) == 'x'
        assert ws[0].call('ask_slow', timeout=10) == 'timed out'
        got = []
        for c in (*ws, polling):
            c.on('tick', lambda data, got=got: got.append(data))
        sio.emit('tick', 1)
        wait_until(lambda: len(got) == 3, 10, 'three ticks')

        m = scrape(url + '/metrics')
        assert m['greensio_clients', (('namespace', '/'), ('transport', 'websocket'))] == 2
        assert m['greensio_clients', (('namespace', '/'), ('transport', 'polling'))] == 1
        assert m['greensio_clients', (('namespace', '/chat'), ('transport', 'polling'))] == 1
        assert m['greensio_connects_total', (('namespace', '/'), ('result', 'accepted'))] == 3
        assert m['greensio_connects_total', (('namespace', '/chat'), ('result', 'accepted'))] == 1
        assert m['greensio_connects_total', (('namespace', '/chat'), ('result', 'refused'))] == 1
        assert m['greensio_events_received_total', (('namespace', '/'),)] == 7  # 6 echo + ask_slow
        assert m['greensio_events_received_total', (('namespace', '/chat'),)] == 1
        assert m['greensio_events_sent_total', (('namespace', '/'),)] == 4  # slow + 3 ticks
        assert m['greensio_handler_duration_seconds_count', (('namespace', '/'),)] == 7
        assert m['greensio_handler_duration_seconds_bucket', (('le', '+Inf'), ('namespace', '/'))] == 7
        # ask_slow waited 0.2 s for its call(): the only handler above 0.1 s
        over = [b for b in HANDLER_BUCKETS if b < 0.2][-1]
        assert m['greensio_handler_duration_seconds_bucket', (('le', str(over)), ('namespace', '/'))] == 6
        assert 0.2 <= m['greensio_handler_duration_seconds_sum', (('namespace', '/'),)] < 2
        assert m['greensio_call_timeouts_total', ()] == 1
        assert m['greensio_ack_timeouts_total', ()] == 0  # call() to one client: a call timeout only
        assert m['greensio_received_bytes_total', ()] > 0
        assert m['greensio_sent_bytes_total', ()] > 0
        assert m['greensio_slow_clients', ()] == 0
        assert m['greensio_write_backlog_bytes', ()] == 0
        assert not [name for name, _ in m if name.startswith(('greensio_queue', 'greensio_outbox'))]

        # bytes: one more echo of a known size moves each counter by at least the payload
        before = m['greensio_received_bytes_total', ()], m['greensio_sent_bytes_total', ()]
        ws[0].call('echo', 'é' * 1000, timeout=10)
        m = scrape(url + '/metrics')
        assert m['greensio_received_bytes_total', ()] - before[0] >= 2000
        assert m['greensio_sent_bytes_total', ()] - before[1] >= 2000

        assert get(url + '/healthz') == (200, json.dumps({'status': 'ok', 'message_queue': 'none', 'outbox': 0}))
        assert get(url + '/readyz')[0] == 200
    finally:
        for c in (*ws, polling):
            c.disconnect()
    def disconnects(namespace: str) -> float:
        return sum(value for (name, labels), value in scrape(url + '/metrics').items()
                   if name == 'greensio_disconnects_total' and ('namespace', namespace) in labels)

    # python-socketio's websocket client may close its transport before the
    # server reads its DISCONNECT: the reason is then 'transport close'
    wait_until(lambda: disconnects('/') == 3, 10, f'three disconnects: {metrics.disconnects}')
    m = scrape(url + '/metrics')
    assert m['greensio_disconnects_total', (('namespace', '/chat'), ('reason', 'client disconnect'))] == 1
    assert not [key for key, value in m.items() if key[0] == 'greensio_clients' and value]
    metrics.close()


def test_endpoints_are_not_on_the_socketio_port_unless_mounted(serve):
    sio = make_server()
    metrics = Metrics(sio, worker='w1')
    health = Health(sio)
    url = serve(sio)  # the Socket.IO app alone
    for path in ('/metrics', '/healthz', '/readyz'):
        status, body = get(url + path)
        assert status == 404, (path, body)
        assert 'greensio_' not in body
    # served on a port of its own instead, with health on the same port
    http = metrics.serve(0, app=health.wsgi_app())
    try:
        other = f'http://127.0.0.1:{http.server_port}'
        c = client(url, ['websocket'])
        try:
            c.call('echo', 1, timeout=10)
            m = scrape(other + '/metrics')
            assert m['greensio_events_received_total', (('namespace', '/'),)] == 1
            assert get(other + '/readyz')[0] == 200
            assert get(other + '/other')[0] == 404
        finally:
            c.disconnect()
    finally:
        http.shutdown()
        http.server_close()
        metrics.close()


def test_close_puts_the_server_back_and_a_new_metrics_starts_from_zero(serve):
    sio = make_server()
    metrics = Metrics(sio, worker='w1')
    with pytest.raises(ValueError, match='has a Metrics already'):
        Metrics(sio)
    metrics.close()
    assert sio._metrics is None
    assert not vars(sio.manager).keys() & {'_emit_local', 'discard_callback'}
    url = serve(sio)
    c = client(url, ['websocket'])
    try:
        c.call('echo', 1, timeout=10)
        assert metrics.events_received == {}
        again = Metrics(sio, worker='w1')
        c.call('echo', 1, timeout=10)
        assert again.events_received == {'/': 1}
        again.close()
    finally:
        c.disconnect()


def test_readiness_follows_the_queue_state_and_the_outbox():
    """The in-memory bus fails and comes back: not ready while degraded or while the outbox drains."""
    bus = InMemoryBus()
    manager = InMemoryPubSubManager(bus, channel='health', outbox_size=10)
    sio = greensio.Server(client_manager=manager, async_mode='gevent')
    manager.initialize()
    health = Health(sio)
    assert health.max_outbox == 5
    try:
        assert health.ready()
        bus.fail()
        for i in range(6):
            sio.emit('x', i)
        wait_until(lambda: manager.state == 'degraded', 10, 'degraded')
        assert not health.ready()
        assert health.report() == {'ready': False, 'message_queue': 'degraded', 'outbox': 6}
        bus.restore()
        wait_until(health.ready, 15, 'ready again')
        assert manager.outbox_length < 5
    finally:
        bus.restore()
        deadline = time.monotonic() + 10
        while manager.outbox_length and time.monotonic() < deadline:
            gevent.sleep(0.01)
        manager.close(timeout=5)


@pytest.mark.timeout(60)
def test_asyncio_server_metrics_and_health_mounted_on_its_asgi_app():
    proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), 'metrics_async_app.py')],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    clients = []
    try:
        with gevent.Timeout(20, TimeoutError('the asyncio server did not start')):
            url = f'http://127.0.0.1:{int(proc.stdout.readline())}'
        clients = [client(url, ['websocket']), client(url, ['polling'])]
        for c in clients:
            for i in range(2):
                assert c.call('echo', i, timeout=10) == i
        assert clients[0].call('ask_slow', timeout=10) == 'timed out'
        got = []
        for c in clients:
            c.on('tick', lambda data, got=got: got.append(data))
        clients[1].call('tick_all', timeout=10)
        wait_until(lambda: len(got) == 2, 10, 'two ticks')
        assert clients[1].call('ask_everyone', timeout=10) == 2  # neither answers 'slow' within 0.2 s
        m = scrape(url + '/metrics')
        assert m['greensio_clients', (('namespace', '/'), ('transport', 'websocket'))] == 1
        assert m['greensio_clients', (('namespace', '/'), ('transport', 'polling'))] == 1
        assert m['greensio_connects_total', (('namespace', '/'), ('result', 'accepted'))] == 2
        assert m['greensio_events_received_total', (('namespace', '/'),)] == 7
        assert m['greensio_events_sent_total', (('namespace', '/'),)] == 5  # slow, 2 ticks, slow to both
        assert m['greensio_handler_duration_seconds_count', (('namespace', '/'),)] == 7
        assert m['greensio_call_timeouts_total', ()] == 1
        assert m['greensio_ack_timeouts_total', ()] == 2
        assert m['greensio_received_bytes_total', ()] > 0 and m['greensio_sent_bytes_total', ()] > 0
        assert get(url + '/readyz') == (200, json.dumps({'status': 'ok', 'message_queue': 'none', 'outbox': 0}))
        assert get(url + '/healthz')[0] == 200
        assert get(url + '/elsewhere')[0] == 404
    finally:
        for c in clients:
            c.disconnect()
        proc.terminate()
        proc.wait(10)


def test_mounted_on_a_flask_app_next_to_its_routes(serve):
    flask = pytest.importorskip('flask')
    from greensio.flask import SocketIO

    app = flask.Flask(__name__)
    socketio = SocketIO(app)

    @app.route('/hello')
    def hello():
        return 'hello'

    @socketio.on('echo')
    def echo(data):
        return data

    metrics = Metrics(socketio.server, worker='w1')
    app.wsgi_app = Health(socketio.server).wsgi_app(metrics.wsgi_app(app.wsgi_app))
    url = serve(app)
    c = client(url, ['websocket'])
    try:
        assert c.call('echo', 5, timeout=10) == 5
        assert scrape(url + '/metrics')['greensio_events_received_total', (('namespace', '/'),)] == 1
        assert get(url + '/hello') == (200, 'hello')
        assert get(url + '/readyz')[0] == 200
    finally:
        c.disconnect()
        metrics.close()


def test_a_client_that_stops_reading_shows_as_slow_with_its_backlog(serve):
    import socket

    import rawclient

    sio = greensio.Server(max_http_buffer_size=1024 * 1024)
    metrics = Metrics(sio, worker='w1')
    url = serve(greensio.WSGIApp(sio, metrics.wsgi_app()))
    stalled, sid = rawclient.connect_sio(url)
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and it never reads again
    chunk = b'\x00' * (256 * 1024)
    try:
        sent = 0
        for _ in range(40):  # at most 10 MiB: below the 16 MiB that closes a stalled peer
            sio.emit('blob', chunk, to=sid)
            sent += 1
            gevent.sleep(0.01)
            if scrape(url + '/metrics')['greensio_slow_clients', ()] == 1:
                break
        m = scrape(url + '/metrics')
        assert m['greensio_slow_clients', ()] == 1
        assert 0 < m['greensio_write_backlog_bytes', ()] <= sent * len(chunk)
        assert m['greensio_sent_bytes_total', ()] >= sent * len(chunk)
        assert m['greensio_events_sent_total', (('namespace', '/'),)] == sent
    finally:
        stalled.close()
        metrics.close()


def test_ack_timeouts_of_broadcasts_and_calls_to_a_room(serve):
    """A room of two clients, one of which answers too late: each missing ack and each call() counts."""
    sio = greensio.Server()
    sio.on('join', lambda sid: sio.enter_room(sid, 'room'))
    metrics = Metrics(sio, worker='w1')
    url = serve(greensio.WSGIApp(sio, metrics.wsgi_app()))
    quick, slow = client(url, ['websocket']), client(url, ['websocket'])
    quick.on('ask', lambda: 'yes')
    slow.on('ask', lambda: gevent.sleep(1.0) or 'late')
    try:
        for c in (quick, slow):
            c.call('join', timeout=10)
        got = []
        sio.emit('ask', to='room', callback=lambda answers, missing: got.append((answers, missing)), timeout=0.3)
        wait_until(lambda: got, 10, 'the broadcast callback')
        assert got == [(['yes'], 1)]
        with pytest.raises(greensio.exceptions.TimeoutError):
            sio.call('ask', to='room', timeout=0.3)
        sio.emit('ask', to='room', callback=lambda answers, missing: got.append((answers, missing)), timeout=5)
        wait_until(lambda: len(got) == 2, 10, 'the broadcast every client answered')
        assert got[1] == (['yes', 'late'], 0)
        m = scrape(url + '/metrics')
        assert m['greensio_ack_timeouts_total', ()] == 2  # the slow client, once per broadcast that gave up
        assert m['greensio_call_timeouts_total', ()] == 1
        assert m['greensio_events_sent_total', (('namespace', '/'),)] == 6  # three broadcasts to two clients
    finally:
        for c in (quick, slow):
            c.disconnect()
        metrics.close()


def test_a_recovered_session_counts_as_recovered_with_the_events_it_missed():
    from e2e_helpers import start_server
    from tcp_proxy import CuttableProxy

    sio = greensio.Server(connection_state_recovery={'max_disconnection_duration': 30})
    sio.on('join', lambda sid: sio.enter_room(sid, 'room') or 'joined')
    metrics = Metrics(sio, worker='w1')
    server = start_server(greensio.WSGIApp(sio, metrics.wsgi_app()), 'greensio')
    proxy = CuttableProxy(server.server_port)
    url = f'http://127.0.0.1:{server.server_port}'
    received = []
    c = greensio.Client(reconnection_delay=0.05, reconnection_delay_max=0.1, randomization_factor=0)
    c.on('tick', received.append)
    try:
        c.connect(f'http://127.0.0.1:{proxy.port}', transports=['websocket'])
        assert c.call('join', timeout=10) == 'joined'
        sio.emit('tick', 0, to='room')
        wait_until(lambda: received == [0], 10, 'the first tick')
        proxy.cut()
        wait_until(lambda: sum(value for (name, _), value in scrape(url + '/metrics').items()
                               if name == 'greensio_disconnects_total') == 1, 10, 'the server to see the drop')
        for i in (1, 2, 3):
            sio.emit('tick', i, to='room')  # nobody to send it to: the recovery log keeps it
        wait_until(lambda: c.connected and c.recovered, 10, 'the recovery')
        wait_until(lambda: received == [0, 1, 2, 3], 10, 'the missed ticks')
        m = scrape(url + '/metrics')
        assert m['greensio_connects_total', (('namespace', '/'), ('result', 'accepted'))] == 1
        assert m['greensio_connects_total', (('namespace', '/'), ('result', 'recovered'))] == 1
        assert m['greensio_events_sent_total', (('namespace', '/'),)] == 4  # one live, three replayed
        assert m['greensio_clients', (('namespace', '/'), ('transport', 'websocket'))] == 1
    finally:
        c.disconnect()
        proxy.close()
        server.stop()
        metrics.close()
        sio.shutdown()


def test_bytes_are_the_utf8_size_of_each_engine_io_message(serve):
    import rawclient

    sio = greensio.Server()
    sio.on('echo', lambda sid, data: data)
    metrics = Metrics(sio, worker='w1')
    url = serve(greensio.WSGIApp(sio, metrics.wsgi_app()))
    raw, _sid = rawclient.connect_sio(url)
    other, _ = rawclient.connect_sio(url)
    try:
        m = scrape(url + '/metrics')
        before = m['greensio_received_bytes_total', ()], m['greensio_sent_bytes_total', ()]
        raw.send('421["echo","' + 'é' * 1000 + '"]')  # 'é' is two bytes in UTF-8
        answer = raw.recv()
        assert answer == '431' + json.dumps(['é' * 1000])  # the server escapes it: 6000 ASCII bytes
        m = scrape(url + '/metrics')
        assert m['greensio_received_bytes_total', ()] - before[0] == len('21["echo",""]') + 2000
        assert m['greensio_sent_bytes_total', ()] - before[1] == len(answer) - 1  # without Engine.IO's '4'

        # a broadcast, encoded once: its bytes count once per recipient, binary attachments included
        before_sent = m['greensio_sent_bytes_total', ()]
        sio.emit('tick', {'text': 'x' * 100, 'blob': b'\x00' * 300})
        received = [(ws.recv(), ws.recv()) for ws in (raw, other)]
        placeholder, attachment = received[0]
        assert placeholder.startswith('451-["tick",') and attachment == b'\x00' * 300
        assert received[1] == received[0]
        m = scrape(url + '/metrics')
        assert m['greensio_sent_bytes_total', ()] - before_sent == 2 * (len(placeholder) - 1 + 300)
        assert m['greensio_events_sent_total', (('namespace', '/'),)] == 2
    finally:
        raw.close()
        other.close()
        metrics.close()
