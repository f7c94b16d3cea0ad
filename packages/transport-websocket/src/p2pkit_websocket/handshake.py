"""The HTTP/1.1 upgrade (RFC 6455 section 4), sans-IO, on ``websockets``' handshake code.

``websockets`` parses the request or response and checks every header (``Upgrade``,
``Connection``, ``Sec-WebSocket-Key`` / ``-Accept``, version); this module adds what
the transport needs around it: a bounded head (``MAX_HEAD`` bytes: a peer that never
ends its headers is refused, not buffered), the one path we serve (``/``; others get
404), and the bytes that followed the head, which belong to the first frames.
"""

from __future__ import annotations

import dataclasses
from http import HTTPStatus

from websockets.client import ClientProtocol
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from p2pkit.errors import TransportError
from p2pkit_websocket._ids import PATH

MAX_HEAD = 16 * 1024
"""Largest request or response head accepted (browsers send well under 2 KiB)."""

_END = b"\r\n\r\n"


@dataclasses.dataclass(frozen=True)
class ServerResult:
    """The outcome of a request: what to send back, and whether it upgraded."""

    response: bytes
    accepted: bool
    leftover: bytes
    error: str | None
    """Why the request was refused (None when accepted)."""


def _plain(status: HTTPStatus, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class ServerHandshake:
    """Reads one upgrade request; :meth:`receive_data` returns a result once it is whole."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def receive_data(self, data: memoryview) -> ServerResult | None:
        start = max(0, len(self._buf) - 3)
        self._buf += data
        end = self._buf.find(_END, start)
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
                refusal = _plain(status, "headers too large\n")
                return ServerResult(refusal, False, b"", "head too large")
            return None
        head, leftover = bytes(self._buf[: end + 4]), bytes(self._buf[end + 4 :])
        self._buf = bytearray()
        proto = ServerProtocol(max_size=None)
        proto.receive_data(head)
        events = proto.events_received()
        if not events:  # no valid HTTP request; the library may have answered (431, 414)
            reason = str(proto.handshake_exc or "not an HTTP request")
            out = b"".join(proto.data_to_send()) or _plain(HTTPStatus.BAD_REQUEST, "bad request\n")
            return ServerResult(out, False, b"", reason)
        request = events[0]
        if not isinstance(request, Request):
            return ServerResult(_plain(HTTPStatus.BAD_REQUEST, "bad request\n"), False, b"", "?")
        path = request.path.split("?", 1)[0]
        if "Host" not in request.headers:  # RFC 6455 4.2.1 (2); HTTP/1.1 requires it too
            response = proto.reject(HTTPStatus.BAD_REQUEST, "missing Host header\n")
        elif path != PATH:
            response = proto.reject(HTTPStatus.NOT_FOUND, "no WebSocket endpoint here\n")
        else:
            response = proto.accept(request)
            versions = request.headers.get_all("Sec-WebSocket-Version")  # (may repeat)
            if response.status_code != 101 and any(v != "13" for v in versions):
                # RFC 6455 4.4: say which version we speak (as gorilla and ws do).
                response.headers["Sec-WebSocket-Version"] = "13"
        proto.send_response(response)
        out = b"".join(proto.data_to_send())
        if response.status_code == 101:
            return ServerResult(out, True, leftover, None)
        error = str(proto.handshake_exc or f"path {path!r}")
        return ServerResult(out, False, b"", f"HTTP {response.status_code}: {error}")


class ClientHandshake:
    """Our upgrade request (``request``) and the check of the server's answer."""

    def __init__(self, host_header: str, *, tls: bool) -> None:
        scheme = "wss" if tls else "ws"
        self._proto = ClientProtocol(parse_uri(f"{scheme}://{host_header}{PATH}"), max_size=None)
        self._proto.send_request(self._proto.connect())
        self.request = b"".join(self._proto.data_to_send())
        self._buf = bytearray()

    def receive_data(self, data: memoryview) -> bytes | None:
        """The bytes after the head once the server accepted; None while incomplete.

        Raises TransportError when the server refused or answered nonsense.
        """
        start = max(0, len(self._buf) - 3)
        self._buf += data
        end = self._buf.find(_END, start)
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                raise TransportError("websocket: response head too large")
            return None
        head, leftover = bytes(self._buf[: end + 4]), bytes(self._buf[end + 4 :])
        self._buf = bytearray()
        self._proto.receive_data(head)
        events = self._proto.events_received()
        exc = self._proto.handshake_exc
        if exc is not None or not events or not isinstance(events[0], Response):
            raise TransportError(f"websocket upgrade refused: {exc}") from exc
        return leftover
