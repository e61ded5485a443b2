"""Settings shared by the chat's web app and its broadcaster (environment variables)."""

import os

#: Broker URL (``amqp://...``, ``redis://...``); unset: one process, in-memory manager.
MESSAGE_QUEUE = os.environ.get('GREENSIO_MESSAGE_QUEUE') or None
#: Channel (exchange) shared by the workers and broadcaster.py.
CHANNEL = os.environ.get('CHAT_CHANNEL', 'greensio-chat')
