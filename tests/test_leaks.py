"""Nothing is left behind by clients that come and go, however they go.

Rounds of real clients over 127.0.0.1 connect, join rooms, save sessions,
leave acks unanswered and a ``call()`` to time out, then leave: cleanly,
by dropping the TCP connection, in the middle of a binary packet, by
breaking the protocol, or by going silent until the heartbeat drops them.
After each round the server's per-client state must be empty, and from the
second round on no greensio, python-engineio or gevent-websocket object may
be left over that the first round did not already leave (caches, reused
workers): growth from round to round is a leak.
"""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any

import gevent
import pytest
import rawclient as rc

import greensio
from greensio._core.events import EventReceived

pytestmark = pytest.mark.timeout(90)

ROUNDS = 4
CLIENTS_PER_KIND = 6
#: the modules whose objects are counted
OWNERS = ('greensio', 'engineio', 'geventwebsocket')


def live_objects() -> Counter:
    gc.collect()
    counts: Counter = Counter()
    for obj in gc.get_objects():
        owner = getattr(type(obj), '__module__', None)
        if isinstance(owner, str) and owner.startswith(OWNERS):
            counts[f'{owner}.{type(obj).__qualname__}'] += 1
    return counts


def per_client_state(sio: greensio.Server) -> dict[str, int]:
    """How many entries each per-client structure of the server holds."""
    registry = sio.manager._registry

    def entries(nested: dict) -> int:
        return sum(len(inner) for inner in nested.values())

    return {
        'engine sockets': len(sio.eio.sockets),
        'connections': len(sio._connections),
        'environ': len(sio.environ),
        'ordered queues': len(sio._ordered),
        'room members': sum(len(members) for rooms in registry.rooms.values() for members in rooms.values()),
        'sid rooms': entries(registry.sid_rooms),
        'eio to sid': entries(registry.eio_to_sid),
        'pending disconnects': entries(registry.pending_disconnect),
        'ack callbacks': entries(registry.callbacks),
        'ack id counters': len(registry._ack_ids),
    }


def make_server(serve: Any) -> tuple[greensio.Server, str]:
    # a short heartbeat, so the silent clients are dropped within the round
    sio = greensio.Server(ping_interval=0.3, ping_timeout=0.3)
    sio.sids = set()  # every client it had
    asked = []

    @sio.event
    def connect(sid: str, environ: dict, auth: Any = None) -> None:
        sio.sids.add(sid)
        sio.enter_room(sid, 'lobby')
        sio.enter_room(sid, f'private-{sid}')
        sio.save_session(sid, {'blob': bytes(4096)})

    @sio.event
    def echo(sid: str, *args: Any) -> Any:
        return args

    @sio.event
    def ask(sid: str) -> None:
        # an ack the client will never send, and a call() that times out
        sio.emit('question', 'never answered', to=sid, callback=lambda *args: asked.append(args))
        try:
            sio.call('question', 'too late', to=sid, timeout=0.05)
        except greensio.exceptions.TimeoutError:
            pass

    return sio, serve(sio)


def one_round(url: str) -> None:
    leaving = []
    for _ in range(CLIENTS_PER_KIND):
        # leaves cleanly after an ack and a call() it lets time out
        client, _sid = rc.connect_sio(url)
        client.send_sio('21["echo","hi"]')
        client.send_sio('2["ask"]')
        leaving.append(('close frame', client))
        # drops the TCP connection without a word
        leaving.append(('tcp drop', rc.connect_sio(url)[0]))
        # stops in the middle of a binary packet
        client = rc.connect_sio(url)[0]
        client.send_sio('52-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        client.send(b'\x01')
        leaving.append(('tcp drop', client))
        # breaks the protocol
        client = rc.connect_sio(url)[0]
        client.send_sio('2["x",NaN]')
        leaving.append(('protocol', client))
        # goes silent: the heartbeat drops it
        client = rc.connect_sio(url)[0]
        client.answer_pings = False
        leaving.append(('silent', client))
        # long-polling, then silent
        polling = rc.PollingSession(url)
        polling.sio_connect()
        polling.send('42["echo","over polling"]')
    for how, client in leaving:
        if how == 'close frame':
            client.close()
        elif how == 'tcp drop':
            client.sock.close()
        elif how == 'protocol':
            client.wait_closed(timeout=5)
            client.close()
    for how, client in leaving:
        if how == 'silent':
            client.wait_closed(timeout=5)
            client.close()


def test_clients_that_come_and_go_leave_nothing_behind(serve: Any) -> None:
    sio, url = make_server(serve)
    empty = {name: 0 for name in per_client_state(sio)}
    baseline: Counter = Counter()
    grown: dict[str, tuple[int, int]] = {}

    def nothing_grew() -> bool:
        # a leak never shrinks back; objects still winding down (a handler's
        # last greenlet, a closing socket) do, so they get a few seconds.  A
        # leak per client grows by at least CLIENTS_PER_KIND a round; a smaller
        # difference is another test's server in this process winding down
        now = live_objects()
        grown.clear()
        grown.update({name: (baseline[name], now[name]) for name in now
                      if now[name] >= baseline[name] + CLIENTS_PER_KIND})
        return not grown

    for n in range(ROUNDS):
        one_round(url)
        assert rc.wait_until(lambda: per_client_state(sio) == empty, timeout=10), per_client_state(sio)
        if n == 1:  # from the second round on, what the first left (caches, parked workers) is there
            gevent.sleep(0.2)
            baseline = live_objects()
        elif n > 1:
            assert rc.wait_until(nothing_grew, timeout=5, interval=0.2), f'objects that grew in round {n + 1}: {grown}'
    assert len(sio.eio.sockets) == 0
    # the parked handler workers hold no event (nor its payload) of the clients they served

    def events_kept() -> list[EventReceived]:
        gc.collect()
        return [obj for obj in gc.get_objects() if type(obj) is EventReceived and obj.sid in sio.sids]

    assert rc.wait_until(lambda: not events_kept(), timeout=5), events_kept()
