"""The Admin UI across workers: two gevent worker processes on RabbitMQ, and
the asyncio twin on an in-memory bus.

An Admin UI client (the UI's protocol, driven by a python-socketio client on
``/admin``) connects to worker a; application clients are connected to a and
b.  It sees both workers' stats and sockets, and its actions reach the
sockets of worker b through the cluster methods.
"""

from __future__ import annotations

import json

import pytest
from test_async_pubsub import Bus, CapturingSocket, aio, received, until

from .conftest import needs_rabbitmq
from .helpers import Recorder, wait_until
from .test_async_cluster import cluster
from .test_faults import fleet_of


@needs_rabbitmq
@pytest.mark.timeout(120)
def test_admin_ui_sees_and_acts_on_the_sockets_of_two_workers():
    with fleet_of('kombu', emitter=False, server_args=('--instrument',)) as fleet:
        a, b, b_other = (Recorder(url, name) for url, name in zip(fleet.urls + fleet.urls[1:], ('a', 'b', 'b2')))
        admin = Recorder(fleet.urls[0], 'admin', namespace='/admin')
        try:
            assert a.client.call('join', 'ops', timeout=10) == 'joined'
            assert b.client.call('join', 'ops', timeout=10) == 'joined'

            def reported(event, match):
                return wait_until(lambda: [args for args in admin.of(event) if match(args)], 10,
                                  f'{event} on the admin client')

            # the multi-server view: every worker's stats, every worker's sockets
            wait_until(lambda: {args[0]['serverId'] for args in admin.of('server_stats')} == set(fleet.host_ids),
                       10, 'server_stats of both workers')
            # the login worker's sockets at login, the other's announced at once (not in 20 s)
            assert a.sid in {socket['id'] for socket in admin.wait_for('all_sockets')[0][0]}
            for client in (b, b_other):
                reported('socket_connected', lambda args, sid=client.sid: args[0]['id'] == sid)

            # a socket of the other worker, by its sid (the UI's per-socket buttons)
            admin.client.emit('join', ('/', 'vip', b.sid), namespace='/admin')
            reported('room_joined', lambda args: list(args[:3]) == ['/', 'vip', b.sid])
            admin.client.emit('emit', ('/', b.sid, 'hello', 'from the admin'), namespace='/admin')
            assert b.wait_for('hello') == [('from the admin',)]
            admin.client.emit('leave', ('/', 'vip', b.sid), namespace='/admin')
            reported('room_left', lambda args: list(args[:3]) == ['/', 'vip', b.sid])

            # a room with members on both workers: every member joins, wherever it is
            admin.client.emit('join', ('/', 'night shift', 'ops'), namespace='/admin')
            for client in (a, b):
                reported('room_joined', lambda args, sid=client.sid: list(args[:3]) == ['/', 'night shift', sid])
            admin.client.emit('emit', ('/', 'night shift', 'shift', 1), namespace='/admin')
            a.wait_for('shift')
            b.wait_for('shift')
            assert b_other.of('shift') == [] and b_other.of('hello') == []

            admin.client.emit('_disconnect', ('/', False, b.sid), namespace='/admin')
            wait_until(lambda: not b.client.connected, 10, 'b disconnected by the Admin UI')
            reported('socket_disconnected', lambda args: list(args[:2]) == ['/', b.sid])
            admin.client.emit('_disconnect', ('/', True, b_other.sid), namespace='/admin')  # the whole connection
            wait_until(lambda: not b_other.client.connected, 10, 'b2 closed by the Admin UI')
            assert a.client.connected
        finally:
            for client in (a, b, b_other, admin):
                client.disconnect()


@pytest.mark.timeout(30)
@aio
async def test_async_admin_ui_across_workers() -> None:
    workers = await cluster(Bus(), clients=1)
    for sio, _clients in workers:
        sio.instrument(auth=False, server_stats_interval=0.1)
    (a, _), (b, [(b_sid, b_sock)]), _ = workers
    admin = CapturingSocket('eio-admin')
    a.eio.sockets[admin.sid] = admin
    await a._handle_eio_connect(admin.sid, {})
    await a._handle_eio_message(admin.sid, '0/admin,{}')
    seen: list[str] = []

    def announced() -> bool:
        seen.extend(received(admin))
        return any(p.startswith('2/admin,["socket_connected"') and b_sid in p for p in seen)

    await until(announced)  # at login, not at the next announcement
    await a._handle_eio_message(admin.sid, '2/admin,' + json.dumps(['join', '/', 'vip', b_sid]))
    await until(lambda: 'vip' in b.rooms(b_sid))
    await a._handle_eio_message(admin.sid, '2/admin,' + json.dumps(['_disconnect', '/', False, b_sid]))
    await until(lambda: not b.manager.is_connected(b_sid, '/'))
    assert '1' in received(b_sock)  # its namespace's DISCONNECT
    for sio, _clients in workers:
        await sio.shutdown()
