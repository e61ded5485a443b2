"""Test setup: the test process runs on gevent, like greensio's users."""

from gevent import monkey

monkey.patch_all()

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import greensio


@pytest.fixture
def serve():
    """Start a greensio app on 127.0.0.1, port 0; returns the base URL."""
    servers = []

    def start(app):
        if isinstance(app, greensio.Server):
            app = greensio.WSGIApp(app)
        server = greensio.make_server(app, '127.0.0.1', 0)
        server.start()
        servers.append(server)
        return f'http://127.0.0.1:{server.server_port}'

    yield start
    for server in servers:
        server.stop(timeout=1)


@pytest.fixture(autouse=True)
def _packet_json_restored():
    """``Server(json=...)`` sets the JSON module of every packet, process-wide, as
    python-socketio does; a test that passes one must not leave it to the next
    (a lenient module would let NaN through the hostile-input tests)."""
    import engineio.packet

    import greensio.packet

    saved = greensio.packet.Packet.json, engineio.packet.Packet.json
    yield
    greensio.packet.Packet.json, engineio.packet.Packet.json = saved


def _no_skips() -> bool:
    """CI has every dependency (node, uvicorn, RabbitMQ, Redis, Chromium, sphinx):
    there a skip means a broken setup, and it fails instead of passing unnoticed.
    ``GREENSIO_NO_SKIP=1`` asks for the same locally."""
    flag = os.environ.get('GREENSIO_NO_SKIP') or os.environ.get('CI') or ''
    return flag.strip().lower() not in ('', '0', 'false', 'no')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, 'wasxfail') and _no_skips():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = 'failed'
        report.longrepr = f'skipped where every dependency must be present (CI / GREENSIO_NO_SKIP): {reason}'


@pytest.fixture(scope='module')
def async_server():
    """One ``AsyncServer`` under uvicorn in its own process (``tests/async_app.py``) per module."""
    from async_support import AsyncServerProcess

    process = AsyncServerProcess()
    yield process
    process.close()


def pytest_addoption(parser):
    parser.addoption('--shard', default=None, metavar='K/N',
                     help="run only the test files of shard K of N (0-based; files dealt round-robin by path): "
                          "tests/run.sh runs the suite as two shards side by side")


def pytest_collection_modifyitems(config, items):
    shard = config.getoption('--shard')
    if shard is None:
        return
    k, n = (int(x) for x in shard.split('/'))
    files = sorted({item.path for item in items})
    mine = {path for i, path in enumerate(files) if i % n == k}
    deselected = [item for item in items if item.path not in mine]
    items[:] = [item for item in items if item.path in mine]
    config.hook.pytest_deselected(items=deselected)
