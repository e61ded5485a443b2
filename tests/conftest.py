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
