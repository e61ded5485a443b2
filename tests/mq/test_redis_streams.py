"""Redis Streams mode (``RedisManager(url, streams=True)``) under faults.

Same fleet as test_faults.py: two worker processes, one write-only emitter
process, python-socketio clients here, every delivery counted: 0 lost,
0 duplicated, nothing out of order across a Redis restart without its data
(``SHUTDOWN NOSAVE`` of a private redis-server this test starts, then the
same port again), while the emitter keeps emitting, a worker broadcasts and
the other worker is paused so that it has not read what the emitter had
confirmed.  Listener connections killed mid-stream (``CLIENT KILL``) and
foreign entries in the stream are in test_faults.py, with the other
backends.  Plus the stream's bound, and the bookkeeping's decisions on
replies Redis could give (no Redis needed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
from collections.abc import Iterator

import gevent
import pytest
from async_support import AsyncServerProcess, skip_reason

import greensio
from greensio.managers import redis_streams as streams

from .conftest import needs_redis
from .helpers import (
    REDIS_URL,
    Fleet,
    Recorder,
    RedisServer,
    check_sequence,
    delete_stream,
    unique_channel,
    wait_until,
)
from .test_faults import CLEAN, numbers, stream_through_an_outage

needs_redis_server = pytest.mark.skipif(not RedisServer.available(), reason='redis-server is not installed')


class NosaveRedis(RedisServer):
    """A private redis-server that loses everything when it stops: ``SHUTDOWN NOSAVE``."""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(['redis-cli', '-p', str(self.port), 'shutdown', 'nosave'], check=False,
                               capture_output=True, timeout=10)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # ours, by its pid
                self.proc.wait(10)
        self.proc = None


@contextlib.contextmanager
def streams_fleet(url: str, channel: str | None = None, **kwargs) -> Iterator[Fleet]:
    channel = channel or unique_channel()
    fleet = Fleet('redis-streams', url, channel, **kwargs)
    try:
        yield fleet
    finally:
        fleet.stop()
        with contextlib.suppress(Exception):  # a private server may be gone already
            delete_stream(channel, url)


@pytest.fixture
def private_redis() -> Iterator[NosaveRedis]:
    server = NosaveRedis()
    try:
        yield server
    finally:
        server.stop()


@needs_redis_server
@pytest.mark.timeout(150)
def test_redis_restart_without_data_mid_stream_loses_and_duplicates_nothing(private_redis):
    with streams_fleet(private_redis.url) as fleet:
        b = fleet.servers[1]

        def pause_b(clients: list[Recorder]) -> None:
            # b stops reading: what the emitter adds now is confirmed but unread by b when Redis loses it
            os.kill(b.proc.pid, signal.SIGSTOP)
            behind = len(clients[2].of('seq'))
            wait_until(lambda: len(clients[0].of('seq')) >= behind + 30, 20, 'a ahead of the paused b')

        def resume_b() -> None:
            os.kill(b.proc.pid, signal.SIGCONT)
            gevent.sleep(0.5)  # Redis stays down a little longer: the emitter's outbox fills

        try:
            stream_through_an_outage(
                fleet, private_redis.stopped,
                lambda: greensio.RedisManager(private_redis.url, channel=fleet.channel, write_only=True, streams=True),
                before=pause_b, during=resume_b)
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        for worker in fleet.servers:  # each read the new stream from its start
            assert any('is not the one this worker was reading' in line for line in worker.stderr)
        # the emitter had confirmed entries b never read: it published its recent ones again
        assert any('publishing the' in line for line in fleet.emitter.stderr), '\n'.join(fleet.emitter.stderr)


@needs_redis_server
@pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or '')
@pytest.mark.timeout(120)
def test_an_asyncio_worker_through_a_restart_without_data(private_redis):
    """``AsyncRedisManager(streams=True)`` beside a green worker and emitter on one stream."""
    channel = unique_channel()
    aio = AsyncServerProcess()
    clients: list[Recorder] = []
    try:
        with streams_fleet(private_redis.url, servers=1, channel=channel) as fleet:
            aio.reset('mq', backend='redis-streams', url=private_redis.url, channel=channel)
            clients = [Recorder(fleet.urls[0], 'green'), Recorder(aio.url, 'asyncio')]
            green, asyncio_ = clients
            fleet.emit('seq', 300, interval_ms=10)
            wait_until(lambda: all(len(c.of('seq')) >= 50 for c in clients), 30, 'stream under way')
            with private_redis.stopped():
                assert asyncio_.client.call('blast', {'event': 'during', 'count': 50}, timeout=10) == 50
                asyncio_.wait_for('during', 50)
                wait_until(lambda: aio('sio.manager.state') == 'degraded', 20, 'the asyncio worker degraded')
                assert green.of('during') == []
            for client in clients:
                client.wait_for('seq', 300, timeout=60)
                client.wait_for('during', 50, timeout=60)
            fleet.emit('end_emitter', 1)
            asyncio_.client.call('blast', {'event': 'end_asyncio', 'count': 1}, timeout=20)
            for client in clients:
                client.wait_for('end_emitter', timeout=30)
                client.wait_for('end_asyncio', timeout=30)
                for event, count in (('seq', 300), ('during', 50)):
                    assert check_sequence(numbers(client, event), count) == CLEAN, (client.name, event)
                    assert len(client.of(event)) == count, (client.name, event)
            wait_until(lambda: aio('sio.manager.state') == 'healthy', 20, 'the asyncio worker healthy again')
            assert aio('sio.manager.stats')['invalid'] == 0
    finally:
        for client in clients:
            client.disconnect()
        aio.close()


@needs_redis
@pytest.mark.timeout(60)
def test_the_stream_stays_near_its_bound():
    import redis

    channel = unique_channel()
    emitter = greensio.RedisManager(REDIS_URL, channel=channel, write_only=True, streams=True, stream_maxlen=100)
    admin = redis.Redis.from_url(REDIS_URL)
    try:
        for i in range(3000):
            emitter.emit('seq', i)
        assert emitter.flush(20)
        length = admin.xlen(streams.stream_key(channel))
        # MAXLEN ~ trims whole listpack nodes (100 entries by default): never far past the bound
        assert 100 <= length <= 200, length
        last = admin.xrevrange(streams.stream_key(channel), '+', '-', count=1)[0][1][b'data']
        assert json.loads(last)['data'] == [2999]
    finally:
        emitter.close(5)
        admin.delete(streams.stream_key(channel))
        admin.close()


def test_python_socketio_signature_still_holds():
    mgr = greensio.RedisManager('redis://127.0.0.1:1/0', 'chan', True, None, None, {'client_name': 'x'})
    assert (mgr.channel, mgr.write_only, mgr.streams, mgr.redis_options) == ('chan', True, False, {'client_name': 'x'})
    on = greensio.AsyncRedisManager('redis://127.0.0.1:1/0', channel='c', streams=True, stream_maxlen=50)
    assert (on.streams, on.stream_maxlen, on.stream_key) == (True, 50, 'greensio:c')
    with pytest.raises(ValueError):
        greensio.RedisManager('redis://127.0.0.1:1/0', streams=True, stream_maxlen=0)


# -- the bookkeeping, on replies Redis could give -------------------------------------------------

LOG = logging.getLogger('test.streams')


def entry(entry_id: str, text: str) -> tuple[bytes, dict[bytes, bytes]]:
    return entry_id.encode(), {b'data': text.encode()}


def info(added: int, length: int, last: tuple | None = None) -> dict:
    """An ``XINFO STREAM`` reply as redis-py parses it."""
    return {'length': length, 'entries-added': added, 'last-entry': last, 'first-entry': None}


NO_STREAM = Exception('no such key')  # what a pipeline gives for XINFO STREAM on a missing key


def test_a_reader_starts_after_the_last_entry_and_keeps_its_place():
    reader = streams.StreamReader('k', LOG, 'test')
    assert reader.cursor is None
    reader.connected(None, info(5, 5, entry('5-0', 'five')))
    assert reader.cursor == b'5-0' and reader.position == b'5-0'
    assert reader.read(entry('6-0', 'six')) == b'six'
    reader.connected([entry('6-0', 'six')], info(6, 6))  # the same entry is there: the same stream
    assert reader.cursor == b'6-0'
    empty = streams.StreamReader('k', LOG, 'test')
    empty.connected(None, NO_STREAM)
    assert empty.cursor == b'0-0' and empty.position is None


def test_a_reader_reads_a_recreated_stream_from_its_start(caplog):
    # Redis lost its data: no stream, a new one without the entry, or another entry with the same id
    # (the new one may already have had more entries than the old one had when this worker read its last)
    for found, the_info in (([], NO_STREAM), ([], info(3, 3)), ([entry('9-0', 'other')], info(1, 1)),
                            ([], info(50, 50))):
        reader = streams.StreamReader('k', LOG, 'test')
        reader.connected(None, info(9, 9, entry('9-0', 'nine')))
        with caplog.at_level(logging.WARNING, logger='test.streams'):
            reader.connected(found, the_info)
        assert reader.cursor == b'0-0' and reader.position is None
        assert 'is not the one this worker was reading' in caplog.text
        assert 'trimmed' not in caplog.text
        caplog.clear()


def test_a_reader_counts_what_trimming_took_before_it_read_it(caplog):
    reader = streams.StreamReader('k', LOG, 'test')
    reader.connected(None, info(9, 9, entry('9-0', 'nine')))
    with caplog.at_level(logging.WARNING, logger='test.streams'):
        reader.check_lag(info(20, 11))  # 9 trimmed: all read already
        assert caplog.text == ''
        reader.connected([], info(30, 10))  # away: the entry read last and 11 more were trimmed
    assert reader.cursor == b'0-0'
    assert '11 message(s) were trimmed' in caplog.text
    assert 'is not the one' not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='test.streams'):
        for n in range(21, 31):
            reader.read(entry(f'{n}-0', str(n)))
        reader.check_lag(info(300, 100))  # connected but 170 behind
    assert '170 message(s) were trimmed' in caplog.text


def test_a_foreign_entry_moves_the_cursor_and_yields_nothing(caplog):
    reader = streams.StreamReader('k', LOG, 'test')
    reader.connected(None, NO_STREAM)
    with caplog.at_level(logging.WARNING, logger='test.streams'):
        assert reader.read((b'3-0', {b'junk': b'x'})) is None
        assert reader.read((b'4-0', {b'data': b'x', b'more': b'y'})) is None
    assert reader.cursor == b'4-0'
    assert caplog.text.count('dropped an invalid message') == 2


def test_the_replay_tail_publishes_recent_messages_again_only_when_the_stream_lost_them():
    now = [100.0]
    tail = streams.ReplayTail('k', LOG, 'test', clock=lambda: now[0])
    tail.confirmed(['old'], b'1-0')
    now[0] += streams.REPLAY_SECONDS + 1
    tail.confirmed(['a', 'b'], b'3-0')
    assert tail.position is None  # no failure: nothing to look up
    tail.connection_lost()
    assert tail.position == b'3-0'
    assert tail.check([entry('3-0', 'b')]) == []  # still there
    assert tail.position is None
    tail.connection_lost()
    assert tail.check([]) == ['a', 'b']  # gone with Redis's data; 'old' is too old to matter
    tail.connection_lost()
    assert tail.check([entry('3-0', 'another')]) == ['a', 'b']  # a new stream's entry with our id
