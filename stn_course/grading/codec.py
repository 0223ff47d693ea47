"""What crosses from the learner's process to the grader's: plain data only (classroom grading).

The sandboxed child sends the learner's results back as bytes; the grader decodes them with :func:`decode`, which
builds *new* objects of exact base types – ``torch.Tensor``, ``numpy.ndarray``, ``int``, ``float``, ``bool``,
``str``, ``None`` and tuples, lists and string-keyed dicts of them – from a JSON header and raw array bytes. No
pickle, no class lookup, no code: whatever object the learner returned (a tensor subclass with rigged ``.numpy()``,
an object whose ``__eq__`` is always true), the grader only ever sees the numbers it encoded to.

Format: ``b"STNC" + len(header) as 8 bytes + header (UTF-8 JSON) + blobs``. The header is a tree of nodes:
``{"t": "tensor"|"ndarray", "dtype", "shape", "offset", "nbytes"}`` for arrays (C order, little-endian, at
``offset`` into the blobs), ``{"t": "float", "v": "nan"|"inf"|"-inf"|number}``, ``{"t": "tuple"|"list", "items"}``,
``{"t": "dict", "items": [[key, node], …]}``, and ``{"t": "int"|"bool"|"str"|"none", "v"}``.
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
import torch

__all__ = ["encode", "decode", "CodecError", "MAX_BYTES"]

MAGIC = b"STNC"
MAX_BYTES = 256 * 2**20  # a result larger than this is refused (no exercise returns more than a few MB)
MAX_NODES = 100_000
MAX_DEPTH = 32
MAX_STR = 10_000

# dtypes that cross, by name; bfloat16 travels as its bits (NumPy has no bfloat16)
_TORCH_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.float32, torch.float64, torch.bfloat16, torch.complex64, torch.complex128,
    torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)}
_NUMPY_DTYPES = {np.dtype(d).name: np.dtype(d) for d in (
    np.float16, np.float32, np.float64, np.complex64, np.complex128, np.uint8, np.uint16, np.uint32, np.uint64,
    np.int8, np.int16, np.int32, np.int64, np.bool_)}


class CodecError(ValueError):
    """The value cannot cross (an unsupported type, too large) or the bytes are not a valid encoding."""


# ----------------------------------------------------------------------------------------------------------------
# Encoding (in the learner's process)
# ----------------------------------------------------------------------------------------------------------------


def _array_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array.tobytes()


def encode(value: Any) -> bytes:
    """Bytes for ``value`` (tensors, arrays, numbers, strings, None and tuples/lists/str-keyed dicts of them)."""
    blobs: list[bytes] = []
    size = [0]
    count = [0]

    def blob(data: bytes) -> int:
        offset = size[0]
        size[0] += len(data)
        if size[0] > MAX_BYTES:
            raise CodecError(f"the result is larger than {MAX_BYTES // 2**20} MB")
        blobs.append(data)
        return offset

    def node(v: Any, depth: int) -> dict:
        count[0] += 1
        if count[0] > MAX_NODES or depth > MAX_DEPTH:
            raise CodecError("the result is nested too deeply or has too many parts")
        if v is None:
            return {"t": "none"}
        if isinstance(v, (bool, np.bool_)):
            return {"t": "bool", "v": bool(v)}
        if isinstance(v, (int, np.integer)):
            return {"t": "int", "v": str(int(v))}
        if isinstance(v, (float, np.floating)):
            f = float(v)
            return {"t": "float", "v": repr(f) if math.isfinite(f) else str(f)}
        if isinstance(v, str):
            return {"t": "str", "v": v[:MAX_STR]}
        if isinstance(v, torch.Tensor):
            t = v.detach()
            if t.layout != torch.strided or t.is_quantized or t.is_meta:
                raise CodecError(f"a {t.layout} tensor cannot be graded: return a dense tensor")
            dtype = str(t.dtype).removeprefix("torch.")
            if dtype not in _TORCH_DTYPES:
                raise CodecError(f"tensors of dtype {t.dtype} cannot be graded")
            t = t.cpu().contiguous()
            data = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
            raw = _array_bytes(data)
            return {"t": "tensor", "dtype": dtype, "shape": list(t.shape), "offset": blob(raw), "nbytes": len(raw)}
        if isinstance(v, np.ndarray):
            if v.dtype.name not in _NUMPY_DTYPES:
                raise CodecError(f"arrays of dtype {v.dtype} cannot be graded")
            raw = _array_bytes(v)
            return {"t": "ndarray", "dtype": v.dtype.name, "shape": list(v.shape), "offset": blob(raw),
                    "nbytes": len(raw)}
        if isinstance(v, (tuple, list)):
            return {"t": "tuple" if isinstance(v, tuple) else "list", "items": [node(x, depth + 1) for x in v]}
        if isinstance(v, dict):
            items = []
            for key, x in v.items():
                if not isinstance(key, str):
                    raise CodecError("a dict in a result must have string keys")
                items.append([key[:MAX_STR], node(x, depth + 1)])
            return {"t": "dict", "items": items}
        raise CodecError(f"a {type(v).__name__} cannot be graded: return tensors, arrays, numbers or tuples of them")

    header = json.dumps(node(value, 0), separators=(",", ":")).encode()
    return MAGIC + struct.pack("<Q", len(header)) + header + b"".join(blobs)


# ----------------------------------------------------------------------------------------------------------------
# Decoding (in the grader's process): builds fresh objects of exact base types
# ----------------------------------------------------------------------------------------------------------------


def decode(data: bytes) -> Any:
    """The value :func:`encode` wrote, rebuilt from plain data. Raises :class:`CodecError` for anything else."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < 12 or data[:4] != MAGIC:
        raise CodecError("not an encoded result")
    (length,) = struct.unpack("<Q", data[4:12])
    if length > len(data) - 12:
        raise CodecError("truncated result")
    try:
        header = json.loads(bytes(data[12:12 + length]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"bad result header: {exc}") from None
    blobs = memoryview(bytes(data[12 + length:]))
    count = [0]

    def array(n: dict, numpy_dtype: np.dtype) -> np.ndarray:
        shape = n.get("shape")
        offset, nbytes = n.get("offset"), n.get("nbytes")
        if (not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape)
                or type(offset) is not int or type(nbytes) is not int or offset < 0 or nbytes < 0):
            raise CodecError("bad array description")
        expected = numpy_dtype.itemsize * math.prod(shape)
        if nbytes != expected or offset + nbytes > len(blobs):
            raise CodecError("array bytes do not match the shape and dtype")
        return np.frombuffer(blobs[offset:offset + nbytes], dtype=numpy_dtype.newbyteorder("<")).astype(
            numpy_dtype, copy=True).reshape(shape)

    def build(n: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > MAX_NODES or depth > MAX_DEPTH or not isinstance(n, dict):
            raise CodecError("bad result structure")
        kind = n.get("t")
        if kind == "none":
            return None
        if kind == "bool" and type(n.get("v")) is bool:
            return bool(n["v"])
        if kind == "int" and type(n.get("v")) is str:
            try:
                return int(n["v"])
            except ValueError:
                raise CodecError("bad integer") from None
        if kind == "float" and type(n.get("v")) is str:
            try:
                return float(n["v"])
            except ValueError:
                raise CodecError("bad float") from None
        if kind == "str" and type(n.get("v")) is str:
            return str(n["v"])
        if kind == "tensor" and n.get("dtype") in _TORCH_DTYPES:
            dtype = _TORCH_DTYPES[n["dtype"]]
            if dtype == torch.bfloat16:
                return torch.from_numpy(array(n, np.dtype(np.int16))).view(torch.bfloat16)
            return torch.from_numpy(array(n, np.dtype(torch.empty(0, dtype=dtype).numpy().dtype)))
        if kind == "ndarray" and n.get("dtype") in _NUMPY_DTYPES:
            return array(n, _NUMPY_DTYPES[n["dtype"]])
        if kind in ("tuple", "list") and isinstance(n.get("items"), list):
            items = [build(x, depth + 1) for x in n["items"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict" and isinstance(n.get("items"), list):
            out = {}
            for pair in n["items"]:
                if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is str):
                    raise CodecError("bad dict in result")
                out[str(pair[0])] = build(pair[1], depth + 1)
            return out
        raise CodecError(f"unsupported node {str(kind)[:20]!r} in result")

    return build(header, 0)
