"""Frames between the grader and the sandboxed child (classroom grading).

A frame is ``[u32 header length][u64 payload length][header: UTF-8 JSON object][payload bytes]``. The grader only
ever parses JSON headers and :mod:`~stn_course.grading.codec` payloads from the child; the child unpickles the
payloads the grader sends it (the cases' inputs), which come from the trusted side.
"""
from __future__ import annotations

import json
import socket
import struct
from typing import Any

__all__ = ["send_frame", "recv_frame", "ProtocolError", "MAX_HEADER", "MAX_PAYLOAD"]

_PREFIX = struct.Struct("<IQ")
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 300 * 2**20


class ProtocolError(ConnectionError):
    """The other side closed the connection or sent something that is not a frame."""


def send_frame(sock: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
    data = json.dumps(header, separators=(",", ":")).encode()
    sock.sendall(_PREFIX.pack(len(data), len(payload)) + data + payload)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ProtocolError("the connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket, max_payload: int = MAX_PAYLOAD) -> tuple[dict[str, Any], bytes]:
    """The next frame's header and payload. Raises :class:`ProtocolError` on a closed or malformed stream (and
    ``socket.timeout`` when the socket's timeout passes)."""
    header_size, payload_size = _PREFIX.unpack(_recv_exactly(sock, _PREFIX.size))
    if header_size > MAX_HEADER or payload_size > max_payload:
        raise ProtocolError(f"frame too large ({header_size} + {payload_size} bytes)")
    try:
        header = json.loads(_recv_exactly(sock, header_size).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"bad frame header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad frame header: not an object")
    return header, _recv_exactly(sock, payload_size)
