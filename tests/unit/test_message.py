import pytest

from adapters.message import (
    HEADER_LEN,
    MAX_BODY_LEN,
    Message,
    MessageFormatError,
    address_to_bytes32,
    keccak256,
)


def sample(body: bytes = b"hello") -> Message:
    return Message(1, 7, 1000, address_to_bytes32("0x" + "ab" * 20), 2000, b"\x02" * 32, body)


def test_round_trip_and_layout():
    msg = sample()
    raw = msg.encode()
    assert len(raw) == HEADER_LEN + 5
    assert raw[0] == 1 and int.from_bytes(raw[1:9], "big") == 7 and int.from_bytes(raw[9:13], "big") == 1000
    assert raw[13:45] == b"\0" * 12 + b"\xab" * 20
    assert Message.decode(raw) == msg
    assert msg.id == keccak256(raw)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"", "header alone is 81"),
        (b"\x01" * 40, "message is 40 bytes"),
        (b"\x02" + sample().encode()[1:], "version"),
        (sample(b"x" * (MAX_BODY_LEN + 1)).encode(), "over the"),
    ],
)
def test_malformed_bytes_say_what_is_wrong(raw, needle):
    with pytest.raises(MessageFormatError, match=needle):
        Message.decode(raw)


def test_non_bytes_rejected():
    with pytest.raises(MessageFormatError, match="must be bytes"):
        Message.decode("0x01")  # type: ignore[arg-type]


def test_keccak_known_vector():
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
