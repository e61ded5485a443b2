"""Sessions shared through the message queue: two workers that cannot reach each other's sockets.

Two greensio servers in this process stand for workers of two machines: each
has its own tag (the start of its sids and of its queue host id), no worker
socket of the other is reachable, and they share an in-memory queue.  A
round-robin balancer in front sends each new TCP connection to the next
server, so the official JavaScript client's requests of one session alternate
between them: long-polling requests cross through the queue
(``greensio.request`` ``forward``), and a websocket upgrade that lands on the
other server is relayed (``greensio.relay``).  The balancer here is contrary
on purpose: every request of a session (the websocket upgrade included) goes
to the server that does *not* own it; only handshakes alternate.
"""

from __future__ import annotations

import json
import socket
import uuid

import gevent
import pytest
import requests
from gevent.server import StreamServer
from jsclient import JSClient, skip_reason

import greensio
from greensio import forwarding
from greensio.engineio.base_server import BaseServer
from greensio.testing import InMemoryBus, InMemoryPubSubManager

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or '')

TAGS = ('aaaaaaaa', 'bbbbbbbb')


class ContraryBalancer:
    """Sends each connection to the server that does not own the sid of its first request."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.handshakes = 0
        self.server = StreamServer(('127.0.0.1', 0), self.handle)
        self.server.start()
        self.port = self.server.server_port

    def choose(self, head: bytes) -> int:
        at = head.find(b'sid=')
        if at < 0:
            self.handshakes += 1
            return self.ports[self.handshakes % 2]
        tag = head[at + 4:at + 12].decode('latin-1')
        return self.ports[1 - TAGS.index(tag)] if tag in TAGS else self.ports[0]

    def handle(self, client, address) -> None:
        head = client.recv(65536, socket.MSG_PEEK)
        port = self.choose(head)
        try:
            upstream = socket.create_connection(('127.0.0.1', port))
        except ConnectionRefusedError:  # a dead server: the other one
            upstream = socket.create_connection(('127.0.0.1', self.ports[1 - self.ports.index(port)]))
        pipes = [gevent.spawn(self.pipe, client, upstream), gevent.spawn(self.pipe, upstream, client)]
        gevent.joinall(pipes, count=1)
        gevent.killall(pipes)
        client.close()
        upstream.close()

    @staticmethod
    def pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass


@pytest.fixture
def machines(monkeypatch, tmp_path):
    """Two servers on one queue, each with its own tag, behind a round-robin balancer; yields (url, servers)."""
    bus, channel = InMemoryBus(), f'fwd-{uuid.uuid4().hex[:8]}'
    servers = []
    for tag in TAGS:
        monkeypatch.setattr(BaseServer, 'sid_prefix', tag)  # what greensio's gunicorn worker sets
        sio = greensio.Server(client_manager=InMemoryPubSubManager(bus, channel=channel), ping_interval=5,
                              ping_timeout=5)
        sio.eio.sid_prefix = tag
        sio.served = []

        @sio.on('echo')
        def echo(sid, data, sio=sio):
            sio.served.append(data)
            return data

        @sio.on('shout')
        def shout(sid, data, sio=sio):
            sio.emit('heard', data)

        http = sio.http = greensio.make_server(greensio.WSGIApp(sio), '127.0.0.1', 0)
        http.start()
        servers.append(sio)
    monkeypatch.setattr(BaseServer, 'sid_prefix', '')
    # this process's worker socket directory holds neither server: the queue is the only way across
    monkeypatch.setattr(forwarding, 'peers', forwarding.Peers(str(tmp_path / 'workers')))
    balancer = ContraryBalancer([sio.http.server_port for sio in servers])
    try:
        yield f'http://127.0.0.1:{balancer.port}', servers
    finally:
        balancer.server.stop()
        for sio in servers:
            sio.http.stop()
            sio.manager.close()


@pytest.mark.parametrize('transports', [['polling'], ['polling', 'websocket']], ids=['polling', 'upgrade'])
def test_a_session_is_served_whichever_machine_its_requests_reach(machines, transports) -> None:
    url, servers = machines
    count = 20
    with JSClient() as js:
        for n in range(4):
            js.connect(url, sock=f'c{n}', wait=True, opts={'transports': transports, 'forceNew': True})
            if transports == ['polling', 'websocket']:
                js.wait_for('upgrade', sock=f'c{n}', timeout=10)
        for n in range(4):
            for i in range(count):
                assert js.call('echo', [n, i], sock=f'c{n}') == [[n, i]]
        js.emit('shout', 'all of you', sock='c0')
        for n in range(4):
            heard = js.wait_for('event', sock=f'c{n}', event='heard', timeout=10)
            assert heard['args'] == ['all of you']
        for n in range(4):
            state = js.state(sock=f'c{n}')
            assert state['connected'] and state['transport'] == transports[-1]
    served = [sorted(tuple(d) for d in sio.served) for sio in servers]
    assert sorted(served[0] + served[1]) == sorted((n, i) for n in range(4) for i in range(count))
    assert all(sio.served for sio in servers)  # both machines own sessions
    assert all(sio.manager.stats['received'] > count for sio in servers)  # every request crossed
    assert sum(sio.manager.stats['invalid'] for sio in servers) == 0


def test_a_sid_of_a_machine_that_is_gone_gets_the_usual_refusal(machines) -> None:
    url, _ = machines
    for sid in ('zzzzzzzz' + 'x' * 20, 'aaaaaaaa' + 'x' * 20, 'not-a-tag'):
        for _ in range(2):  # whichever server the balancer picks
            started = gevent.get_hub().loop.now()
            r = requests.get(f'{url}/socket.io/?EIO=4&transport=polling&sid={sid}', timeout=10)
            assert r.status_code == 400 and r.json() == {'code': 1, 'message': 'Session ID unknown'}
            assert gevent.get_hub().loop.now() - started < forwarding.MEMBERSHIP_WAIT + 1


def test_when_a_worker_dies_its_clients_are_let_go_and_new_ones_are_served(machines) -> None:
    url, servers = machines
    with JSClient() as js:
        for n in range(2):  # the contrary balancer: c0 owned by one server, c1 by the other
            js.connect(url, sock=f'c{n}', wait=True, opts={'forceNew': True, 'reconnection': False})
            js.wait_for('upgrade', sock=f'c{n}', timeout=10)
        dead = next(sio for sio in servers if js.state(sock='c0')['engine_sid'].startswith(sio.eio.sid_prefix))
        dead.http.stop()  # the worker dies: its connections drop, it leaves the queue
        dead.manager.close()
        for n in range(2):  # c0's session lived there; c1's websocket passed through it
            assert js.wait_for('disconnect', sock=f'c{n}', timeout=10)['reason'] == 'transport close'
        js.connect(url, sock='c2', wait=True, opts={'forceNew': True})
        assert js.call('echo', 'after', sock='c2') == ['after']


def test_a_worker_refuses_forwarded_requests_beyond_its_bound(machines, monkeypatch) -> None:
    from greensio.managers import pubsub_manager

    url, _ = machines
    r = requests.get(f'{url}/socket.io/?EIO=4&transport=polling', timeout=5)  # a handshake: one server owns it
    sid = json.loads(r.text[1:])['sid']
    bound = pubsub_manager.MAX_FORWARDED
    monkeypatch.setattr(pubsub_manager, 'MAX_FORWARDED', 0)
    # the contrary balancer sends it to the other server, which forwards it through the queue
    r = requests.get(f'{url}/socket.io/?EIO=4&transport=polling&sid={sid}', timeout=10)
    assert r.status_code == 503
    monkeypatch.setattr(pubsub_manager, 'MAX_FORWARDED', bound)
    r = requests.get(f'{url}/socket.io/?EIO=4&transport=polling&sid={sid}', timeout=10)
    assert r.status_code == 200
