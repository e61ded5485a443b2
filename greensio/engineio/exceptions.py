"""python-engineio's exception names, for ``greensio.engineio`` applications.

Shell ring.  ``import greensio.engineio as engineio`` code catches these as
it catches python-engineio's; the sans-IO core raises its own
(``RemoteProtocolError`` for a peer's fault, ``LocalProtocolError`` for a
misuse) and the shells translate them at the boundary.
"""

from __future__ import annotations


class EngineIOError(Exception):
    pass


class ContentTooLongError(EngineIOError):
    pass


class UnknownPacketError(EngineIOError):
    pass


class QueueEmpty(EngineIOError):
    pass


class SocketIsClosedError(EngineIOError):
    pass


class ConnectionError(EngineIOError):
    pass
