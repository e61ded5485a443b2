"""Redis settings and helpers the green and asyncio Redis managers share.

Shell ring, runtime-neutral: URLs (plain, TLS, unix, Sentinel), timeouts and
the shared ``RedisSettings``; each twin adds how it talks to Redis.
"""

from __future__ import annotations

import importlib
import time
from typing import Any
from urllib.parse import unquote, urlparse

from .._core.pubsub import DedupWindow
from .base_pubsub_manager import EMIT_TIMEOUT, OUTBOX_SIZE
from .redis_streams import (
    DEDUP_WINDOW,
    FIELD,
    READ_COUNT,
    STREAM_MAXLEN,
    ReplayTail,
    StreamReader,
    entries_of,
    stream_key,
)

#: Seconds before a connection attempt to an unresponsive server gives up.
CONNECT_TIMEOUT = 3.0
#: Seconds a command may wait for its reply (the publisher only blocks its own task).
COMMAND_TIMEOUT = 10.0
#: Seconds of silence after which redis-py pings the subscriber connection.
HEALTH_CHECK_INTERVAL = 10
#: Longest wait for Redis to confirm a SUBSCRIBE.
SUBSCRIBE_TIMEOUT = 5.0
#: Longest a replay waits, once Redis answers again after an outage, for the
#: subscribers the channel had before it: a listener tries again within
#: ``RETRY_DELAY_MAX`` (5 s), then connects and subscribes; a worker that is
#: gone for good must not hold the outbox longer than that.
RESUBSCRIBE_TIMEOUT = 15.0


class SubscribersAway(Exception):
    """The channel has fewer subscribers than before the outage: the replay waits for them."""


#: URL schemes of the Redis managers (``+sentinel`` variants included).
_SCHEMES = ('redis', 'rediss', 'unix', 'valkey', 'valkeys')


def _redis_module(scheme: str) -> Any:
    scheme = scheme.split('+', 1)[0].lower()
    if scheme in ('redis', 'rediss', 'unix'):
        try:
            import redis
        except ImportError:
            if scheme != 'unix':
                raise RuntimeError('Redis package is not installed (Run "pip install redis" in your virtualenv).') \
                    from None
        else:
            return redis
    if scheme in ('valkey', 'valkeys', 'unix'):
        try:
            import valkey
        except ImportError:
            raise RuntimeError('Valkey package is not installed (Run "pip install valkey" in your virtualenv).') \
                from None
        return valkey
    raise ValueError(f'Unsupported Redis URL scheme: {scheme}')


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str | None, dict[str, Any]]:
    """Split ``redis+sentinel://[user:pw@]host1:port1,host2:port2[/db[/service]]``."""
    parsed = urlparse(url)
    if parsed.scheme not in ('redis+sentinel', 'valkey+sentinel'):
        raise ValueError('Invalid Redis Sentinel URL')
    hosts = parsed.netloc.rsplit('@', 1)[-1]
    sentinels = []
    for item in hosts.split(','):
        host, _, port = item.rpartition(':')
        sentinels.append((host, int(port)))
    kwargs: dict[str, Any] = {}
    if parsed.username:
        kwargs['username'] = unquote(parsed.username)
    if parsed.password:
        kwargs['password'] = unquote(parsed.password)
    parts = [p for p in parsed.path.split('/') if p]
    if parts:
        kwargs['db'] = int(parts[0])
    service = parts[1] if len(parts) > 1 else None
    return sentinels, service, kwargs


#: python-socketio's name for it (``socketio.redis_manager.parse_redis_sentinel_url``).
parse_redis_sentinel_url = parse_sentinel_url


def _numsub(reply: Any) -> int:
    """The count in a ``PUBSUB NUMSUB <channel>`` reply, ``[(channel, count)]``."""
    return int(reply[0][1])


class RedisSettings:
    """The constructor, the client and the publisher connection of both Redis managers (green and asyncio)."""

    channel: str
    idle_tick: float
    name: str
    logger: Any
    stats: dict[str, int]
    _outbox: Any

    def __init__(self, url: str = 'redis://localhost:6379/0', channel: str = 'socketio', write_only: bool = False,
                 logger: Any = None, json: Any = None, redis_options: dict | None = None,
                 *, outbox_size: int = OUTBOX_SIZE, emit_timeout: float = EMIT_TIMEOUT, batch_size: int = 1,
                 streams: bool = False, stream_maxlen: int = STREAM_MAXLEN) -> None:
        super().__init__(channel=channel, write_only=write_only, logger=logger, json=json,  # type: ignore[call-arg]
                         outbox_size=outbox_size, emit_timeout=emit_timeout, batch_size=batch_size)
        if stream_maxlen < 1:
            raise ValueError('stream_maxlen must be at least 1')
        self.streams = streams
        self.stream_maxlen = stream_maxlen
        #: The stream's key (``streams=True``); pub/sub uses ``channel`` itself.
        self.stream_key = stream_key(channel)
        if streams:
            self.name += '-streams'
            self._dedup = DedupWindow(DEDUP_WINDOW)
        self._reader = StreamReader(self.stream_key, self.logger, self.name)
        self._tail = ReplayTail(self.stream_key, self.logger, self.name)
        self.redis_url = url
        self.redis_options = dict(redis_options or {})
        # a bad scheme is a configuration error: say so now; a missing redis
        # (or valkey) package only when connecting, as python-socketio does,
        # so an app that configures a queue it does not use still imports
        scheme = urlparse(url).scheme.split('+', 1)[0].lower()
        if scheme not in _SCHEMES:
            raise ValueError(f'Unsupported Redis URL scheme: {scheme}')
        self._scheme = scheme
        self._pub: Any = None
        self._pub_broken = False
        #: Subscribers the last publish reached (Redis counts them), or the
        #: listener found when it subscribed: what a replay waits for.
        self._audience: int | None = None
        #: Subscribers the replay waits for since a publish failed, and when
        #: Redis answered again (the wait is bounded from there).
        self._awaited: int | None = None
        self._awaited_since: float | None = None

    @property
    def _module(self) -> Any:
        """redis-py, or valkey-py for ``valkey://`` URLs; raises if it is not installed."""
        return _redis_module(self._scheme)

    def _connect(self, client_module: Any, retry: Any, on_connect: Any = None) -> Any:
        """A client of ``client_module`` (redis-py's green or asyncio half) with our timeouts.

        ``on_connect(connection)`` replaces redis-py's handshake on each connection (see ``_once``).
        """
        no_backoff = importlib.import_module(self._module.__name__ + '.backoff').NoBackoff
        options: dict[str, Any] = {
            'socket_connect_timeout': CONNECT_TIMEOUT,
            'socket_timeout': COMMAND_TIMEOUT,
            'health_check_interval': HEALTH_CHECK_INTERVAL,
            # failures must reach the manager (health state, outbox replay)
            # instead of being retried silently inside redis-py
            'retry': retry(no_backoff(), 0),
        }
        if on_connect is not None:
            options['redis_connect_func'] = on_connect
        options.update(self.redis_options)
        if urlparse(self.redis_url).scheme in ('redis+sentinel', 'valkey+sentinel'):
            sentinels, service, kwargs = parse_sentinel_url(self.redis_url)
            options.update(kwargs)
            sentinel = client_module.sentinel.Sentinel(sentinels, **options)
            return sentinel.master_for(service or self.channel)
        return client_module.Redis.from_url(self.redis_url, **options)

    def _client(self) -> Any:
        raise NotImplementedError

    def _reconnecting(self, connected: bool) -> None:
        """Refuse a second connection of one client (streams): redis-py would open it silently.

        A client that lost its connection between two commands reconnects on
        the next one without a word, possibly to a Redis that restarted
        empty.  A stream reader must then check its place, a publisher
        whether Redis still has what it confirmed, before anything else is
        sent: failing the command sends them through the manager's reconnect.
        """
        if connected:
            raise self._module.exceptions.ConnectionError(
                'the connection to Redis was lost and would have been opened again silently')

    # -- who must get a replay ----------------------------------------------------------

    def _publisher_lost(self) -> None:
        """A publish failed: what the outbox holds waits for the channel's subscribers of now."""
        self._tail.connection_lost()
        if self._awaited is None and self._audience:
            self._awaited, self._awaited_since = self._audience, None

    def _subscribed(self, subscribers: int) -> None:
        """The listener subscribed; the channel has ``subscribers`` (this one included)."""
        if self._awaited is None:
            self._audience = max(self._audience or 0, subscribers)

    def _reached(self, receivers: int) -> None:
        """A publish reached ``receivers`` subscribers."""
        self._audience = receivers

    def _check_subscribers(self, subscribers: int) -> None:
        """Raise :class:`SubscribersAway` while fewer than the awaited subscribers are back (bounded)."""
        awaited = self._awaited
        if awaited is None:
            return
        if subscribers >= awaited:
            self._awaited = None
            return
        now = time.monotonic()
        if self._awaited_since is None:
            self._awaited_since = now
            self.logger.warning('%s: holding the replay of %d message(s) until the channel has its %d '
                                'subscriber(s) of before the outage again (%d now; at most %.0f s)',
                                self.name, len(self._outbox), awaited, subscribers, RESUBSCRIBE_TIMEOUT)
        elif now - self._awaited_since >= RESUBSCRIBE_TIMEOUT:
            self.logger.warning('%s: %d subscriber(s) did not come back within %.0f s; replaying to the %d '
                                'there are', self.name, awaited - subscribers, RESUBSCRIBE_TIMEOUT, subscribers)
            self._awaited = None
            return
        raise SubscribersAway(f'{subscribers} of the {awaited} subscriber(s) of before the outage are back')

    def _publisher(self) -> Any:
        if self._pub is None:
            self._pub = self._client()
        return self._pub

    # -- streams: the commands both twins send -----------------------------------------

    def _where_pipeline(self, client: Any) -> Any:
        """What a connecting reader asks: ``XRANGE`` at the entry it read last (if any), ``XINFO STREAM``."""
        pipe = client.pipeline(transaction=False)
        at = self._reader.position
        if at is not None:
            pipe.xrange(self.stream_key, at, at)
        pipe.xinfo_stream(self.stream_key)
        return pipe

    def _connected(self, replies: list[Any]) -> None:
        """Hand a ``_where_pipeline``'s replies (errors included, as values) to the reader."""
        self._reader.connected(replies[0] if len(replies) == 2 else None, replies[-1])

    def _xadd_pipeline(self, client: Any, texts: list[str]) -> Any:
        pipe = client.pipeline(transaction=False)
        for text in texts:
            pipe.xadd(self.stream_key, {FIELD: text}, maxlen=self.stream_maxlen, approximate=True)
        return pipe

    def _xread(self, client: Any) -> Any:
        """``XREAD`` after the cursor, blocking for at most an idle tick (the reply, or an awaitable of it)."""
        return client.xread({self.stream_key: self._reader.cursor}, count=READ_COUNT,
                            block=max(1, int(self.idle_tick * 1000)))

    def _lag_pipeline(self, client: Any) -> Any:
        """After a full ``XREAD``: ``XINFO STREAM`` (was anything trimmed before we read it?) and ``XREAD``."""
        pipe = client.pipeline(transaction=False)
        pipe.xinfo_stream(self.stream_key)
        pipe.xread({self.stream_key: self._reader.cursor}, count=READ_COUNT)
        return pipe

    def _checked_read(self, replies: list[Any]) -> Any:
        """The ``XREAD`` reply of a ``_lag_pipeline``, once the lag is checked."""
        info, reply = replies
        if isinstance(reply, Exception):
            raise reply
        self._reader.check_lag(info)
        return reply

    def _read_entries(self, reply: Any) -> tuple[list[Any], bool]:
        """The messages of an ``XREAD`` reply, in order, and whether more are waiting (a full reply).

        Entries that are not ours are counted and skipped.
        """
        messages = []
        entries = entries_of(reply)
        for entry in entries:
            raw = self._reader.read(entry)
            if raw is None:
                self.stats['invalid'] += 1
            else:
                messages.append(raw)
        return messages, len(entries) >= READ_COUNT
