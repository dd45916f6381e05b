"""The live fan-out's pre-encoded WebSocket frames (#12) are the frames the websockets library writes for the same
text: final, unmasked, with each of the three length encodings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from cityos.http.frames import text_frame


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_every_length_encoding(length: int) -> None:
    payload = ("é" * length).encode()[:length]
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    payload = text.encode()
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)
