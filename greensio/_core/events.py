"""What a peer's packet means, as small frozen events (no mutable dicts cross the layers)."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectRequested:
    namespace: str
    auth: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class EventReceived:
    namespace: str
    sid: str
    event: str
    args: list[Any]
    ack_id: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    namespace: str
    sid: str
    ack_id: int
    args: list[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectRequested:
    namespace: str
    sid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PacketIgnored:
    namespace: str
    reason: str


ServerEvent = ConnectRequested | EventReceived | AckReceived | DisconnectRequested | PacketIgnored
