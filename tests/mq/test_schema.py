"""The cross-worker wire schema (``greensio._core.pubsub``): no broker, no sockets."""

from __future__ import annotations

import json
import pickle

import pytest

from greensio._core import pubsub, safejson

HOST = 'a' * 32


def roundtrip(message: dict) -> pubsub.Message:
    return pubsub.decode(pubsub.encode(message, safejson).encode(), safejson)


# -- what greensio sends --------------------------------------------------------------------

def test_emit_keeps_python_socketio_shape_and_adds_version_and_id() -> None:
    factory = pubsub.MessageFactory(HOST)
    message = factory.emit(event='ev', args=[1, 'two'], namespace='/chat', room='r', skip_sid=['s1'])
    assert message == {
        'method': 'emit', 'event': 'ev', 'data': [1, 'two'], 'binary': False, 'namespace': '/chat',
        'room': 'r', 'skip_sid': ['s1'], 'callback': None, 'host_id': HOST,
        'version': pubsub.MESSAGE_VERSION, 'msg_id': f'{HOST}.1',
    }
    assert factory.emit(event='ev', args=[], namespace='/')['msg_id'] == f'{HOST}.2'


def test_binary_arguments_travel_as_base64_like_python_socketio() -> None:
    message = pubsub.MessageFactory(HOST).emit(event='ev', args=[{'a': b'\x00\x01'}, b'\xff'], namespace='/')
    assert message['binary'] is True
    assert message['data'] == [[{'a': {'_placeholder': True, 'num': 0}}, {'_placeholder': True, 'num': 1}],
                               'AAE=', '/w==']
    decoded = roundtrip(message)
    assert decoded.args == [{'a': b'\x00\x01'}, b'\xff']


def test_emit_roundtrip() -> None:
    message = pubsub.MessageFactory(HOST).emit(event='ev', args=[None], namespace='/', room=['r1', 2],
                                               skip_sid='s', callback=('sid1', '/', 7))
    decoded = roundtrip(message)
    assert decoded == pubsub.EmitMessage(host_id=HOST, msg_id=f'{HOST}.1', namespace='/', event='ev', args=[None],
                                         room=['r1', 2], skip_sid='s', callback=('sid1', '/', 7))


def test_callback_is_addressed_to_the_origin_but_numbered_by_the_sender() -> None:
    message = pubsub.MessageFactory(HOST).callback(origin_host_id='b' * 32, sid='s', namespace='/', ack_id=3,
                                                   args=['ok', b'\x01'])
    assert message['host_id'] == 'b' * 32 and message['msg_id'].startswith(HOST + '.')
    assert message['binary'] is True and message['id'] == 3
    decoded = roundtrip(message)
    assert isinstance(decoded, pubsub.CallbackMessage)
    assert (decoded.sid, decoded.ack_id, decoded.args) == ('s', 3, ['ok', b'\x01'])


@pytest.mark.parametrize('kind', ['enter_room', 'leave_room'])
def test_room_messages(kind: str) -> None:
    decoded = roundtrip(pubsub.MessageFactory(HOST).room(kind, sid='s', namespace='/x', room='r'))
    assert decoded == pubsub.RoomMessage(kind=kind, host_id=HOST, msg_id=f'{HOST}.1', sid='s', namespace='/x',
                                         room='r')
    with pytest.raises(ValueError):
        pubsub.MessageFactory(HOST).room('emit', sid='s', namespace='/', room='r')


def test_disconnect_and_close_room() -> None:
    factory = pubsub.MessageFactory(HOST)
    assert roundtrip(factory.disconnect(sid='s', namespace='/')) == pubsub.DisconnectMessage(
        host_id=HOST, msg_id=f'{HOST}.1', sid='s', namespace='/')
    assert roundtrip(factory.close_room(room=5, namespace='/')) == pubsub.CloseRoomMessage(
        host_id=HOST, msg_id=f'{HOST}.2', namespace='/', room=5)


def test_nan_cannot_be_published() -> None:
    message = pubsub.MessageFactory(HOST).emit(event='ev', args=[float('nan')], namespace='/')
    with pytest.raises(ValueError):
        pubsub.encode(message, safejson)


# -- what python-socketio sends (shapes of its 5.15+ PubSubManager) --------------------------

def test_python_socketio_emit_is_accepted_without_an_id() -> None:
    theirs = {'method': 'emit', 'event': 'ev', 'data': [[{'_placeholder': True, 'num': 0}, 'x'], 'AAE='],
              'binary': True, 'namespace': '/', 'room': None, 'skip_sid': None, 'callback': ['sid', '/', 1],
              'host_id': HOST}
    decoded = pubsub.decode(json.dumps(theirs), safejson)
    assert decoded.msg_id is None
    assert decoded.args == [b'\x00\x01', 'x']
    assert decoded.callback == ('sid', '/', 1)


def test_kombu_double_encoding_is_unwrapped_once() -> None:
    theirs = {'method': 'close_room', 'room': 'r', 'namespace': '/', 'host_id': HOST}
    body = json.dumps(json.dumps(theirs)).encode()  # kombu serialises the JSON text again
    assert pubsub.decode(body, safejson) == pubsub.CloseRoomMessage(host_id=HOST, msg_id=None, namespace='/',
                                                                    room='r')
    with pytest.raises(pubsub.InvalidMessage):
        pubsub.decode(json.dumps(json.dumps(json.dumps(theirs))), safejson)


def test_python_socketio_callback_and_legacy_single_argument() -> None:
    cb = pubsub.decode({'method': 'callback', 'host_id': HOST, 'sid': 's', 'namespace': '/', 'id': 2,
                        'args': ['yes']}, safejson)
    assert cb.args == ['yes'] and cb.msg_id is None
    legacy = pubsub.decode({'method': 'emit', 'event': 'e', 'data': {'k': 1}, 'host_id': HOST}, safejson)
    assert legacy.args == [{'k': 1}] and legacy.namespace == '/'


# -- what nobody should send ------------------------------------------------------------------

VALID = {'method': 'emit', 'event': 'e', 'data': [1], 'binary': False, 'namespace': '/', 'room': None,
         'skip_sid': None, 'callback': None, 'host_id': HOST, 'version': 1, 'msg_id': 'x.1'}


def altered(**changes: object) -> dict:
    message = dict(VALID)
    for key, value in changes.items():
        if value is KeyError:
            message.pop(key)
        else:
            message[key] = value
    return message


@pytest.mark.parametrize(('raw', 'reason'), [
    (b'\x80\x04\x95\x00\xff', 'not UTF-8'),
    (pickle.dumps({'method': 'emit'}, protocol=0), 'not JSON'),
    (pickle.dumps({'method': 'emit'}), 'not UTF-8'),
    (b'not json at all', 'not JSON'),
    ('[1, 2]', 'expected a JSON object'),
    ('{"method": "emit", "event": "e", "data": [NaN], "host_id": "h"}', 'not JSON'),
    ('[' * 10_000 + ']' * 10_000, 'not JSON'),
    ({'hello': 'world'}, 'no "method"'),
    (altered(method='exec'), 'unknown method'),
    (altered(version=99), 'newer'),
    (altered(version='1'), 'version'),
    (altered(msg_id=KeyError), 'msg_id'),
    (altered(msg_id=5), 'msg_id'),
    (altered(host_id=KeyError), 'host_id'),
    (altered(host_id='h' * 500), 'host_id'),
    (altered(namespace='chat'), 'namespace'),
    (altered(event=KeyError), 'event'),
    (altered(event=['x']), 'event'),
    (altered(data=KeyError), 'data'),
    (altered(binary='yes'), 'binary'),
    (altered(binary=True, data={'a': 1}), 'must be a list'),
    (altered(binary=True, data=[]), 'without attachments'),
    (altered(binary=True, data=[[999]]), 'without attachments'),
    (altered(binary=True, data=[[{'_placeholder': True, 'num': 0}], '!!not base64!!']), 'base64'),
    (altered(binary=True, data=[[{'_placeholder': True, 'num': 1}], 'AAE=']), 'placeholder'),
    (altered(binary=True, data=[[{'_placeholder': True, 'num': 0, 'x': 1}], 'AAE=']), 'placeholder'),
    (altered(binary=True, data=[[{'_placeholder': True, 'num': True}], 'AAE=']), 'placeholder'),
    (altered(binary=True, data=[[1], 5]), 'base64'),
    (altered(room={'a': 1}), 'room'),
    (altered(room=[['nested']]), 'room'),
    (altered(skip_sid=1.5), 'skip_sid'),
    (altered(callback=['sid', '/']), 'callback'),
    (altered(callback=['sid', '/', '1']), 'callback'),
    ({'method': 'callback', 'host_id': HOST, 'sid': 's', 'id': -1, 'args': []}, 'id'),
    ({'method': 'callback', 'host_id': HOST, 'sid': 's', 'id': 1, 'args': 'x'}, 'args'),
    ({'method': 'disconnect', 'host_id': HOST}, 'sid'),
    ({'method': 'enter_room', 'host_id': HOST, 'sid': 's', 'room': None}, 'room'),
    ({'method': 'close_room', 'host_id': HOST, 'room': [1]}, 'room'),
    (12345, 'payload type'),
])
def test_invalid_messages_are_refused_with_a_reason(raw: object, reason: str) -> None:
    with pytest.raises(pubsub.InvalidMessage, match=reason):
        pubsub.decode(raw, safejson)


def test_oversize_message_is_refused_before_parsing() -> None:
    with pytest.raises(pubsub.InvalidMessage, match='exceeds'):
        pubsub.decode(b' ' * (pubsub.MAX_MESSAGE_BYTES + 1), safejson)


def test_invalid_message_is_a_remote_protocol_error() -> None:
    from greensio._core.errors import RemoteProtocolError

    assert issubclass(pubsub.InvalidMessage, RemoteProtocolError)


# -- deduplication ------------------------------------------------------------------------------

def test_dedup_window_flags_repeats_and_forgets_the_oldest() -> None:
    window = pubsub.DedupWindow(capacity=3)
    assert [window.seen(i) for i in ['a', 'b', 'a', 'c', 'd']] == [False, False, True, False, False]
    assert len(window) == 3
    assert window.seen('a') is False  # evicted: a window, not an unbounded set
    assert window.seen('d') is True
    with pytest.raises(ValueError):
        pubsub.DedupWindow(capacity=0)


# -- forwarded long-polling requests (several machines, no sticky sessions) -------------------

FORWARD = {'sid': 'abcdefgh' + 'x' * 20, 'method': 'POST', 'query': 'EIO=4&transport=polling&sid=abcdefghxx',
           'headers': {'content-type': 'application/octet-stream'}, 'body': b'\x00\xff4hello'}


def test_a_forwarded_request_and_its_answer_roundtrip_with_binary_bodies() -> None:
    factory = pubsub.MessageFactory(HOST)
    request = roundtrip(factory.request(pubsub.FORWARD, request=f'{HOST}.g1', namespace='/', reply=True,
                                        forward=FORWARD))
    assert request.op == pubsub.FORWARD and request.forward == FORWARD and request.reply
    answer = ['200 OK', [['Content-Type', 'text/plain; charset=UTF-8']], b'\x00ok']
    response = roundtrip(factory.response(origin_host_id='b' * 32, request=f'{HOST}.g1', forwarded=answer))
    assert response.forwarded == answer and response.host_id == 'b' * 32


TEXT = {**FORWARD, 'body': '4hello'}


@pytest.mark.parametrize(('forward', 'reason'), [
    ('GET', 'must be an object'),
    ({**TEXT, 'method': 'DELETE'}, 'method must be one of'),
    ({**TEXT, 'sid': ''}, 'sid'),
    ({**TEXT, 'query': 'q' * (pubsub.MAX_FORWARD_QUERY + 1)}, 'query must be a string'),
    ({**TEXT, 'headers': {'a': 1}}, 'headers must be'),
    ({**TEXT, 'headers': {str(i): 'v' for i in range(pubsub.MAX_FORWARD_HEADERS + 1)}}, 'headers must be'),
    ({**TEXT, 'body': 12}, 'body must be'),
])
def test_a_malformed_forwarded_request_is_refused(forward: object, reason: str) -> None:
    message = pubsub.MessageFactory(HOST).request(pubsub.FORWARD, request=f'{HOST}.g1', namespace='/', reply=True,
                                                  forward={'sid': 'x', 'method': 'GET', 'query': '', 'headers': {},
                                                           'body': ''})
    message['forward'], message['binary'] = [forward], False
    with pytest.raises(pubsub.InvalidMessage, match=reason):
        roundtrip(message)


@pytest.mark.parametrize('answer', [['200 OK', [], 3], ['200 OK', [['a']], ''], [200, [], ''], 'ok',
                                    ['200 OK', [['a', 'b']] * (pubsub.MAX_FORWARD_HEADERS + 1), '']])
def test_a_malformed_forwarded_answer_is_refused(answer: object) -> None:
    message = pubsub.MessageFactory(HOST).response(origin_host_id=HOST, request='r', forwarded=['200 OK', [], b''])
    message['forwarded'], message['binary'] = [answer], False
    with pytest.raises(pubsub.InvalidMessage, match='forwarded'):
        roundtrip(message)


# -- batches ---------------------------------------------------------------------------------

def test_a_batch_carries_its_messages_in_order_as_their_own_texts() -> None:
    factory = pubsub.MessageFactory(HOST)
    messages = [factory.emit(event='ev', args=[i], namespace='/') for i in range(3)]
    messages.append(factory.callback(origin_host_id='b' * 32, sid='s', namespace='/', ack_id=1, args=['ok']))
    texts = [pubsub.encode(m, safejson) for m in messages]
    header, text = pubsub.batch(HOST, texts)
    assert header == {'method': pubsub.BATCH, 'host_id': HOST, 'version': 2}
    assert json.loads(text) == {**header, 'messages': messages}
    assert text.endswith(f'[{",".join(texts)}]}}')  # each message as it was encoded, not again
    assert text.startswith(pubsub.batch_prefix(HOST))  # how a worker knows its own echo unparsed
    decoded = pubsub.decode(text.encode(), safejson)
    assert decoded == pubsub.BatchMessage(host_id=HOST, messages=tuple(roundtrip(m) for m in messages))


def bad_batches() -> list:
    good = pubsub.MessageFactory(HOST).emit(event='ev', args=[1], namespace='/')
    envelope = {'method': pubsub.BATCH, 'host_id': HOST, 'version': 2, 'messages': [good]}
    return [
        pytest.param({**envelope, 'messages': [good, {**good, 'event': 5}]}, id='one bad message'),
        pytest.param({**envelope, 'messages': [good, envelope]}, id='nested'),
        pytest.param({**envelope, 'messages': [good, 'text']}, id='not an object'),
        pytest.param({**envelope, 'messages': []}, id='empty'),
        pytest.param({**envelope, 'messages': [good] * (pubsub.MAX_BATCH + 1)}, id='too many'),
        pytest.param({**envelope, 'version': 1}, id='version 1'),
        pytest.param({**envelope, 'version': pubsub.SCHEMA_VERSION + 1}, id='newer version'),
        pytest.param({**envelope, 'host_id': 'b' * 32}, id='messages of another sender'),
        pytest.param({**envelope, 'messages': [{**good, 'msg_id': None, 'version': 0}]}, id='message without id'),
    ]


@pytest.mark.parametrize('envelope', bad_batches())
def test_a_batch_is_valid_only_as_a_whole(envelope: dict) -> None:
    with pytest.raises(pubsub.InvalidMessage):
        pubsub.decode(json.dumps(envelope).encode(), safejson)


def test_batch_bounds() -> None:
    with pytest.raises(ValueError):
        pubsub.batch(HOST, [])
    with pytest.raises(ValueError):
        pubsub.batch(HOST, ['{}'] * (pubsub.MAX_BATCH + 1))
