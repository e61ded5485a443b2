"""One client cannot make the server hold unbounded work: ``max_events_in_flight``.

Each event a client sends holds its arguments and a greenlet (or a task)
until its handler ends, and a client can send events far faster than slow
handlers finish.  At ``max_events_in_flight`` events waiting or running, the
server stops reading that client until one of them ends: the rest wait in
the TCP connection and in the client, the client stays connected (its
heartbeat does not time out while the server is the one not reading), and
other clients are served as before.

The first tests drive the server's Engine.IO entry point directly, with no
socket.  The end-to-end ones flood a real server on 127.0.0.1 (port 0) from
the JS socket.io-client (websocket and long-polling) and from a raw
websocket client sending 2 KiB events, on the green server (greensio's own
HTTP server and gevent-websocket's) and on the asyncio one (uvicorn).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import psutil
import pytest
import rawclient as rc
from async_support import AsyncServerProcess, RemoteApp
from async_support import skip_reason as async_skip_reason
from e2e_helpers import DEPLOYMENTS, needs_node, start_server, wait_until
from jsclient import JSClient, jsclients

import greensio
from greensio._core.session import MAX_EVENTS_IN_FLIGHT
from greensio.testing import TestClient

pytestmark = pytest.mark.timeout(20)

BOUND = 4
TRANSPORTS = {'websocket': ['websocket'], 'polling': ['polling']}
needs_uvicorn = pytest.mark.skipif(async_skip_reason() is not None, reason=async_skip_reason() or '')


def settle() -> None:
    """Let every greenlet that can run, run (handlers start on the next loop turns)."""
    for _ in range(20):
        gevent.sleep(0)


# -- no socket: the server's Engine.IO entry point, fed by a reader greenlet ----------------


class Gated:
    """A server whose ``slow`` handler waits until the test opens its gate."""

    def __init__(self, **options: Any) -> None:
        self.sio = sio = greensio.Server(max_events_in_flight=BOUND, **options)
        self.gates: dict[int, gevent.event.Event] = {}
        self.started: list[int] = []
        self.finished: list[int] = []

        @sio.event
        def slow(sid: str, i: int) -> int:
            self.started.append(i)
            self.gates.setdefault(i, gevent.event.Event()).wait(timeout=10)
            self.finished.append(i)
            return i

        self.client = TestClient(sio)  # connected on creation
        self.fed: list[int] = []  # events whose delivery returned to the reader

    def read(self, count: int) -> gevent.Greenlet:
        """A reader greenlet that delivers ``count`` events, as a websocket reader does."""

        def reader() -> None:
            for i in range(count):
                self.sio.eio.message_handler(self.client.eio_sid, f'2["slow",{i}]')
                self.fed.append(i)

        return gevent.spawn(reader)

    def open(self, *numbers: int) -> None:
        for i in numbers:
            self.gates.setdefault(i, gevent.event.Event()).set()


@pytest.mark.parametrize('mode', [True, 'ordered'])
def test_the_reader_pauses_at_the_bound_and_resumes_as_handlers_end(mode: Any) -> None:
    app = Gated(async_handlers=mode)
    reader = app.read(10)
    settle()
    # the BOUND-th event is handed over, then reading stops until one ends
    assert app.fed == list(range(BOUND - 1))
    assert app.started == (list(range(BOUND)) if mode is True else [0])
    app.open(0)
    settle()
    assert app.fed == list(range(BOUND))  # one ended: exactly one more event was read
    assert app.started == (list(range(BOUND + 1)) if mode is True else [0, 1])
    assert len(app.started) - len(app.finished) <= BOUND
    app.open(*range(10))
    reader.join(timeout=5)
    assert app.fed == list(range(10))
    assert sorted(app.finished) == list(range(10))
    if mode == 'ordered':
        assert app.finished == list(range(10))
    # nothing is left counted: a new burst pauses again at the same bound, not earlier
    app.fed.clear()
    app.gates.clear()
    reader = app.read(BOUND + 2)
    settle()
    assert app.fed == list(range(BOUND - 1))
    app.open(*range(BOUND + 2))
    reader.join(timeout=5)
    assert app.fed == list(range(BOUND + 2))


def test_a_disconnect_releases_the_paused_reader(caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger='socketio.server')  # before the server sets its own level
    app = Gated()
    reader = app.read(50)
    settle()
    assert len(app.fed) == BOUND - 1
    warnings = [r.getMessage() for r in caplog.records if 'max_events_in_flight' in r.getMessage()]
    assert warnings == [(f'{app.client.eio_sid}: {BOUND} events queued or running (max_events_in_flight), '
                         'not reading more until its handlers catch up')]
    app.client.disconnect()
    reader.join(timeout=5)
    assert reader.dead
    # the events after the disconnect are dropped, not handled
    assert app.started == list(range(BOUND))
    app.open(*range(BOUND))


def test_a_handler_that_fails_still_counts_out() -> None:
    sio = greensio.Server(max_events_in_flight=2)
    ran: list[int] = []

    @sio.event
    def boom(sid: str, i: int) -> None:
        ran.append(i)
        raise RuntimeError('handler bug')

    client = TestClient(sio)
    reader = gevent.spawn(lambda: [sio.eio.message_handler(client.eio_sid, f'2["boom",{i}]') for i in range(20)])
    reader.join(timeout=5)
    assert reader.dead and ran == list(range(20))


def test_the_bound_is_an_option_with_a_default() -> None:
    assert greensio.Server().max_events_in_flight == MAX_EVENTS_IN_FLIGHT == 100
    assert greensio.AsyncServer(max_events_in_flight=7).max_events_in_flight == 7
    for bad in (0, -1, 2.5, None):
        with pytest.raises(ValueError, match='max_events_in_flight'):
            greensio.Server(max_events_in_flight=bad)
        with pytest.raises(ValueError, match='max_events_in_flight'):
            greensio.AsyncServer(max_events_in_flight=bad)


def test_a_paused_peer_cannot_time_out(serve: Any) -> None:
    # a websocket client that never answers a PING, held by two paused readers
    # (overlapping polling POSTs do that): the heartbeat timer must not end it
    sio = greensio.Server(ping_interval=0.2, ping_timeout=0.2)
    gone = []
    sio.on('disconnect', lambda sid, reason: gone.append(reason))
    url = serve(sio)
    client, _ = rc.connect_sio(url, answer_pings=False)
    try:
        socket = next(iter(sio.eio.sockets.values()))
        socket.hold_heartbeat(True)
        socket.hold_heartbeat(True)
        gevent.sleep(1.0)  # pinged, never answered: without the holds gone at 0.4 s
        assert not socket.closed and gone == []
        socket.hold_heartbeat(False)
        gevent.sleep(0.6)
        assert not socket.closed
        start = time.monotonic()
        socket.hold_heartbeat(False)  # released: the pending ping gets a whole ping_timeout, from now
        assert wait_until(lambda: socket.closed, timeout=2, what='ping timeout after the release')
        assert 0.1 < time.monotonic() - start < 0.6
        assert wait_until(lambda: gone == ['ping timeout'], what='the disconnect handler')
    finally:
        client.close()


# -- end to end: the JS client floods a slow handler --------------------------------------------


class FloodApp:
    """A green server with a gated ``slow`` handler and a quick ``echo``; short heartbeats."""

    def __init__(self, url_of: Any) -> None:
        self.sio = sio = greensio.Server(max_events_in_flight=BOUND, ping_interval=0.3, ping_timeout=0.4)
        self.gate = gevent.event.Event()
        self.running = 0
        self.peak = 0
        self.handled = 0
        self.disconnects: list[tuple[str, str]] = []

        @sio.event
        def slow(sid: str, i: int) -> int:
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                self.gate.wait(timeout=15)
            finally:
                self.running -= 1
                self.handled += 1
            return i

        @sio.event
        def echo(sid: str, data: Any) -> Any:
            return data

        @sio.event
        def disconnect(sid: str, reason: str) -> None:
            self.disconnects.append((sid, reason))

        self.url = url_of(sio)


@pytest.fixture
def make_js() -> Iterator[Any]:
    with jsclients() as make:
        yield make


def flood_and_check(js: JSClient, url: str, transports: list[str], count: int,
                    running: Any, open_gate: Any, disconnects: Any) -> None:
    """The shared scenario: ``count`` events at a slow handler, a neighbour, then the gate opens."""
    js.connect(url, sock='flood', transports=transports, reconnection=False, wait=True)
    js.connect(url, sock='other', transports=transports, reconnection=False, wait=True)
    flood = js.emit_many('slow', count, sock='flood', ack=True)
    wait_until(lambda: running() == BOUND, timeout=5, what='the bound reached')
    # held for several heartbeats (0.3 s + 0.4 s): the neighbour is answered
    # promptly all along, and the paused client is not dropped by either side
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        start = time.monotonic()
        assert js.call('echo', 'hi', sock='other', timeout=2) == ['hi']
        assert time.monotonic() - start < 0.5
        assert running() == BOUND
        gevent.sleep(0.2)
    assert not js.find_all('disconnect'), js.describe()
    assert not disconnects()
    open_gate()
    js.wait_for('acks_done', id=flood, timeout=10)
    assert not disconnects()
    assert js.call('echo', 'still here', sock='flood') == ['still here']


@needs_node
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_js_flood_is_held_at_the_bound_green(serve: Any, make_js: Any, transport: str) -> None:
    app = FloodApp(serve)
    flood_and_check(make_js(), app.url, TRANSPORTS[transport], 300, lambda: app.running, app.gate.set,
                    lambda: app.disconnects)
    assert app.peak == BOUND
    assert app.handled == 300


@pytest.fixture
def remote_flood(async_server: AsyncServerProcess) -> RemoteApp:
    app = RemoteApp(async_server, 'hostile', max_events_in_flight=BOUND, ping_interval=0.3, ping_timeout=0.4)
    async_server('app.__dict__.update(gate=asyncio.Event(), running=[0])')
    async_server('exec(source, {"app": app, "sio": sio})', source=SLOW_ASYNC_HANDLER)
    return app


SLOW_ASYNC_HANDLER = """
async def slow(sid, i):
    app.running[0] += 1
    try:
        await app.gate.wait()
    finally:
        app.running[0] -= 1
    return i

sio.on('slow', slow)
"""


@needs_node
@needs_uvicorn
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_js_flood_is_held_at_the_bound_asyncio(async_server: AsyncServerProcess, remote_flood: RemoteApp,
                                              make_js: Any, transport: str) -> None:
    flood_and_check(make_js(), remote_flood.url, TRANSPORTS[transport], 300,
                    lambda: async_server('app.running[0]'), lambda: async_server('app.gate.set()'),
                    lambda: async_server('app.disconnects'))


# -- end to end: a raw websocket client floods 2 KiB events; the server's memory stays flat -----

EVENT = '42["slow","' + 'x' * 2048 + '"]'


def flood_raw(url: str, limit: int, seconds: float) -> tuple[rc.RawSioClient, str, int]:
    """Send up to ``limit`` 2 KiB events as fast as the server reads them.

    Returns the client, still connected, its sid and how many events went out.
    """
    client, sid = rc.connect_sio(url)
    client.sock.settimeout(0.5)
    frame = rc.build_frame(rc.OP_TEXT, EVENT.encode())  # one masked frame, reused
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while sent < limit and time.monotonic() < deadline:
            client.sock.sendall(frame)
            sent += 1
    except TimeoutError:
        pass  # the server stopped reading: the network is full
    return client, sid, sent


def quick_answer(url: str) -> float:
    other, _ = rc.connect_sio(url)
    try:
        start = time.monotonic()
        other.send_sio('21["echo","hi"]')
        assert other.recv_sio(timeout=2) == '31["hi"]'
        return time.monotonic() - start
    finally:
        other.close()


@pytest.fixture(params=DEPLOYMENTS)
def url_of(request: Any) -> Iterator[Any]:
    """Serve on greensio's HTTP server or on gevent pywsgi + gevent-websocket (the drop-in way)."""
    servers = []

    def start(sio: greensio.Server) -> str:
        server = start_server(greensio.WSGIApp(sio), request.param)
        servers.append(server)
        return f'http://127.0.0.1:{server.server_port}'

    yield start
    for server in servers:
        server.stop(timeout=1)


def test_raw_flood_memory_stays_flat_green(url_of: Any) -> None:
    app = FloodApp(url_of)
    quick_answer(app.url)  # first-use allocations before the baseline
    before = rc.rss_bytes()
    # unbounded, 20,000 such events grew the server by ~270 MiB
    flooder, sid, sent = flood_raw(app.url, 20_000, 5.0)
    growth = rc.rss_bytes() - before
    assert sent < 20_000, 'the server never stopped reading'
    assert app.peak == BOUND
    assert growth < 16 * 2**20, f'{growth / 2**20:.1f} MiB for {sent} events'
    assert quick_answer(app.url) < 0.5
    app.gate.set()
    # nothing was dropped: every event that went out is handled, in the end
    wait_until(lambda: app.handled == sent, timeout=10, what='every event sent to be handled')
    assert sid not in dict(app.disconnects)
    flooder.close()


@needs_uvicorn
def test_raw_flood_memory_stays_flat_asyncio(async_server: AsyncServerProcess, remote_flood: RemoteApp) -> None:
    server = psutil.Process(async_server.proc.pid)
    quick_answer(remote_flood.url)
    before = server.memory_info().rss
    flooder, sid, sent = flood_raw(remote_flood.url, 20_000, 5.0)
    growth = server.memory_info().rss - before
    assert sent < 20_000, 'the server never stopped reading'
    assert async_server('app.running[0]') == BOUND
    assert growth < 16 * 2**20, f'{growth / 2**20:.1f} MiB for {sent} events'
    assert quick_answer(remote_flood.url) < 0.5
    async_server('app.gate.set()')
    wait_until(lambda: async_server('app.running[0]') == 0, timeout=10, what='the flood to drain')
    assert sid not in dict(async_server('app.disconnects'))
    flooder.close()
