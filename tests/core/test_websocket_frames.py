"""The RFC 6455 frame parser and encoder behind greensio's websocket path.
No sockets, no sleeps: bytes in, messages out."""

from __future__ import annotations

import os
import struct

import pytest
from rawclient import build_frame as frame

from greensio._core import websocket as ws
from greensio._core.websocket import FrameParser, Message, WebSocketError

LIMIT = 1000
# frames come from the tests' own client-side builder, not from greensio's encoder


def parse(*chunks: bytes, limit: int = LIMIT) -> list[Message]:
    p = FrameParser(limit)
    out = []
    for chunk in chunks:
        p.feed(chunk)
        while (msg := p.next_message()) is not None:
            out.append(msg)
    return out


def test_text_and_binary() -> None:
    got = parse(frame(ws.OP_TEXT, 'héllo'.encode()) + frame(ws.OP_BINARY, b'\x00\xff'))
    assert got == [Message(opcode=ws.OP_TEXT, data='héllo'), Message(opcode=ws.OP_BINARY, data=b'\x00\xff')]


@pytest.mark.parametrize('size', [0, 125, 126, 65535, 65536, 70000])
def test_length_encodings(size: int) -> None:
    payload = os.urandom(size)
    assert parse(frame(ws.OP_BINARY, payload), limit=size) == [Message(opcode=ws.OP_BINARY, data=payload)]


def test_byte_at_a_time() -> None:
    data = frame(ws.OP_TEXT, b'x' * 300) + frame(ws.OP_PING, b'p')
    p = FrameParser(LIMIT)
    out = []
    for i in range(len(data)):
        p.feed(data[i : i + 1])
        msg = p.next_message()
        if msg is not None:
            out.append(msg)
    assert out == [Message(opcode=ws.OP_TEXT, data='x' * 300), Message(opcode=ws.OP_PING, data=b'p')]


def test_fragmented_message_with_control_frames_in_between() -> None:
    data = (
        frame(ws.OP_TEXT, b'frag', fin=False)
        + frame(ws.OP_PING, b'1')
        + frame(ws.OP_CONTINUATION, b'men', fin=False)
        + frame(ws.OP_PONG, b'')
        + frame(ws.OP_CONTINUATION, b'ted')
    )
    assert parse(data) == [
        Message(opcode=ws.OP_PING, data=b'1'),
        Message(opcode=ws.OP_PONG, data=b''),
        Message(opcode=ws.OP_TEXT, data='fragmented'),
    ]


def test_utf8_split_across_fragments_is_fine() -> None:
    raw = 'é'.encode()
    data = frame(ws.OP_TEXT, raw[:1], fin=False) + frame(ws.OP_CONTINUATION, raw[1:])
    assert parse(data) == [Message(opcode=ws.OP_TEXT, data='é')]


@pytest.mark.parametrize(
    'data',
    [
        frame(ws.OP_CONTINUATION, b'x'),  # nothing to continue
        frame(ws.OP_TEXT, b'a', fin=False) + frame(ws.OP_TEXT, b'b'),  # new message mid-fragment
        frame(ws.OP_TEXT, b'a', fin=False) + frame(ws.OP_BINARY, b'b'),
    ],
)
def test_fragmentation_errors(data: bytes) -> None:
    with pytest.raises(WebSocketError) as info:
        parse(data)
    assert info.value.code == ws.CLOSE_PROTOCOL_ERROR


def test_too_many_fragments() -> None:
    parts = [frame(ws.OP_BINARY, b'', fin=False)] + [frame(ws.OP_CONTINUATION, b'', fin=False)] * ws.MAX_FRAGMENTS
    with pytest.raises(WebSocketError) as info:
        parse(b''.join(parts))
    assert info.value.code == ws.CLOSE_TOO_BIG


@pytest.mark.parametrize(
    'data',
    [
        frame(ws.OP_PING, b'x' * 126),  # control payload over 125 bytes
        frame(ws.OP_CLOSE, b'', fin=False),  # fragmented control frame
        frame(ws.OP_PONG, b'', fin=False),
    ],
)
def test_invalid_control_frames(data: bytes) -> None:
    with pytest.raises(WebSocketError) as info:
        parse(data)
    assert info.value.code == ws.CLOSE_PROTOCOL_ERROR


@pytest.mark.parametrize('opcode', [3, 4, 5, 6, 7, 0xB, 0xC, 0xF])
def test_unknown_opcodes(opcode: int) -> None:
    with pytest.raises(WebSocketError, match='opcode'):
        parse(frame(opcode, b''))


def test_client_frames_must_be_masked() -> None:
    with pytest.raises(WebSocketError, match='mask'):
        parse(frame(ws.OP_TEXT, b'hi', mask=False))


def test_server_frames_must_not_be_masked() -> None:
    p = FrameParser(LIMIT, expect_masked=False)
    p.feed(ws.encode_frame(ws.OP_TEXT, b'hi'))
    assert p.next_message() == Message(opcode=ws.OP_TEXT, data='hi')
    p.feed(frame(ws.OP_TEXT, b'hi', mask=True))
    with pytest.raises(WebSocketError, match='mask'):
        p.next_message()


@pytest.mark.parametrize('rsv', [1, 2, 4, 7])
def test_reserved_bits(rsv: int) -> None:
    with pytest.raises(WebSocketError, match='reserved'):
        parse(frame(ws.OP_TEXT, b'x', rsv=rsv))


@pytest.mark.parametrize('bad', [b'\xff', b'\xc3', b'\xed\xa0\x80', b'ok\xc0\xaf'])
def test_invalid_utf8_closes_with_1007(bad: bytes) -> None:
    with pytest.raises(WebSocketError) as info:
        parse(frame(ws.OP_TEXT, bad))
    assert info.value.code == ws.CLOSE_INVALID_DATA
    # binary messages carry no text and are not checked
    assert parse(frame(ws.OP_BINARY, bad)) == [Message(opcode=ws.OP_BINARY, data=bad)]


def test_size_limit_is_inclusive() -> None:
    assert parse(frame(ws.OP_BINARY, b'x' * LIMIT))[0].data == b'x' * LIMIT
    with pytest.raises(WebSocketError) as info:
        parse(frame(ws.OP_BINARY, b'x' * (LIMIT + 1)))
    assert info.value.code == ws.CLOSE_TOO_BIG


@pytest.mark.parametrize('declared', [LIMIT + 1, 1 << 30, (1 << 63) - 1])
@pytest.mark.parametrize('mask', [True, False])
def test_size_checked_on_the_header_before_the_payload(declared: int, mask: bool) -> None:
    p = FrameParser(LIMIT)
    header = frame(ws.OP_BINARY, b'', declared_length=declared, mask=False)  # header only, mask bit added below
    if mask:
        header = header[:1] + bytes((header[1] | 0x80,)) + header[2:] + b'\x01\x02\x03\x04'
    p.feed(header)  # not one payload byte has arrived
    with pytest.raises(WebSocketError) as info:
        p.next_message()
    assert info.value.code == ws.CLOSE_TOO_BIG


def test_fragments_count_towards_the_size_limit() -> None:
    half = LIMIT // 2
    ok = frame(ws.OP_BINARY, b'a' * half, fin=False) + frame(ws.OP_CONTINUATION, b'b' * (LIMIT - half))
    assert len(parse(ok)[0].data) == LIMIT
    p = FrameParser(LIMIT)
    p.feed(frame(ws.OP_BINARY, b'a' * half, fin=False) + frame(ws.OP_CONTINUATION, b'', fin=False))
    assert p.next_message() is None
    # the next fragment header alone pushes the total over the limit
    p.feed(frame(ws.OP_CONTINUATION, b'', declared_length=LIMIT - half + 1)[:4])
    with pytest.raises(WebSocketError) as info:
        p.next_message()
    assert info.value.code == ws.CLOSE_TOO_BIG


def test_size_is_per_message_not_per_connection() -> None:
    many = b''.join(frame(ws.OP_BINARY, b'x' * LIMIT) for _ in range(5))
    assert len(parse(many)) == 5
    fragmented = b''.join(
        frame(ws.OP_TEXT, b'a' * (LIMIT - 1), fin=False) + frame(ws.OP_CONTINUATION, b'b') for _ in range(3)
    )
    assert [m.data for m in parse(fragmented)] == ['a' * (LIMIT - 1) + 'b'] * 3


def test_bytes_wanted_reports_the_rest_of_the_frame() -> None:
    p = FrameParser(100_000)
    data = frame(ws.OP_BINARY, b'z' * 50_000)
    p.feed(data[:100])
    assert p.next_message() is None
    assert p.bytes_wanted() == len(data) - 100
    p.feed(data[100:])
    assert p.next_message() == Message(opcode=ws.OP_BINARY, data=b'z' * 50_000)


def test_close_frames() -> None:
    msg = parse(frame(ws.OP_CLOSE, struct.pack('!H', 1001) + b'bye'))[0]
    assert msg.opcode == ws.OP_CLOSE and ws.parse_close(msg.data) == 1001
    assert ws.parse_close(b'') == ws.CLOSE_NORMAL
    p = FrameParser(LIMIT, expect_masked=False)
    p.feed(ws.encode_close(ws.CLOSE_TOO_BIG, 'x' * 500))
    close = p.next_message()
    assert ws.parse_close(close.data) == ws.CLOSE_TOO_BIG and len(close.data) <= ws.MAX_CONTROL_PAYLOAD


@pytest.mark.parametrize('size', [0, 1, 125, 126, 65535, 65536])
@pytest.mark.parametrize('mask', [False, True])
def test_encode_frame_round_trip(size: int, mask: bool) -> None:
    payload = os.urandom(size)
    p = FrameParser(size, expect_masked=mask)
    p.feed(ws.encode_frame(ws.OP_BINARY, payload, mask=mask))
    assert p.next_message() == Message(opcode=ws.OP_BINARY, data=payload)


def test_encoder_output_matches_rfc_example() -> None:
    # RFC 6455 5.7: a single-frame unmasked text message "Hello"
    assert ws.encode_frame(ws.OP_TEXT, b'Hello') == bytes.fromhex('810548656c6c6f')
    # ... and the masked one, decoded by the parser
    p = FrameParser(10)
    p.feed(bytes.fromhex('818537fa213d7f9f4d5158'))
    assert p.next_message() == Message(opcode=ws.OP_TEXT, data='Hello')


def test_unmasking_runs_at_c_speed() -> None:
    # websockets is a hard dependency for its C unmasking; the pure Python
    # fallback is ~100x slower, and a missing install must not hide behind it
    import websockets.speedups

    from greensio._core import websocket

    assert websocket._apply_mask is websockets.speedups.apply_mask
