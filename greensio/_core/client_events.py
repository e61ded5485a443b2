"""What a server's packet means to a client, as small frozen events.

``ClientSession.receive`` returns these; the client shells run the handlers.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceConnected:
    """The server accepted the namespace and gave it this ``sid``."""

    namespace: str
    sid: str
    recovered: bool = False  # the server restored the earlier session (connection state recovery)


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceRefused:
    """CONNECT_ERROR: ``args`` are the ``connect_error`` handler's arguments.

    A dict or string payload is one argument, a list is spread, no payload
    is no argument (python-socketio's convention).
    """

    namespace: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceDisconnected:
    """The server disconnected the namespace (a DISCONNECT packet)."""

    namespace: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EventArrived:
    """An event for a connected namespace; ``ack_id`` set when the server wants an ack."""

    namespace: str
    event: str
    args: list[Any]
    ack_id: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AckArrived:
    """The server acknowledged an emit; ``callback`` is what ``emit`` stored."""

    namespace: str
    ack_id: int
    args: list[Any]
    callback: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class PacketDropped:
    """A well-formed packet with nothing to do (unknown namespace or ack id)."""

    namespace: str
    reason: str


ClientEvent = (
    NamespaceConnected | NamespaceRefused | NamespaceDisconnected | EventArrived | AckArrived | PacketDropped
)
