"""The Redis Streams mode's bookkeeping: cursors, the replay tail, dedup by sender.

Shell ring, no I/O: what the green and asyncio Redis managers share when
``streams=True``.  They run the commands; this module decides what the
replies mean.  How the mode works:

- Every message is one entry, ``XADD greensio:<channel> MAXLEN ~ <n> * data
  <json>``; the entry id Redis returns is the publish confirm.
- Each worker reads with ``XREAD`` from its own cursor, kept in memory
  (:class:`StreamReader`): a listener that reconnects carries on from the
  entry it read last, so a dropped connection loses nothing that is still
  in the stream.
- Redis restarted without its data (``SHUTDOWN NOSAVE``, no persistence,
  a failover to an empty replica) starts the stream anew, with ids that
  may be below, or above, the cursor.  A reader knows its stream by the
  entry at its cursor: if that entry is gone, or different, the stream is
  not the one it was reading, and it reads the new one from its first entry.
- What a publisher confirmed shortly before Redis lost its data may not
  have been read by every worker yet: each publisher keeps the messages it
  confirmed in the last ``REPLAY_SECONDS`` (:class:`ReplayTail`), and when
  its own last entry has vanished from the stream it publishes them again,
  before its outbox.
- Receivers drop repeats by message id, in a window large enough for
  such a replay (``DEDUP_WINDOW``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

#: The stream field that carries a message's JSON text.
FIELD = 'data'
#: Entries a stream keeps (``XADD MAXLEN ~``, so Redis may keep up to one
#: listpack node, 100 entries by default, more).  A listener that lost its
#: connection catches up from here: 10,000 typical 1 KiB events (~10 MiB of
#: Redis memory) cover a reconnect of 5 s at 2,000 messages a second.
STREAM_MAXLEN = 10_000
#: Entries one ``XREAD`` returns at most: one round trip per burst, as a
#: publish batch is, without holding a huge reply in memory.
READ_COUNT = 256
#: A connected listener reads an entry within milliseconds; one that is
#: reconnecting is back within the longest retry delay (5 s) plus a connect
#: timeout (3 s).  What was confirmed longer ago than this has been read by
#: every live worker, so only younger messages are published again when
#: Redis lost its data.
REPLAY_SECONDS = 10.0
#: Confirmed messages a publisher keeps for that replay at most (as many as
#: its outbox holds, ~10 MiB of typical events).
REPLAY_TAIL = 10_000
#: Message ids a receiver remembers, to drop what a publisher sends again:
#: a replay after Redis lost its data repeats up to ``REPLAY_SECONDS`` of
#: every publisher's messages, and all a receiver got in that time must
#: still be remembered then.  100,000 covers 10,000 messages a second
#: (~15 MiB of ids; the pub/sub mode keeps 10,000).
DEDUP_WINDOW = 100_000


def stream_key(channel: str) -> str:
    """The stream every worker on ``channel`` shares."""
    return f'greensio:{channel}'


def _as_text(value: Any) -> str:
    return value.decode('ascii') if isinstance(value, bytes) else str(value)


def entry_id(value: Any) -> tuple[int, int]:
    """``b'1700000000000-3'`` as ``(1700000000000, 3)``, for comparing ids."""
    ms, _, seq = _as_text(value).partition('-')
    return int(ms), int(seq or 0)


def entries_of(reply: Any) -> list[tuple[Any, dict[Any, Any]]]:
    """The entries of an ``XREAD`` reply on one stream (RESP2 list or RESP3 map), or ``[]``."""
    if not reply:
        return []
    if isinstance(reply, dict):
        (value,) = reply.values()
        return value[0] if value else []
    return reply[0][1]


def field_of(fields: dict[Any, Any]) -> Any:
    """The message an entry carries, or None when its fields are not exactly ours."""
    if len(fields) != 1:
        return None
    value = fields.get(FIELD.encode(), fields.get(FIELD))
    return value if isinstance(value, (bytes, str)) else None


def _max_deleted(info: Any) -> tuple[int, int] | None:
    """``max-deleted-entry-id`` of an ``XINFO STREAM`` reply (Redis 7+); None if unknown or no stream."""
    if not isinstance(info, dict):
        return None
    value = info.get('max-deleted-entry-id', info.get(b'max-deleted-entry-id'))
    return None if value is None else entry_id(value)


def _found(found: Any) -> dict[Any, Any] | None:
    """The fields of the one entry an ``XRANGE <id> <id>`` reply holds, or None."""
    return found[0][1] if isinstance(found, list) and len(found) == 1 else None


class StreamReader:
    """One worker's place in the stream: the cursor and the entry at it."""

    def __init__(self, key: str, logger: logging.Logger, name: str) -> None:
        self.key = key
        self.logger = logger
        self.name = name
        #: The id after which the next ``XREAD`` reads; None before the first connection.
        self.cursor: Any = None
        #: The fields of the entry at the cursor (None when the cursor is ``0-0``).
        self._fields: dict[Any, Any] | None = None

    @property
    def needs_check(self) -> bool:
        """Reconnecting at an entry read before: ask Redis whether it is still there."""
        return self._fields is not None

    def begin(self, last: Any) -> None:
        """The first connection: read what comes after the stream's last entry (``XREVRANGE + - COUNT 1``)."""
        if last:
            self.cursor, self._fields = last[0]
        else:
            self.cursor, self._fields = b'0-0', None

    def resume(self, found: Any, info: Any) -> None:
        """A reconnection: ``found`` is ``XRANGE <cursor> <cursor>``, ``info`` ``XINFO STREAM`` (or its error)."""
        if self._fields is None or _found(found) == self._fields:
            return
        deleted = _max_deleted(info)
        if deleted is not None and deleted >= entry_id(self.cursor):
            self.logger.error('%s: the stream %s was trimmed past this worker\'s place while it was away: '
                              'messages were lost for its clients (raise stream_maxlen)', self.name, self.key)
        else:
            self.logger.warning('%s: the stream %s is not the one this worker was reading (Redis lost its '
                                'data): reading the new one from its first entry', self.name, self.key)
        self.cursor, self._fields = b'0-0', None

    def read(self, entry: tuple[Any, dict[Any, Any]]) -> Any:
        """Advance past ``entry``; return its message, or None (logged) for an entry that is not ours."""
        self.cursor, self._fields = entry
        value = field_of(entry[1])
        if value is None:
            self.logger.warning('%s: dropped an invalid message from the stream: entry %s has fields %r',
                                self.name, _as_text(entry[0]), sorted(map(repr, entry[1]))[:8])
        return value


class ReplayTail:
    """A publisher's recently confirmed messages, and whether Redis still has them."""

    def __init__(self, key: str, logger: logging.Logger, name: str, clock: Any = time.monotonic) -> None:
        self.key = key
        self.logger = logger
        self.name = name
        self._clock = clock
        self._tail: deque[tuple[float, str]] = deque(maxlen=REPLAY_TAIL)
        #: The id and text of the last entry this publisher added (None before the first).
        self.last: tuple[Any, str] | None = None
        self._reconnected = False

    @property
    def needs_check(self) -> bool:
        """A new connection after a failure, with an entry of ours to look for."""
        return self._reconnected and self.last is not None

    def connection_lost(self) -> None:
        self._reconnected = True

    def check(self, found: Any, info: Any) -> list[str]:
        """What to publish again before the outbox, given ``XRANGE`` at our last id and ``XINFO STREAM``."""
        self._reconnected = False
        assert self.last is not None
        last_id, text = self.last
        fields = _found(found)
        value = None if fields is None else field_of(fields)
        if value is not None and (value if isinstance(value, str) else value.decode('utf-8', 'replace')) == text:
            return []
        deleted = _max_deleted(info)
        if deleted is not None and deleted >= entry_id(last_id):
            return []  # trimmed by later entries: the same stream, read long ago
        now = self._clock()
        while self._tail and now - self._tail[0][0] > REPLAY_SECONDS:
            self._tail.popleft()
        replay = [text for _, text in self._tail]
        self.logger.warning('%s: the stream %s lost its entries (Redis lost its data); publishing the %d '
                            'message(s) confirmed in the last %.0f s again', self.name, self.key, len(replay),
                            REPLAY_SECONDS)
        return replay

    def confirmed(self, texts: list[str], last_id: Any) -> None:
        """Redis added ``texts`` (the last one as ``last_id``)."""
        now = self._clock()
        self._tail.extend((now, text) for text in texts)
        self.last = (last_id, texts[-1])

    def __len__(self) -> int:
        return len(self._tail)
