"""A websocket client that stops reading must not stall broadcasts or grow the server without bound.

greensio writes websocket frames from the emitting greenlet without
blocking; what a peer does not read waits in a per-connection backlog of at
most ``greensio.engineio.websocket.MAX_WRITE_BACKLOG`` bytes, past which that connection
is closed.  The limit is lowered here so the test moves megabytes, not tens.
"""

import logging
import socket
import threading
import time

import pytest
import rawclient
import socketio as psio

import greensio
from greensio.engineio import websocket as engine

pytestmark = pytest.mark.timeout(60)

CHUNK = 256 * 1024
BROADCASTS = 64  # 16 MiB in all: far past the lowered backlog plus kernel buffers


def test_a_client_that_stops_reading_is_dropped_and_the_others_are_served(serve, monkeypatch, caplog):
    monkeypatch.setattr(engine, 'MAX_WRITE_BACKLOG', 1024 * 1024)
    caplog.set_level(logging.WARNING, logger='greensio.engineio')
    sio = greensio.Server(max_http_buffer_size=4 * CHUNK)
    gone = []
    sio.on('disconnect', lambda sid, reason: gone.append(sid))
    sio.on('echo', lambda sid, data: data)
    url = serve(sio)

    stalled, stalled_sid = rawclient.connect_sio(url)
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and it never reads again

    received = []
    done = threading.Event()
    good = psio.Client(reconnection=False)

    @good.on('blob')
    def blob(n, data):
        received.append((n, len(data)))
        if n == BROADCASTS - 1:
            done.set()

    good.connect(url, transports=['websocket'], wait_timeout=5)
    try:
        payload = b'\x00' * CHUNK
        slowest = 0.0
        for n in range(BROADCASTS):
            start = time.monotonic()
            sio.emit('blob', (n, payload))
            slowest = max(slowest, time.monotonic() - start)
            # paced by the reader that keeps up, so only the stalled one falls behind
            for _ in range(1000):
                if len(received) > n:
                    break
                sio.sleep(0.005)
        assert slowest < 0.5, f'an emit was held up {slowest:.2f} s by the stalled client'
        assert done.wait(5), f'the well-behaved client got {len(received)} of {BROADCASTS}'
        assert received == [(n, CHUNK) for n in range(BROADCASTS)]
        assert good.call('echo', 'still here', timeout=5) == 'still here'
        for _ in range(500):
            if stalled_sid in gone:
                break
            sio.sleep(0.01)
        assert stalled_sid in gone, 'the stalled client was never dropped'
        assert any('stopped reading' in r.getMessage() for r in caplog.records)
    finally:
        good.disconnect()
        stalled.close()
