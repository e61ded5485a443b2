"""ServerConnection: Engine.IO messages in, at most one event out, plus the
protocol rules that need per-connection state.  No sockets, no sleeps."""

from __future__ import annotations

import pytest

from greensio._core.errors import RemoteProtocolError
from greensio._core.events import (
    AckReceived,
    ConnectRequested,
    DisconnectRequested,
    EventReceived,
    PacketIgnored,
)
from greensio._core.session import ServerConnection

PH = '{{"_placeholder":true,"num":{}}}'.format


@pytest.fixture
def conn() -> ServerConnection:
    c = ServerConnection('eio1')
    c.namespaces['/'] = 'sid-root'
    c.namespaces['/admin'] = 'sid-admin'
    return c


def test_connect_requests() -> None:
    c = ServerConnection('eio1')
    assert c.receive('0') == ConnectRequested(namespace='/', auth=None)
    assert c.receive('0/admin,{"token":"123"}') == ConnectRequested(namespace='/admin', auth={'token': '123'})


def test_events_acks_disconnects(conn: ServerConnection) -> None:
    assert conn.receive('2["hello",1]') == EventReceived(
        namespace='/', sid='sid-root', event='hello', args=[1], ack_id=None
    )
    assert conn.receive('2/admin,456["project:delete",123]') == EventReceived(
        namespace='/admin', sid='sid-admin', event='project:delete', args=[123], ack_id=456
    )
    assert conn.receive('3/admin,456[]') == AckReceived(namespace='/admin', sid='sid-admin', ack_id=456, args=[])
    assert conn.receive('31["a",2]') == AckReceived(namespace='/', sid='sid-root', ack_id=1, args=['a', 2])
    assert conn.receive('1/admin,') == DisconnectRequested(namespace='/admin', sid='sid-admin')


@pytest.mark.parametrize('text', ['2/chat,["hello"]', '2/chat,7["hello"]', '3/chat,1[]', '1/chat,'])
def test_packets_for_an_unconnected_namespace_are_ignored(conn: ServerConnection, text: str) -> None:
    event = conn.receive(text)
    assert isinstance(event, PacketIgnored)
    assert event.namespace == '/chat'
    # the connection carries on
    assert isinstance(conn.receive('2["still"]'), EventReceived)


def test_events_before_any_connect_are_ignored() -> None:
    c = ServerConnection('eio1')
    assert isinstance(c.receive('2["hello"]'), PacketIgnored)


def test_binary_event_reassembly(conn: ServerConnection) -> None:
    assert conn.receive(f'52-/admin,9["up",{PH(1)},{{"k":{PH(0)}}}]') is None
    assert conn.receive(b'zero') is None
    event = conn.receive(bytearray(b'one'))
    assert event == EventReceived(
        namespace='/admin', sid='sid-admin', event='up', args=[b'one', {'k': b'zero'}], ack_id=9
    )
    # the connection is back to text packets
    assert isinstance(conn.receive('2["next"]'), EventReceived)


def test_binary_ack_reassembly(conn: ServerConnection) -> None:
    assert conn.receive(f'61-4[{PH(0)}]') is None
    assert conn.receive(b'\x00\x01') == AckReceived(namespace='/', sid='sid-root', ack_id=4, args=[b'\x00\x01'])


def test_text_while_attachments_pending(conn: ServerConnection) -> None:
    assert conn.receive(f'52-["up",{PH(0)},{PH(1)}]') is None
    assert conn.receive(b'a') is None
    with pytest.raises(RemoteProtocolError, match='1 binary attachments were pending'):
        conn.receive('2["sneaky"]')


def test_binary_without_a_binary_packet(conn: ServerConnection) -> None:
    with pytest.raises(RemoteProtocolError, match='without a binary packet'):
        conn.receive(b'orphan')


def test_more_attachments_than_declared(conn: ServerConnection) -> None:
    assert conn.receive(f'51-["up",{PH(0)}]') is None
    assert isinstance(conn.receive(b'a'), EventReceived)
    with pytest.raises(RemoteProtocolError):
        conn.receive(b'b')


def test_binary_packet_for_an_unjoined_namespace(conn: ServerConnection) -> None:
    # attachments are memory held for the client: only joined namespaces may ask for it
    with pytest.raises(RemoteProtocolError, match='not joined'):
        conn.receive(f'51-/chat,["up",{PH(0)}]')
    c = ServerConnection('eio2')
    with pytest.raises(RemoteProtocolError, match='not joined'):
        c.receive(f'51-["up",{PH(0)}]')


def test_connect_error_from_a_client(conn: ServerConnection) -> None:
    with pytest.raises(RemoteProtocolError, match='CONNECT_ERROR'):
        conn.receive('4{"message":"no"}')
    with pytest.raises(RemoteProtocolError, match='CONNECT_ERROR'):
        ServerConnection('eio2').receive('4/x,"no"')


def test_codec_errors_surface_as_remote_protocol_errors(conn: ServerConnection) -> None:
    for text in ['2["connect"]', '2["x",NaN]', '9', '511-["x"]', '2' + '1' * 100 + '["x"]']:
        with pytest.raises(RemoteProtocolError):
            conn.receive(text)


def test_forget_pending(conn: ServerConnection) -> None:
    assert conn.receive(f'51-["up",{PH(0)}]') is None
    conn.forget_pending()
    assert isinstance(conn.receive('2["fresh"]'), EventReceived)
    with pytest.raises(RemoteProtocolError):
        conn.receive(b'late attachment')


def test_events_are_frozen(conn: ServerConnection) -> None:
    event = conn.receive('2["hello"]')
    with pytest.raises(AttributeError):
        event.event = 'other'  # type: ignore[misc,union-attr]


def test_namespaces_per_connection_are_bounded() -> None:
    from greensio._core.session import MAX_NAMESPACES

    conn = ServerConnection('eio')
    for n in range(MAX_NAMESPACES):
        assert conn.receive(f'0/ns{n},') is not None
        conn.namespaces[f'/ns{n}'] = f'sid{n}'
    assert conn.receive('0/ns0,') is not None  # a namespace already joined is not a new one
    with pytest.raises(RemoteProtocolError, match='namespaces'):
        conn.receive('0/one-too-many,')
