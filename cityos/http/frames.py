"""Encoded WebSocket frames written straight to a connection's transport (#12, live fan-out).

A live event goes to every subscriber of a shared stream as the same text (cityos.http.live). Through Starlette
and uvicorn each of those sends is an ASGI message: a task switch into the subscriber's loop, Starlette's state
checks, uvicorn's message dispatch, the websockets protocol framing (and compressing, when the client negotiated
permessage-deflate) the same bytes again, per subscriber. Here the frame is built once per distinct text and
written to each subscriber's transport directly, in the broadcast loop.

`FrameProtocol` is uvicorn's websockets-sansio protocol plus one ASGI scope extension (`FRAMES_EXTENSION`): a
`FrameSink` over the connection, which writes a complete, final, unmasked text frame (RFC 6455 §5.2; a server
never masks) only while the handshake is complete, no close frame went out and the transport is open. An
uncompressed frame is valid on a permessage-deflate connection (RFC 7692 §6: RSV1 clear), and uvicorn's own frames
(pings, pongs, close) are whole writes on the same event loop, so frames never interleave. Everything else about
the connection (reading, keepalive, closing, flow control) stays uvicorn's: while the transport asks writers to
pause (`writable`), callers queue frames and send them through ASGI, which waits."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

FRAMES_EXTENSION = "cityos.websocket.frames"
TEXT_FINAL = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying `payload` (UTF-8)."""
    length = len(payload)
    if length < 126:
        header = bytes((TEXT_FINAL, length))
    elif length < 1 << 16:
        header = bytes((TEXT_FINAL, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((TEXT_FINAL, 127)) + length.to_bytes(8, "big")
    return header + payload


class FrameSink:
    """Frames written to one WebSocket connection's transport."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @property
    def writable(self) -> bool:
        """Open, and the transport is not asking writers to pause."""
        protocol = self._protocol
        return (protocol.handshake_complete and not protocol.close_sent and not protocol.disconnected
                and not protocol.transport.is_closing() and protocol.writable.is_set())

    def write(self, frame: bytes) -> bool:
        """Write the frame now if the connection is writable; False (nothing written) otherwise."""
        if not self.writable:
            return False
        self._protocol.transport.write(frame)
        return True


class FrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol offering a FrameSink in the scope's extensions."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is not None:
            scope["extensions"][FRAMES_EXTENSION] = FrameSink(self)
