"""Reading an ONNX file without its weights' bytes: protobuf's wire format walked by hand.

`onnx.load` parses the whole file into memory (and reads it into memory first: twice the weights
at its peak). Import needs the graph and each initializer's name, type and shape; the bytes of an
initializer's ``raw_data`` are only read when the weights are written out, one tensor at a time.
So the model is parsed with every initializer's ``raw_data`` left out, and where each one lies in
the file is noted. Every length is checked against what is left of the file; a malformed file is
a WireError.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

MODEL_GRAPH, GRAPH_INITIALIZER, TENSOR_RAW_DATA = 7, 5, 9
VARINT, I64, LEN, I32 = 0, 1, 2, 5


class WireError(Exception):
    """The file is not a well-formed protobuf message."""


@dataclass(frozen=True)
class Span:
    """Where an initializer's raw bytes lie in the file."""

    offset: int
    length: int


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise WireError("a number runs past the end of its message")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, wire type, start of the field's bytes, start of its value, end) for each field."""
    pos = start
    while pos < end:
        first = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            _, after = _varint(buf, pos, end)
        elif wire == I64:
            after = pos + 8
        elif wire == I32:
            after = pos + 4
        elif wire == LEN:
            length, pos = _varint(buf, pos, end)
            after = pos + length
        else:
            raise WireError(f"wire type {wire} (groups or garbage)")
        if after > end:
            raise WireError("a field runs past the end of its message")
        yield number, wire, first, pos, after
        pos = after


def read_light(path: str):
    """The model without its initializers' raw bytes (an onnx.ModelProto), and where each of those
    lies: {initializer index: Span}."""
    import onnx

    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise WireError("the file is empty")
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        model_rest = bytearray()
        graph_rest = bytearray()
        tensors: list[bytes] = []
        spans: dict[int, Span] = {}
        for number, wire, first, value, after in _fields(buf, 0, size):
            if number != MODEL_GRAPH or wire != LEN:
                model_rest += buf[first:after]
                continue
            for g_number, g_wire, g_first, g_value, g_after in _fields(buf, value, after):
                if g_number != GRAPH_INITIALIZER or g_wire != LEN:
                    graph_rest += buf[g_first:g_after]
                    continue
                light = bytearray()
                for t_number, t_wire, t_first, t_value, t_after in _fields(buf, g_value, g_after):
                    if t_number == TENSOR_RAW_DATA and t_wire == LEN:
                        spans[len(tensors)] = Span(t_value, t_after - t_value)
                    else:
                        light += buf[t_first:t_after]
                tensors.append(bytes(light))
        model = onnx.ModelProto()
        model.ParseFromString(bytes(model_rest))
        model.graph.ParseFromString(bytes(graph_rest))
        for data in tensors:
            model.graph.initializer.add().ParseFromString(data)
        return model, spans
    except WireError:
        raise
    except Exception as exc:  # noqa: BLE001 - protobuf's own DecodeError and the like
        raise WireError(f"{type(exc).__name__}") from None
    finally:
        buf.close()


def read_span(path: str, span: Span) -> bytes:
    """The bytes of one initializer."""
    with open(path, "rb") as fh:
        data = os.pread(fh.fileno(), span.length, span.offset)
    if len(data) != span.length:
        raise WireError("the file changed while it was read")
    return data
