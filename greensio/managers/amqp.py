"""RabbitMQ settings the green (kombu) and asyncio (aio-pika) queue managers share.

Shell ring, runtime-neutral: names and numbers only, no client library.
"""

from __future__ import annotations

#: Seconds between AMQP heartbeats the client asks for (RabbitMQ's default
#: is 60): a dead peer is noticed within two intervals.
HEARTBEAT = 10
#: A connection attempt to a broker that does not answer gives up after this.
CONNECT_TIMEOUT = 3.0
#: Longest wait for the broker to confirm a published batch.
CONFIRM_TIMEOUT = 10.0
#: Unacknowledged messages RabbitMQ may push to the listener ahead of dispatch.
PREFETCH = 256
#: Dispatched messages acknowledged with one frame (well below ``PREFETCH``,
#: or the broker would stop sending while it waits for the acks).
ACK_BATCH = 64
#: ... or once they add up to this many bytes: a redelivery after a crash must
#: stay within the receivers' dedup window (``_core.pubsub.DEDUP_WINDOW``
#: ids), and a batch of messages counts as one AMQP message.  Every message
#: is over 100 bytes: an unacknowledged redelivery holds at most ~650 of them
#: plus one batch (``_core.pubsub.MAX_BATCH``).
ACK_BYTES = 65536
#: Longest a dispatched message waits for its acknowledgement when no more
#: messages follow it (a redelivery after a crash in that window is deduplicated).
ACK_DELAY = 0.005
#: The broker deletes a worker's queue this long after its last consumer left
#: (python-socketio's value): long enough to ride out a restart of the worker's
#: connection, short enough that SIGKILLed workers do not accumulate queues.
QUEUE_EXPIRES_MS = 300_000


def workers_exchange(channel: str) -> str:
    """The durable exchange greensio's queues are bound to (the green and asyncio managers share it)."""
    return f'greensio.{channel}'
