"""Frames sent to one websocket within one loop iteration leave together, and none is lost.

greensio writes the first frame of a loop iteration at once and collects the
ones that follow it in the same iteration (a burst of emits, the deliveries
of a batch from the message queue) for one write at the end of the
iteration, or as soon as ``greensio.engineio.websocket.CORK_SIZE`` bytes are
waiting.  A burst must reach the client whole and in order, also when the
connection is closed right behind it.
"""

import json

import pytest
import rawclient

import greensio
from greensio.engineio import websocket as engine

pytestmark = pytest.mark.timeout(30)


def burst_server(serve, then_disconnect: bool) -> tuple[str, greensio.Server]:
    sio = greensio.Server()

    @sio.on('burst')
    def burst(sid, spec):
        for i in range(spec['count']):  # no yield in between: one loop iteration
            sio.emit('n', [i, 'x' * spec['size']], to=sid)
        if then_disconnect:  # the whole connection, in the same iteration
            sio.eio.disconnect(sio.manager.eio_sid_from_sid(sid, '/'))

    return serve(sio), sio


def received(client: rawclient.RawSioClient, count: int) -> list[int]:
    numbers = []
    while len(numbers) < count:
        packet = client.recv_sio(timeout=10)
        assert isinstance(packet, str) and packet.startswith('2["n",'), packet
        numbers.append(json.loads(packet[1:])[1][0])
    return numbers


@pytest.mark.parametrize('size', [10, 2000], ids=['small frames', 'past CORK_SIZE'])
def test_a_burst_arrives_whole_and_in_order(serve, size):
    url, _sio = burst_server(serve, then_disconnect=False)
    client, _sid = rawclient.connect_sio(url)
    try:
        count = 500
        assert count * size > engine.CORK_SIZE or size == 10
        client.send_sio(f'2["burst",{{"count":{count},"size":{size}}}]')
        assert received(client, count) == list(range(count))
    finally:
        client.close()


def test_a_connection_closed_right_after_a_burst_gets_the_burst_first(serve):
    url, _sio = burst_server(serve, then_disconnect=True)
    client, _sid = rawclient.connect_sio(url)
    try:
        client.send_sio('2["burst",{"count":300,"size":10}]')
        assert received(client, 300) == list(range(300))
        client.wait_closed(timeout=10)  # and then the close
    finally:
        client.close()


def test_a_binary_event_leaves_in_one_write_with_its_attachments(serve, monkeypatch):
    sio = greensio.Server()
    url = serve(sio)
    client, sid = rawclient.connect_sio(url)
    writes: list[bytes] = []
    send = engine.WebSocketTransport.send

    def recording_send(self, frame):
        writes.append(frame)
        send(self, frame)

    monkeypatch.setattr(engine.WebSocketTransport, 'send', recording_send)
    try:
        sio.emit('blob', {'a': b'\x01\x02', 'b': b'\x03'}, to=sid)
        assert client.recv_sio(timeout=10) == '52-["blob",{"a":{"_placeholder":true,"num":0},' \
                                              '"b":{"_placeholder":true,"num":1}}]'
        assert client.recv_sio(timeout=10) == b'\x01\x02'
        assert client.recv_sio(timeout=10) == b'\x03'
        assert len(writes) == 1  # the event and both attachments, one system call
    finally:
        client.close()


def test_the_upgrade_answer_leaves_with_the_open_packet(serve, monkeypatch):
    import gevent.socket

    url = serve(greensio.Server())
    writes: list[bytes] = []
    for name in ('send', 'sendall'):
        method = getattr(gevent.socket.socket, name)

        def recording(self, data, *args, _method=method, **kwargs):
            if bytes(data[:1]) in (b'H', b'\x81'):  # the server's answers and frames, not the client's request
                writes.append(bytes(data))
            return _method(self, data, *args, **kwargs)

        monkeypatch.setattr(gevent.socket.socket, name, recording)
    client = rawclient.RawSioClient(url)
    try:
        assert writes[0].startswith(b'HTTP/1.1 101 Switching Protocols\r\n')
        head, _, frame = writes[0].partition(b'\r\n\r\n')
        assert frame.startswith(b'\x81') and b'0{"sid":' in frame  # one write, one wake-up of the client
        assert client.connect_namespace('/')
    finally:
        client.close()
