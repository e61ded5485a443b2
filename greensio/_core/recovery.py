"""Connection state recovery: what a client that dropped for a moment gets back.

Core ring: no I/O, no clock (``now`` is passed in), no randomness (the
shell makes the private ids).

How it works.  With recovery on, every event a server sends without an ack
is *recorded* in a ``RecoveryLog`` before it goes out, under an offset (a
counter, sent as a decimal string), and the offset travels as the event's
last argument; socket.io-client 4.6+ remembers the last one it saw.  The
CONNECT answer gives each session a private id (``pid``) besides its sid.
When a session ends for a reason that is not deliberate (the transport
closed or failed, the heartbeat timed out, the server shut down), the shell
*saves* it: sid, rooms, session data, and which part of the log it still
needs.  A client that reconnects within ``max_disconnection_duration`` sends
``pid`` and ``offset`` in its CONNECT auth; ``restore`` hands back its
state and the events it missed, filtered by its rooms and exclusions, in
order; or ``None``, and the client gets a normal new session.

What a session needs from the log.  The client's offset says exactly what it
received; but a client that received nothing has no offset, and Node's
socket.io then refuses to recover.  Here the session also remembers, when it
is saved, the first log entry recorded less than ``IN_FLIGHT_MARGIN``
seconds (plus the heartbeat) before the disconnect: anything older was
either delivered while the connection was alive or not addressed to it.
Recovery succeeds when the log still holds every entry from there on.

A session also remembers where the log stood when its client connected (its
*floor*): nothing recorded before that was ever meant for it.

Several workers.  A client may reconnect to a worker that did not save its
session.  That worker (B) asks the cluster, and the holder (A) hands the
session over (``hand_over``), once: it is gone from A after answering.  The
answer holds the sid, rooms and data, the events the client missed (each
with the queue message id it came with, if any), and the message ids of what
the client did receive shortly before it dropped.  B cannot simply trust A's list to be complete: an event published
while the question was on its way may have reached B before A.  So B
adopts the session (``adopt``) and replays (``replay``) A's missed events,
then the events of its own log since shortly before it asked that match the session's rooms
and that A's answer does not name, and registers the client with no switch
to other work in between, so that what comes later reaches it live.  Each
replayed event is recorded again in B's log, under B's offset, addressed to
the client alone: its next offset is B's.  One of A's events may still be on
its way to B when B replays it: B remembers, for a few seconds, which
clients got which queue message in a replay, and when the message arrives
it is logged without them (``already_replayed``).  Offsets carry a per-log
*tag* on a cluster, so that B tells one of A's offsets from its own.

The log is bounded by time (entries older than the recovery window plus the
margin are of no use to any saved session) and by count; saved sessions by
time and by count.  Nothing a client sends can make either grow.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Any

#: Engine.IO disconnect reasons after which a session is kept: the client
#: did not choose to leave, so it will be back.  A client that leaves on
#: purpose leaves each namespace first (a Socket.IO DISCONNECT), so nothing
#: is left to keep; an Engine.IO CLOSE alone ('client disconnect') is what
#: socket.io-client sends when its long-polling transport failed.
RECOVERABLE_REASONS = frozenset({'client disconnect', 'transport close', 'transport error', 'ping timeout',
                                 'server shutting down'})

#: Seconds before a disconnect during which an event may have been written to
#: a connection that was already dead (its TCP buffers, a long-polling
#: response that never arrived), on top of the heartbeat's own delay in
#: noticing; such events are replayed rather than presumed delivered.
IN_FLIGHT_MARGIN = 5.0

#: Events kept for replay, at most: the log's memory must not depend on how
#: fast the application emits.  An event older than the newest this many is
#: forgotten, and a session that still needed it is not recovered.
MAX_LOG_ENTRIES = 100_000

#: Disconnected sessions kept at once, at most; the oldest go first.
MAX_SAVED_SESSIONS = 100_000

#: Longest ``pid`` or ``offset`` string a client may send: ours are far
#: shorter, and a forged one must not cost a large dictionary lookup.
MAX_TOKEN_LENGTH = 64

#: Longest a reconnecting client waits for the cluster to find its session
#: before it gets a new one: the answer is one broker round trip, and a
#: holder that died must not keep the client waiting for a heartbeat timeout.
CLUSTER_RECOVERY_TIMEOUT = 2.0

#: Seconds before its question during which a worker that takes over a
#: session looks for events in its own log that the holder's answer may lack:
#: the same event reaches different workers at different times, and the
#: holder's part of the skew is bounded by how long the question may take.
HANDOVER_MARGIN = IN_FLIGHT_MARGIN + CLUSTER_RECOVERY_TIMEOUT


def _split_offset(offset: str) -> tuple[str, str]:
    """``'<tag><counter>'`` as ``(tag, counter)``; tags end with a dot."""
    tag, dot, counter = offset.rpartition('.')
    return (tag + dot, counter)


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedSession:
    """A session kept after a disconnect that was not deliberate."""

    pid: str
    sid: str
    namespace: str
    rooms: frozenset[Any]  # includes the sid's own room
    data: Any  # the server's per-namespace session dict
    needed_from: int  # the first log entry the session may still need
    expires: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Handover:
    """A session another worker takes over: what it needs to replay, and what the client had."""

    sid: str
    rooms: list[Any]
    data: Any
    #: ``(payload without this log's offset, queue message id or None)``, oldest first.
    missed: list[tuple[list[Any], str | None]]
    #: Queue message ids of events the client received shortly before it dropped.
    seen: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Remote:
    """What a worker adopting another's session replays besides that worker's list."""

    missed: list[tuple[list[Any], str | None]]
    known: frozenset[str]  # message ids the holder's answer names (missed or seen)
    since: float  # own log entries recorded from then on are candidates...
    upto: int  # ...up to this counter (later ones reach the client live)


@dataclass(frozen=True, slots=True, kw_only=True)
class Restored:
    """A recovered session: who it was, and from where in the log it needs events."""

    pid: str
    sid: str
    namespace: str
    rooms: frozenset[Any]
    data: Any
    needed_from: int
    #: Set when the session comes from another worker (see ``adopt``).
    remote: Remote | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    counter: int
    time: float
    namespace: str
    rooms: frozenset[Any] | None  # None: the whole namespace
    skip: frozenset[Any]
    payload: list[Any]  # with its offset as the last argument
    msg_id: str | None  # the queue message it came with, if any


def _matches(entry: _Entry, namespace: str, rooms: frozenset[Any]) -> bool:
    return (entry.namespace == namespace and (entry.rooms is None or not entry.rooms.isdisjoint(rooms))
            and entry.skip.isdisjoint(rooms))


def _targets(room: Any) -> frozenset[Any] | None:
    if room is None:
        return None
    return frozenset(room) if isinstance(room, (list, tuple, set, frozenset)) else frozenset((room,))


class RecoveryLog:
    """The replay log and the disconnected sessions of one server."""

    def __init__(self, max_disconnection_duration: float, heartbeat: float, *,
                 max_entries: int = MAX_LOG_ENTRIES, max_sessions: int = MAX_SAVED_SESSIONS, tag: str = '') -> None:
        if max_disconnection_duration <= 0:
            raise ValueError('max_disconnection_duration must be a positive number of seconds')
        if tag and not (tag.endswith('.') and tag[:-1].isalnum() and tag.isascii() and len(tag) <= 16):
            raise ValueError('tag must be up to 15 ASCII letters and digits followed by a dot')
        self.max_disconnection_duration = max_disconnection_duration
        self.margin = heartbeat + IN_FLIGHT_MARGIN
        self.max_entries = max_entries
        self.max_sessions = max_sessions
        #: Prefix of this log's offsets; one per worker on a cluster, '' alone.
        self.tag = tag
        self._entries: deque[_Entry] = deque()
        self._counter = 0
        self._sessions: dict[str, SavedSession] = {}
        self._floors: dict[str, int] = {}  # pid -> counter when its client connected (live sessions)
        #: queue message id -> (until when, sids it was replayed to before it arrived here)
        self._replayed: dict[str, tuple[float, set[Any]]] = {}

    # -- the log ----------------------------------------------------------------

    @property
    def last_offset(self) -> str:
        """The offset of the newest entry (``'0'`` before the first)."""
        return f'{self.tag}{self._counter}'

    def record(self, namespace: str, room: Any, skip: Any, payload: list[Any], now: float,
               msg_id: str | None = None) -> list[Any]:
        """Log an event going to ``room`` (None: everyone) except ``skip``; the payload to send.

        The returned payload is ``payload`` with the new offset appended: the
        same list for every recipient, so the broadcast is still encoded once.
        ``msg_id`` names the queue message the event came with, if any.
        """
        self._counter += 1
        offset_payload = [*payload, f'{self.tag}{self._counter}']
        if skip is None:
            skipped: frozenset[Any] = frozenset()
        else:
            skipped = _targets(skip) or frozenset()
        self._entries.append(_Entry(self._counter, now, namespace, _targets(room), skipped, offset_payload, msg_id))
        self._trim(now)
        return offset_payload

    def begin(self, pid: str, floor: int | None = None) -> None:
        """A recoverable session's client is connected from now on: nothing logged before is for it.

        ``floor``: the last entry it does not need, when that is earlier (a
        restored session whose replay it may not have received yet).
        """
        self._floors[pid] = self._counter if floor is None else min(floor, self._counter)

    def end(self, pid: str) -> None:
        """A session's connection ended and was not saved."""
        self._floors.pop(pid, None)

    def _trim(self, now: float) -> None:
        entries = self._entries
        horizon = now - self.max_disconnection_duration - self.margin
        while entries and (entries[0].time < horizon or len(entries) > self.max_entries):
            entries.popleft()

    # -- sessions -----------------------------------------------------------------

    def save(self, *, pid: str, sid: str, namespace: str, rooms: Any, data: Any, now: float) -> None:
        """Keep a session whose connection ended without the client choosing to leave."""
        self._expire(now)
        if len(self._sessions) >= self.max_sessions:
            del self._sessions[next(iter(self._sessions))]  # oldest first: dicts keep insertion order
        entries = self._entries
        first = bisect_left(entries, now - self.margin, key=lambda e: e.time)
        needed_from = entries[first].counter if first < len(entries) else self._counter + 1
        floor = self._floors.pop(pid, None)
        if floor is not None:
            needed_from = max(needed_from, floor + 1)
        self._sessions.pop(pid, None)
        self._sessions[pid] = SavedSession(pid=pid, sid=sid, namespace=namespace, rooms=frozenset(rooms),
                                           data=data, needed_from=needed_from,
                                           expires=now + self.max_disconnection_duration)

    def _expire(self, now: float) -> None:
        sessions = self._sessions
        while sessions:
            pid = next(iter(sessions))
            if sessions[pid].expires > now:
                return
            del sessions[pid]

    def __len__(self) -> int:
        """How many sessions are kept."""
        return len(self._sessions)

    def holds(self, pid: Any) -> bool:
        """Whether a session is saved here under ``pid``."""
        return isinstance(pid, str) and pid in self._sessions

    def restore(self, namespace: str, auth: Any, now: float) -> Restored | None:
        """The state of the session named by ``auth['pid']``, if it can be recovered exactly.

        ``None`` (a new session) for anything else: no pid, a pid that is
        unknown, expired, already used or of another namespace, an offset
        that is malformed or from the future, or a log that lost events the
        session needed.  A session is restored once at most.
        """
        self._expire(now)
        if not isinstance(auth, dict):
            return None
        pid, offset = auth.get('pid'), auth.get('offset')
        if not isinstance(pid, str) or len(pid) > MAX_TOKEN_LENGTH:
            return None
        saved = self._sessions.get(pid)
        if saved is None or saved.namespace != namespace:
            return None
        del self._sessions[pid]  # whatever happens next, a pid recovers once
        needed_from = saved.needed_from
        if offset is not None:
            if not (isinstance(offset, str) and len(offset) <= MAX_TOKEN_LENGTH and offset.isascii()):
                return None
            tag, counter = _split_offset(offset)
            if not counter.isdigit() or (tag and not tag[:-1].isalnum()):
                return None
            # Another worker's offset (the client came from there and has
            # received nothing here since): the floor says where it stands.
            received = int(counter) if tag == self.tag else 0
            if received > self._counter:
                return None
            # Everything up to the offset arrived.  Between it and the margin,
            # nothing was for this client: the connection was alive and in
            # order, so had something been, the offset would be later.
            needed_from = max(needed_from, received + 1)
        entries = self._entries
        first = entries[0].counter if entries else self._counter + 1
        if needed_from < first:
            return None  # trimmed: the client would silently miss events
        return Restored(pid=pid, sid=saved.sid, namespace=namespace, rooms=saved.rooms, data=saved.data,
                        needed_from=needed_from)

    def missed(self, restored: Restored) -> list[list[Any]]:
        """The payloads a restored session missed, oldest first, up to now.

        The shell calls this when the client is back in its rooms, with no
        switch to other work in between: what is emitted later reaches it
        live, what was emitted before is here, and nothing is in both.  An
        event logged twice (once as it passed, once replayed to a client that
        came from another worker) is given once.
        """
        namespace, rooms = restored.namespace, restored.rooms
        given: set[str] = set()
        out = []
        for entry in self._from(restored.needed_from):
            if _matches(entry, namespace, rooms):
                if entry.msg_id is not None:
                    if entry.msg_id in given:
                        continue
                    given.add(entry.msg_id)
                out.append(entry.payload)
        return out

    def _from(self, counter: int) -> Any:
        entries = self._entries
        start = max(0, counter - entries[0].counter) if entries else 0  # counters have no gaps
        return islice(entries, start, None)

    # -- several workers ----------------------------------------------------------

    def hand_over(self, namespace: str, pid: Any, offset: Any, now: float) -> Handover | None:
        """The holder's side: give away the session ``pid`` (once), or None.

        ``seen`` lists the message ids of matching events the client received
        lately (twice ``HANDOVER_MARGIN``: the taker's look-back plus the
        skew between the two workers), so that the taker does not replay
        them from its own log.
        """
        restored = self.restore(namespace, {'pid': pid, 'offset': offset}, now)
        if restored is None:
            return None
        rooms, horizon = restored.rooms, now - 2 * HANDOVER_MARGIN
        seen, missed = [], []
        for entry in self._entries:
            if entry.counter >= restored.needed_from:
                if _matches(entry, namespace, rooms):
                    missed.append((entry.payload[:-1], entry.msg_id))
            elif entry.time >= horizon and entry.msg_id is not None and _matches(entry, namespace, rooms):
                seen.append(entry.msg_id)
        return Handover(sid=restored.sid, rooms=sorted(rooms, key=str), data=restored.data, missed=missed,
                        seen=seen)

    def adopt(self, *, pid: str, namespace: str, handover: Handover, asked: float) -> Restored:
        """The taker's side: a session handed over by the worker that held it.

        ``asked`` is when this worker asked for it; call this when the
        client is registered in its rooms (no switch in between until
        ``replay``).
        """
        known = {msg_id for _, msg_id in handover.missed if msg_id is not None}
        known.update(handover.seen)
        remote = Remote(missed=handover.missed, known=frozenset(known), since=asked - HANDOVER_MARGIN,
                        upto=self._counter)
        return Restored(pid=pid, sid=handover.sid, namespace=namespace, rooms=frozenset(handover.rooms),
                        data=handover.data, needed_from=self._counter + 1, remote=remote)

    def replay(self, restored: Restored, now: float) -> list[list[Any]]:
        """The payloads to send a restored session, oldest first (see ``missed``).

        For a session from another worker: the holder's missed events, then
        this log's own since shortly before the question that the holder did
        not name, each logged again for the client alone under this log's
        offset.
        """
        remote = restored.remote
        if remote is None:
            return self.missed(restored)
        namespace, rooms = restored.namespace, restored.rooms
        pending = list(remote.missed)
        first = bisect_left(self._entries, remote.since, key=lambda e: e.time)
        for entry in islice(self._entries, first, None):
            if entry.counter > remote.upto:
                break
            if (entry.msg_id is not None and entry.msg_id not in remote.known
                    and _matches(entry, namespace, rooms)):
                pending.append((entry.payload[:-1], entry.msg_id))
        for _, msg_id in remote.missed:
            if msg_id is not None:
                self._expect(msg_id, restored.sid, now)
        return [self.record(namespace, restored.sid, None, payload, now, msg_id) for payload, msg_id in pending]

    def _expect(self, msg_id: str, sid: Any, now: float) -> None:
        found = self._replayed.get(msg_id)
        if found is not None:
            found[1].add(sid)
            return
        if len(self._replayed) >= self.max_entries:
            del self._replayed[next(iter(self._replayed))]
        self._replayed[msg_id] = (now + HANDOVER_MARGIN, {sid})

    @property
    def expecting(self) -> bool:
        """Whether some replayed queue message may still arrive (``already_replayed`` has work)."""
        return bool(self._replayed)

    def already_replayed(self, msg_id: str, now: float) -> set[Any] | None:
        """The sids that got queue message ``msg_id`` in a replay before it arrived here, if any.

        The shell skips them when it delivers and logs the message.  A
        message arrives once (the queue manager drops repeats), so it is
        forgotten here; so is every expectation older than ``HANDOVER_MARGIN``.
        """
        replayed = self._replayed
        found = replayed.pop(msg_id, None)
        while replayed:
            oldest = next(iter(replayed))
            if replayed[oldest][0] >= now:
                break
            del replayed[oldest]
        return found[1] if found is not None and found[0] >= now else None

    def handler_auth(self, auth: Any) -> Any:
        """The CONNECT auth without the recovery fields, as the connect handler should see it."""
        if isinstance(auth, dict) and ('pid' in auth or 'offset' in auth):
            auth = {k: v for k, v in auth.items() if k not in ('pid', 'offset')}
            return auth or None
        return auth
