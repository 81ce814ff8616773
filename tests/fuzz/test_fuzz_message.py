"""Message decoding never crashes: a valid message re-encodes to the same bytes, anything else is a
``MessageFormatError`` naming the field."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.message import HEADER_LEN, MAX_BODY_LEN, MESSAGE_VERSION, Message, MessageFormatError

FUZZ = settings.get_profile("fuzz")


def _decode_or_typed_error(data: bytes) -> Message | None:
    try:
        msg = Message.decode(data)
    except MessageFormatError as exc:
        assert str(exc)
        return None
    assert msg.encode() == bytes(data)
    return msg


valid_messages = st.builds(
    Message,
    version=st.just(MESSAGE_VERSION),
    nonce=st.integers(0, 2**64 - 1),
    origin=st.integers(0, 2**32 - 1),
    sender=st.binary(min_size=32, max_size=32),
    destination=st.integers(0, 2**32 - 1),
    recipient=st.binary(min_size=32, max_size=32),
    body=st.binary(max_size=512),
)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data):
    _decode_or_typed_error(data)


@FUZZ
@given(valid_messages)
def test_valid_messages_round_trip(msg):
    assert Message.decode(msg.encode()) == msg


@FUZZ
@given(valid_messages, st.data())
def test_truncated_messages(msg, data):
    raw = msg.encode()
    cut = data.draw(st.integers(0, len(raw)))
    got = _decode_or_typed_error(raw[:cut])
    assert (got is None) == (cut < HEADER_LEN)


@FUZZ
@given(valid_messages, st.binary(min_size=1, max_size=256))
def test_extended_messages_keep_the_extra_bytes_as_body(msg, extra):
    got = _decode_or_typed_error(msg.encode() + extra)
    assert got is not None and got.body == msg.body + extra


@FUZZ
@given(valid_messages, st.data())
def test_bit_flips(msg, data):
    raw = bytearray(msg.encode())
    for _ in range(data.draw(st.integers(1, 8))):
        bit = data.draw(st.integers(0, 8 * len(raw) - 1))
        raw[bit // 8] ^= 1 << (bit % 8)
    got = _decode_or_typed_error(bytes(raw))
    assert (got is None) == (raw[0] != MESSAGE_VERSION)


def test_body_over_the_limit_is_a_typed_error():
    raw = Message(MESSAGE_VERSION, 0, 1, b"\0" * 32, 2, b"\0" * 32, b"\0" * (MAX_BODY_LEN + 1)).encode()
    assert _decode_or_typed_error(raw) is None


@FUZZ
@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())))
def test_non_bytes_input_is_a_typed_error(value):
    assert _decode_or_typed_error(value) is None
