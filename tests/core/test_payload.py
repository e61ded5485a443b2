"""The payload rule shared by emits, acks and call() results (python-socketio's semantics)."""

from typing import Any

import pytest

from greensio._core.payload import from_args, to_args


@pytest.mark.parametrize(
    ('data', 'args'),
    [
        (None, []),
        ('x', ['x']),
        (0, [0]),
        (False, [False]),
        ('', ['']),
        ({}, [{}]),
        ([], [[]]),  # a list is one argument
        ([1, 2], [[1, 2]]),
        ((), []),
        ((None,), [None]),  # a tuple spells out its arguments, None included
        ((1, 2), [1, 2]),
        (([1], {'a': 1}), [[1], {'a': 1}]),
        (((1, 2),), [(1, 2)]),  # a tuple inside is one argument
        (b'\x00', [b'\x00']),
    ],
)
def test_to_args(data: Any, args: list[Any]) -> None:
    assert to_args(data) == args
    assert type(to_args(data)) is list


def test_to_args_can_keep_none_as_one_argument() -> None:
    # the message-queue wire form, as python-socketio publishes an emit's data
    assert to_args(None, none_is_an_argument=True) == [None]
    assert to_args((), none_is_an_argument=True) == []
    assert to_args((1, None), none_is_an_argument=True) == [1, None]
    assert to_args('x', none_is_an_argument=True) == ['x']


@pytest.mark.parametrize(
    ('args', 'value'),
    [
        ((), None),
        ([], None),
        ((None,), None),
        (('x',), 'x'),
        ([[1, 2]], [1, 2]),  # one list argument stays a list
        (((1, 2),), (1, 2)),
        ((1, 2), (1, 2)),
        ([1, 2, 3], (1, 2, 3)),
        ((None, None), (None, None)),
    ],
)
def test_from_args(args: Any, value: Any) -> None:
    assert from_args(args) == value
    assert type(from_args(args)) is type(value)


def test_from_args_several_as_list() -> None:
    assert from_args([1, 2], several_as_list=True) == [1, 2]
    assert from_args((1, 2), several_as_list=True) == [1, 2]
    assert from_args(['x'], several_as_list=True) == 'x'
    assert from_args([], several_as_list=True) is None


@pytest.mark.parametrize('data', ['x', 1, [1, 2], {'a': 1}, (1, 2), (1, 2, 3), ((1,), 'b')])
def test_a_value_survives_the_round_trip(data: Any) -> None:
    assert from_args(to_args(data)) == data


@pytest.mark.parametrize('data', [None, ()])
def test_no_arguments_come_back_as_none(data: Any) -> None:
    assert from_args(to_args(data)) is None


def test_a_single_argument_tuple_loses_its_tuple() -> None:
    # emit(data=(x,)) sends one argument, which call() returns unwrapped
    assert from_args(to_args(('x',))) == 'x'
    # a published None comes back as None: no argument for the clients
    assert to_args(from_args(to_args(None, none_is_an_argument=True))) == []
