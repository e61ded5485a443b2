"""The official Socket.IO Admin UI, in headless Chromium, against an instrumented greensio server.

The UI's built page (``@socket.io/admin-ui``'s ``ui/dist``, installed by
``npm ci`` in tests/browser) is served by the same ``WSGIApp`` as the
Socket.IO server, on 127.0.0.1 (port 0).  tests/browser/admin_ui.js logs in
through the UI's form, checks that the servers, sockets and rooms pages show
the server and its clients, and disconnects one client with the UI's button;
this test then checks that the client was disconnected.  Screenshots land in
tests/artifacts/admin_ui*.png (admin_ui.png, the dashboard, is the docs' picture;
admin_ui_failed.png shows the page where a step failed).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import bcrypt
import pytest
from e2e_helpers import wait_until

import greensio

try:
    from demo_process import BROWSER_DIR, CHROMIUM, ROOT, browser_skip_reason
except ImportError:  # pragma: no cover
    from tests.demo_process import BROWSER_DIR, CHROMIUM, ROOT, browser_skip_reason
from mq.helpers import AMQP_URL, delete_exchange, rabbitmq_up, unique_channel

SCRIPT = os.path.join(BROWSER_DIR, 'admin_ui.js')
ADMIN_UI = os.path.join(BROWSER_DIR, 'node_modules', '@socket.io', 'admin-ui', 'ui', 'dist')
ARTIFACTS = os.path.join(ROOT, 'tests', 'artifacts')
PASSWORD = 'admin-ui-test'

SKIP = browser_skip_reason(os.path.join(ADMIN_UI, 'index.html'), '@socket.io/admin-ui')
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or '')


def admin_ui_files() -> dict[str, str]:
    """The Admin UI's built page, as ``static_files`` of a ``WSGIApp``."""
    static_files = {'/': os.path.join(ADMIN_UI, 'index.html')}
    static_files.update({f'/{name}': os.path.join(ADMIN_UI, name) for name in os.listdir(ADMIN_UI)})
    return static_files


def drive_admin_ui(url: str, sockets: list[dict], screenshots: str, server_ids: tuple[str, ...] = ()) -> None:
    """Run admin_ui.js against ``url``; it disconnects ``sockets[0]`` with the UI's button."""
    args = [json.dumps(list(server_ids))] if server_ids else []
    run = subprocess.run(['node', SCRIPT, url, 'admin', PASSWORD, json.dumps(sockets), screenshots, *args],
                         check=False, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=100,
                         env={**os.environ, 'CHROMIUM': CHROMIUM})
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    for expected in ('logged in', 'server listed', 'sockets listed', 'rooms listed', 'disconnected from the UI'):
        assert f'"step":"{expected}"' in run.stdout, report


@pytest.mark.timeout(120)
def test_admin_ui_lists_sockets_and_rooms_and_disconnects_one(serve):
    os.makedirs(ARTIFACTS, exist_ok=True)
    for name in os.listdir(ARTIFACTS):
        if name.startswith('admin_ui'):
            os.unlink(os.path.join(ARTIFACTS, name))
    sio = greensio.Server()

    @sio.on('connect')
    def connect(sid, environ, auth):
        sio.enter_room(sid, auth['room'])

    @sio.on('chat')
    def chat(sid, text):
        sio.emit('chat', text, to=sio.rooms(sid))

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    sio.instrument(auth={'username': 'admin', 'password': hashed}, server_id='greensio-admin-test',
                   server_stats_interval=0.5)
    url = serve(greensio.WSGIApp(sio, static_files=admin_ui_files()))
    clients = []
    try:
        for room in ('red', 'red', 'blue'):
            client = greensio.Client(reconnection=False)
            client.connect(url, auth={'room': room})
            clients.append(client)
        clients[0].emit('chat', 'hello red')
        sockets = [{'id': c.get_sid('/'), 'room': room} for c, room in zip(clients, ('red', 'red', 'blue'))]
        drive_admin_ui(url, sockets, ARTIFACTS)
        wait_until(lambda: not clients[0].connected, what='the client disconnected from the Admin UI')
        assert clients[1].connected and clients[2].connected
        with open(os.path.join(ARTIFACTS, 'admin_ui.png'), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    finally:
        for client in clients:
            client.shutdown()
        sio.shutdown()


def enter_room_of(sio: greensio.Server) -> Any:
    """A connect handler: the client enters the room its auth names."""
    def connect(sid: str, environ: dict, auth: dict) -> None:
        sio.enter_room(sid, auth['room'])

    return connect


@pytest.mark.skipif(not rabbitmq_up(), reason='RabbitMQ is not running on 127.0.0.1:5672')
@pytest.mark.timeout(120)
def test_admin_ui_across_two_workers_on_rabbitmq(serve):
    """Two workers on RabbitMQ; the UI, logged in to worker a, lists both and disconnects a client of b."""
    screenshots = os.path.join(ARTIFACTS, 'cluster_admin_ui')
    os.makedirs(screenshots, exist_ok=True)
    channel = unique_channel()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    workers, urls = [], []
    for name in ('a', 'b'):
        sio = greensio.Server(client_manager=greensio.KombuManager(AMQP_URL, channel=channel))
        sio.on('connect', enter_room_of(sio))
        sio.instrument(auth={'username': 'admin', 'password': hashed}, server_id=f'greensio-worker-{name}',
                       server_stats_interval=0.5)
        workers.append(sio)
        urls.append(serve(greensio.WSGIApp(sio, static_files=admin_ui_files())))
    clients = []
    try:
        placed = [(urls[1], 'red'), (urls[0], 'red'), (urls[1], 'blue')]  # the first, to disconnect, on b
        for url, room in placed:
            client = greensio.Client(reconnection=False)
            client.connect(url, auth={'room': room})
            clients.append(client)
        sockets = [{'id': c.get_sid('/'), 'room': room} for c, (_url, room) in zip(clients, placed)]
        drive_admin_ui(urls[0], sockets, screenshots, ('greensio-worker-a', 'greensio-worker-b'))
        wait_until(lambda: not clients[0].connected, what='the client of worker b disconnected from the UI')
        assert clients[1].connected and clients[2].connected
    finally:
        for client in clients:
            client.shutdown()
        for sio in workers:
            sio.shutdown()
        delete_exchange(channel)
