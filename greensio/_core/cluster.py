"""Cluster bookkeeping: which workers are alive, and what a request still waits for.

Core ring: no I/O, no clock (every method takes ``now``), no user code.
``Membership`` is fed the heartbeats other workers publish on the channel;
a worker that misses ``HEARTBEAT_MISSES`` of its announced intervals is
dead.  ``Gathering`` is one request's progress: the workers it expects an
answer from (the live ones when it was sent, plus any that answer anyway),
what they answered, and whether anything is still owed.  The shell waits on
a gathering until ``finished`` or its deadline, whichever comes first, and
tells it which workers are still alive on each wake-up.

Two kinds of gathering:

- ``ACKS``: a broadcast that collects one acknowledgement per client.  Each
  worker reports how many clients it sent the event to (``count``), then
  each client's answer arrives on its own.  Finished once every expected
  worker reported and every reported client answered.  A worker's answers
  beyond its count are forged or repeated: dropped.
- ``REPLIES``: one answer per worker (``fetch_sockets``, server-side emits).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: A worker is dead after this many heartbeat intervals without one.
HEARTBEAT_MISSES = 3
#: Workers remembered at once: a channel flooded with forged host ids must
#: not grow a worker's memory, nor make every request wait for phantoms.
MAX_WORKERS = 1024
#: Answers one gathering keeps (a forged flood stops here).
MAX_ANSWERS = 1_000_000
#: The sender name of answers that came without one (python-socketio workers).
UNKNOWN = '?'

ACKS, REPLIES = 'acks', 'replies'


class Membership:
    """The other workers on the channel and when each was last heard."""

    def __init__(self, misses: int = HEARTBEAT_MISSES, max_workers: int = MAX_WORKERS) -> None:
        self.misses = misses
        self.max_workers = max_workers
        self._seen: dict[str, tuple[float, float]] = {}  # host id -> (deadline, interval)

    def heard(self, host_id: str, interval: float, now: float) -> bool:
        """Record a heartbeat; True if the worker was not known (it just joined)."""
        new = host_id not in self._seen
        if new and len(self._seen) >= self.max_workers:
            self.prune(now)
            if len(self._seen) >= self.max_workers:
                return False
        self._seen[host_id] = (now + interval * self.misses, interval)
        return new

    def left(self, host_id: str) -> None:
        self._seen.pop(host_id, None)

    def prune(self, now: float) -> None:
        # a copy first: a reader on another OS thread (python -m greensio waits on
        # its main thread while its listener thread records heartbeats)
        for host_id in [h for h, (deadline, _) in list(self._seen.items()) if deadline < now]:
            del self._seen[host_id]

    def live(self, now: float) -> list[str]:
        """The workers heard from within their heartbeat timeout, sorted."""
        self.prune(now)
        return sorted(self._seen)

    def __contains__(self, host_id: object) -> bool:
        return host_id in self._seen


class Gathering:
    """One request's answers; see the module docs for the two kinds."""

    def __init__(self, request: str, kind: str, expected: Iterable[str], deadline: float) -> None:
        if kind not in (ACKS, REPLIES):
            raise ValueError(f'unknown gathering kind {kind!r}')
        self.request = request
        self.kind = kind
        self.deadline = deadline
        self.expected = set(expected)
        self.answers: list[Any] = []
        self.counts: dict[str, int] = {}  # ACKS: clients each worker sent to
        self.answered: dict[str, int] = {}  # ACKS: answers received per worker
        self.replied: set[str] = set()  # REPLIES: workers that answered
        self.lost: set[str] = set()  # workers that died before they were done
        #: ACKS: a worker said the target named one of its clients (a sid).
        self.client = False
        #: Not finished before one answer arrived when no worker counted a
        #: recipient: a target that may be a client of a worker that sends no
        #: counts (python-socketio), as ``call()`` to a sid it does not know.
        self.want_one = False
        #: Called whenever something arrives, so the waiter wakes up.
        self.on_change: Any = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- what arrives -----------------------------------------------------------

    def count(self, sender: str, count: int, client: bool = False) -> bool:
        """A worker's count of recipients; a repeated count is ignored (False)."""
        if self.kind != ACKS or sender in self.counts:
            return False
        self.counts[sender] = count
        self.answered.setdefault(sender, 0)
        self.client = self.client or client
        self._changed()
        return True

    def answer(self, sender: str, value: Any) -> bool:
        """One client's acknowledgement (ACKS); False when it is beyond the sender's count."""
        if self.kind != ACKS or len(self.answers) >= MAX_ANSWERS:
            return False
        done = self.answered.get(sender, 0)
        if sender in self.counts and done >= self.counts[sender]:
            return False
        self.answered[sender] = done + 1
        self.answers.append(value)
        self._changed()
        return True

    def reply(self, sender: str, values: Iterable[Any]) -> bool:
        """One worker's answer (REPLIES); a second one from the same worker is ignored."""
        if self.kind != REPLIES or sender in self.replied:
            return False
        self.replied.add(sender)
        for value in values:
            if len(self.answers) >= MAX_ANSWERS:
                break
            self.answers.append(value)
        self._changed()
        return True

    def alive(self, live: Iterable[str]) -> None:
        """Stop waiting for the workers not in ``live`` (they died or left)."""
        live = set(live)
        for worker in list(self.expected) + list(self.counts):
            if worker not in live and worker not in self.lost and not self._done(worker):
                self.lost.add(worker)

    # -- where it stands --------------------------------------------------------

    def _done(self, worker: str) -> bool:
        if self.kind == REPLIES:
            return worker in self.replied
        return worker in self.counts and self.answered[worker] >= self.counts[worker]

    @property
    def finished(self) -> bool:
        """Nothing more is owed by a worker that is still alive."""
        waiting = (self.expected | set(self.counts)) - self.lost
        if self.want_one and not self.answers and not any(self.counts.values()):
            return False
        return all(self._done(worker) for worker in waiting)

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    @property
    def missing(self) -> int:
        """ACKS: clients sent the event that did not answer, plus one per live worker that never
        said how many it sent to; REPLIES: live workers that did not answer."""
        silent = len(self.silent - self.lost)
        if self.kind == REPLIES:
            return silent
        return silent + sum(max(0, count - self.answered[worker]) for worker, count in self.counts.items())

    @property
    def silent(self) -> set[str]:
        """Expected workers that never reported (alive or lost)."""
        return self.expected - (self.replied if self.kind == REPLIES else set(self.counts))
