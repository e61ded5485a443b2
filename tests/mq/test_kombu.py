"""RabbitMQ specifics of ``KombuManager``: topology, heartbeats, confirms."""

from __future__ import annotations

import logging
import time

import gevent
import kombu
import pytest

import greensio

from .conftest import needs_rabbitmq
from .helpers import AMQP_URL, Recorder, delete_exchange, unique_channel, wait_until

pytestmark = [needs_rabbitmq, pytest.mark.timeout(30)]


@pytest.fixture
def channel():
    name = unique_channel()
    yield name
    delete_exchange(name)


def test_topology_is_durable_and_the_queue_is_stable(channel, serve):
    manager = greensio.KombuManager(AMQP_URL, channel=channel)
    sio = greensio.Server(client_manager=manager)
    client = Recorder(serve(sio))
    try:
        assert manager.queue_name == f'greensio.{channel}.{manager.host_id}'
        with kombu.Connection(AMQP_URL) as conn:
            # passive declarations fail if the objects are missing or differ
            kombu.Exchange(channel, type='fanout', durable=True)(conn.channel()).declare(passive=True)
            _name, _count, consumers = conn.channel().queue_declare(manager.queue_name, passive=True)
            assert consumers == 1
        emitter = greensio.KombuManager(AMQP_URL, channel=channel, write_only=True)
        emitter.emit('hello', 1)
        client.wait_for('hello')
        assert emitter.close(5)
    finally:
        client.disconnect()
        sio.shutdown()  # closes the manager
    with kombu.Connection(AMQP_URL) as conn, pytest.raises(Exception, match='NOT_FOUND'):
        conn.channel().queue_declare(manager.queue_name, passive=True)  # close() deleted it


def test_an_existing_non_durable_exchange_is_adopted_with_a_warning(channel, serve, caplog):
    caplog.set_level(logging.WARNING, logger='greensio.pubsub')
    with kombu.Connection(AMQP_URL) as conn:
        kombu.Exchange(channel, type='fanout', durable=False)(conn.channel()).declare()
    sio = greensio.Server(client_manager=greensio.KombuManager(AMQP_URL, channel=channel))
    client = Recorder(serve(sio))
    emitter = greensio.KombuManager(AMQP_URL, channel=channel, write_only=True)
    try:
        emitter.emit('hello', 1)
        client.wait_for('hello')
        assert 'already exists with durable=False' in caplog.text
        assert sio.manager.healthy and emitter.healthy
    finally:
        client.disconnect()
        emitter.close(2)
        sio.manager.close(2)


def test_a_pinned_durability_mismatch_is_an_error_not_a_guess(channel):
    with kombu.Connection(AMQP_URL) as conn:
        kombu.Exchange(channel, type='fanout', durable=False)(conn.channel()).declare()
    emitter = greensio.KombuManager(AMQP_URL, channel=channel, write_only=True,
                                    exchange_options={'durable': True})
    emitter.emit('x', 1)
    wait_until(lambda: emitter.state == 'degraded', 10, 'the publisher reports the mismatch')
    assert emitter.flush(0.1) is False
    emitter.close(0.1)


def test_heartbeats_are_serviced_while_idle(channel, serve, caplog):
    caplog.set_level(logging.WARNING, logger='greensio.pubsub')
    options = {'heartbeat': 2}
    manager = greensio.KombuManager(AMQP_URL, channel=channel, connection_options=options)
    sio = greensio.Server(client_manager=manager)
    client = Recorder(serve(sio))
    emitter = greensio.KombuManager(AMQP_URL, channel=channel, write_only=True, connection_options=options)
    try:
        emitter.emit('tick', 1)
        client.wait_for('tick')
        # idle for several heartbeat intervals: RabbitMQ closes a connection
        # that misses two, and the manager would log an outage
        idle_until = time.monotonic() + 5.5
        while time.monotonic() < idle_until:
            gevent.sleep(0.1)
        emitter.emit('tick', 2)
        client.wait_for('tick', 2)
        assert 'degraded' not in caplog.text
        assert manager.healthy and emitter.healthy
        assert manager.stats['duplicates'] == 0
    finally:
        client.disconnect()
        emitter.close(2)
        manager.close(2)


def test_publisher_confirms_gate_the_outbox(channel):
    emitter = greensio.KombuManager(AMQP_URL, channel=channel, write_only=True)
    for i in range(1000):
        emitter.emit('n', i)
    assert emitter.flush(10)
    assert emitter.stats['published'] == 1000 and emitter.outbox_length == 0
    emitter.close(1)
