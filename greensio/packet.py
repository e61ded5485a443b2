"""``socketio.packet`` compatibility: the packet codec and its constants."""

from ._core.packet import (  # noqa: F401
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    MAX_ATTACHMENTS,
    Packet,
    packet_names,
)
