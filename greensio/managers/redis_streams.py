"""The Redis Streams mode's bookkeeping: where each reader is, what each publisher may replay.

Shell ring, no I/O: what the green and asyncio Redis managers share when
``streams=True``.  They run the commands; this module decides what the
replies mean.  How the mode works:

- Every message is one entry, ``XADD greensio:<channel> MAXLEN ~ <n> * data
  <json>``; the entry id Redis returns is the publish confirm.
- Each worker reads with ``XREAD`` from its own cursor, kept in memory
  (:class:`StreamReader`): a listener that reconnects carries on from the
  entry it read last, so a dropped connection loses nothing that is still
  in the stream.  The stream is trimmed to about ``stream_maxlen`` entries;
  a reader that fell further behind than that counts what it missed and
  logs it at ERROR.
- redis-py reopens a lost connection silently on the next command; the
  managers refuse that, so that every new connection goes through the
  checks below before anything is read or added.
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
#: listpack node, 100 entries by default, more).  A listener that fell
#: behind, or lost its connection, catches up from here: 100,000 entries
#: absorb ten publishers replaying a full outbox (10,000) at once, or a 10 s
#: reconnect at 10,000 messages a second.  Redis holds that many entries
#: for good, ~40 MiB of typical 400-byte messages: lower it for big ones.
STREAM_MAXLEN = 100_000
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
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)


def entries_of(reply: Any) -> list[tuple[Any, dict[Any, Any]]]:
    """The entries of an ``XREAD`` reply on one stream (RESP2 list or RESP3 map), or ``[]``."""
    if not reply:
        return []
    if isinstance(reply, dict):
        (value,) = reply.values()
        reply = [(None, value[0] if value else [])]
    entries: list[tuple[Any, dict[Any, Any]]] = reply[0][1]
    return entries


def field_of(fields: dict[Any, Any]) -> Any:
    """The message an entry carries, or None when its fields are not exactly ours."""
    if len(fields) != 1:
        return None
    value = fields.get(FIELD.encode(), fields.get(FIELD))
    return value if isinstance(value, (bytes, str)) else None


def _found(found: Any) -> dict[Any, Any] | None:
    """The fields of the one entry an ``XRANGE <id> <id>`` reply holds, or None."""
    return found[0][1] if isinstance(found, list) and len(found) == 1 else None


def _info(info: Any) -> dict[str, Any] | None:
    """An ``XINFO STREAM`` reply, or None for its error (no such stream)."""
    return info if isinstance(info, dict) else None


def _removed(info: dict[str, Any] | None) -> int:
    """Entries removed from the stream so far, by an ``XINFO STREAM`` reply (0 for no stream)."""
    if info is None:
        return 0
    return int(info.get('entries-added', 0)) - int(info.get('length', 0))


class StreamReader:
    """One worker's place in the stream: the cursor, the entry at it, and how many came before.

    Redis numbers nothing but ids, yet ``XINFO STREAM`` says how many
    entries were ever added and how many are left: the difference is how
    many trimming removed, oldest first.  A reader that counts the entries
    up to its cursor (its ordinal) knows it lost some when more than that
    were removed.  (``XDEL`` of entries in the middle would count as lost.)
    """

    def __init__(self, key: str, logger: logging.Logger, name: str) -> None:
        self.key = key
        self.logger = logger
        self.name = name
        #: The id after which the next ``XREAD`` reads; None before the first connection.
        self.cursor: Any = None
        #: The fields of the entry at the cursor (None when the cursor is ``0-0``).
        self._fields: dict[Any, Any] | None = None
        #: Entries added to the stream up to the cursor, counted from the stream's start.
        self._ordinal = 0

    @property
    def position(self) -> Any:
        """The id to look up when connecting again (the entry read last), or None."""
        return self.cursor if self._fields is not None else None

    def connected(self, found: Any, info: Any) -> None:
        """A (re)connection: ``found`` is ``XRANGE`` at :attr:`position` (if any), ``info`` ``XINFO STREAM``."""
        info = _info(info)
        if self.cursor is None:  # the first connection: read what comes after the last entry
            last = info.get('last-entry') if info else None
            self.cursor, self._fields = last if last else (b'0-0', None)
            self._ordinal = int(info.get('entries-added', 0)) if info else 0
            return
        if self._fields is not None:
            if _found(found) == self._fields:
                return  # the same stream, and nothing after the cursor was trimmed since
            if _removed(info) < self._ordinal:  # trimming would have removed the entry read last too
                self.logger.warning('%s: the stream %s is not the one this worker was reading (Redis lost its '
                                    'data): reading the new one from its first entry', self.name, self.key)
                self._ordinal = 0
            # else the same stream, trimmed past the entry read last: all that is left comes after it
        self.cursor, self._fields = b'0-0', None
        self.check_lag(info)

    def check_lag(self, info: Any) -> None:
        """Say so when ``XINFO STREAM`` shows that trimming removed entries this worker never read."""
        removed = _removed(_info(info))
        if removed > self._ordinal:
            self.logger.error('%s: %d message(s) were trimmed from the stream %s before this worker read them: '
                              'lost for its clients (it fell more than stream_maxlen entries behind)',
                              self.name, removed - self._ordinal, self.key)
            self._ordinal = removed

    def read(self, entry: tuple[Any, dict[Any, Any]]) -> Any:
        """Advance past ``entry``; return its message, or None (logged) for an entry that is not ours."""
        self.cursor, self._fields = entry
        self._ordinal += 1
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
    def position(self) -> Any:
        """The id of our last entry, to look up on a new connection after a failure; else None."""
        return self.last[0] if self._reconnected and self.last is not None else None

    def connection_lost(self) -> None:
        self._reconnected = True

    def check(self, found: Any) -> list[str]:
        """What to publish again before the outbox, given ``XRANGE`` at :attr:`position`.

        Our last entry is gone when Redis lost its data, or when later
        entries trimmed it: then it was read long ago, and publishing the
        recent ones again only costs the receivers a few duplicates to drop.
        """
        self._reconnected = False
        assert self.last is not None
        fields = _found(found)
        value = None if fields is None else field_of(fields)
        if value is not None and _as_text(value) == self.last[1]:
            return []
        now = self._clock()
        while self._tail and now - self._tail[0][0] > REPLAY_SECONDS:
            self._tail.popleft()
        replay = [text for _, text in self._tail]
        self.logger.warning('%s: the stream %s no longer holds this publisher\'s last entry (Redis lost its '
                            'data, or later entries trimmed it); publishing the %d message(s) confirmed in the last %.0f s again',
                            self.name, self.key, len(replay), REPLAY_SECONDS)
        return replay

    def confirmed(self, texts: list[str], last_id: Any) -> None:
        """Redis added ``texts`` (the last one as ``last_id``)."""
        now = self._clock()
        self._tail.extend((now, text) for text in texts)
        self.last = (last_id, texts[-1])

    def __len__(self) -> int:
        return len(self._tail)
