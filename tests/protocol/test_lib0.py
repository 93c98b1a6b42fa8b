"""lib0 primitives: varUint, varUint8Array, UTF-8 varString."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.errors import FrameError
from crdtsync.protocol.lib0 import (
    MAX_VAR_UINT,
    Decoder,
    Encoder,
    encode_var_string,
    encode_var_uint,
    encode_var_uint8_array,
)


@pytest.mark.parametrize(
    ("n", "wire"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (16383, "ff7f"),
        (16384, "808001"),
        (MAX_VAR_UINT, "ffffffffffffff0f"),
    ],
)
def test_var_uint_known_encodings(n: int, wire: str) -> None:
    assert encode_var_uint(n).hex() == wire
    d = Decoder(bytes.fromhex(wire))
    assert d.read_var_uint() == n
    d.expect_end()


@given(st.integers(min_value=0, max_value=MAX_VAR_UINT))
def test_var_uint_round_trip(n: int) -> None:
    d = Decoder(encode_var_uint(n))
    assert d.read_var_uint() == n
    assert d.at_end()


def test_var_uint_out_of_range_is_refused_when_encoding() -> None:
    with pytest.raises(ValueError):
        encode_var_uint(-1)
    with pytest.raises(ValueError):
        encode_var_uint(MAX_VAR_UINT + 1)


def test_non_minimal_var_uint_is_accepted_as_lib0_does() -> None:
    assert Decoder(bytes.fromhex("8000")).read_var_uint() == 0


@pytest.mark.parametrize(
    "wire",
    [
        "",  # nothing
        "80",  # continuation, then nothing
        "ffff",  # truncated
        "808080808080808001",  # 9 bytes: overlong
        "ffffffffffffff1f",  # 2**54 - 1 > 2**53 - 1
    ],
)
def test_bad_var_uints_raise_frame_error(wire: str) -> None:
    with pytest.raises(FrameError):
        Decoder(bytes.fromhex(wire)).read_var_uint()


def test_var_string_writes_utf8_byte_length_not_char_count() -> None:
    # "é" is one character but two UTF-8 bytes; pycrdt's Encoder would write 01 here.
    assert encode_var_string("é").hex() == "02c3a9"
    assert encode_var_string("😀x").hex() == "05f09f988078"


@given(st.text())
def test_var_string_round_trip_including_non_ascii(text: str) -> None:
    enc = Encoder()
    enc.write_var_string(text)
    enc.write_var_uint(7)
    d = Decoder(enc.to_bytes())
    assert d.read_var_string() == text
    assert d.read_var_uint() == 7
    d.expect_end()


@given(st.binary())
def test_var_uint8_array_round_trip(data: bytes) -> None:
    d = Decoder(encode_var_uint8_array(data))
    assert d.read_var_uint8_array() == data
    d.expect_end()


def test_truncated_array_and_bad_utf8_raise_frame_error() -> None:
    with pytest.raises(FrameError):
        Decoder(bytes.fromhex("05aabb")).read_var_uint8_array()
    with pytest.raises(FrameError):
        Decoder(bytes.fromhex("01ff")).read_var_string()
    with pytest.raises(FrameError):
        Decoder(b"").read_uint8()


def test_read_span_does_not_copy_and_expect_end_reports_trailing_bytes() -> None:
    d = Decoder(bytes.fromhex("0203040506"))
    assert d.read_span() == (1, 3)
    assert d.remaining == 2
    with pytest.raises(FrameError, match="trailing"):
        d.expect_end()


@given(st.binary(max_size=64))
def test_decoder_only_ever_raises_frame_error(data: bytes) -> None:
    d = Decoder(data)
    try:
        while not d.at_end():
            d.read_var_uint()
            d.read_var_string()
    except FrameError:
        pass
