"""The chat demo's Flask app (``examples.chat.app:app`` for gunicorn).

In-memory manager by default (one process).  Set ``GREENSIO_MESSAGE_QUEUE``
(e.g. ``amqp://guest:guest@127.0.0.1:5672//``) to run several workers on
RabbitMQ; ``examples/chat/broadcaster.py`` then reaches every browser.
"""

from __future__ import annotations

import os

import flask

from greensio.flask import SocketIO

from .config import CHANNEL, MESSAGE_QUEUE
from .namespace import ChatNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
#: The official browser client, installed by ``npm ci`` in this directory.
SOCKETIO_JS = os.environ.get('GREENSIO_SOCKETIO_JS') or os.path.join(
    HERE, 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js')

app = flask.Flask(__name__, static_folder=os.path.join(HERE, 'static'),
                  template_folder=os.path.join(HERE, 'templates'))
socketio = SocketIO(app, message_queue=MESSAGE_QUEUE, channel=CHANNEL)
socketio.on_namespace(ChatNamespace('/chat'))


@app.route('/')
def index() -> str:
    # several workers without sticky sessions: the page must skip long-polling
    transports = os.environ.get('CHAT_TRANSPORTS', 'polling,websocket').split(',')
    return flask.render_template('index.html', transports=transports)


@app.route('/socket.io.min.js')
def socketio_client() -> flask.Response:
    if not os.path.isfile(SOCKETIO_JS):
        flask.abort(flask.make_response(
            f'socket.io client not found at {SOCKETIO_JS}: run "npm ci" in examples/chat', 500))
    return flask.send_file(SOCKETIO_JS, mimetype='text/javascript', max_age=3600)


@app.route('/health')
def health() -> dict:
    return {'status': 'ok', 'worker': os.getpid(), 'manager': type(socketio.server.manager).__name__}
