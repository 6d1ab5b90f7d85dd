"""Output files: direct I/O writes exactly the bytes given, at every alignment, or nothing at all."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from helpers import SPECS

import cnndsl
from cnndsl.api import CompileOptions
from cnndsl.errors import CompileError
from cnndsl.onnx import compile as compile_mod
from cnndsl.onnx import output
from cnndsl.onnx.output import _ALIGN, _BLOCK, DirectOutput, Output, open_output


@pytest.fixture
def direct_dir(tmp_path):
    """tmp_path, when its file system accepts O_DIRECT (tmpfs on older kernels does not)."""
    try:
        DirectOutput(str(tmp_path / "probe")).__exit__(None, None, None)
        os.remove(tmp_path / "probe")
    except (OSError, AttributeError):
        pytest.skip("this file system does not support O_DIRECT")
    return tmp_path


def pattern(n: int) -> bytes:
    """n bytes that repeat only every 251 * 256 (so a block written twice or skipped shows)."""
    i = np.arange(n, dtype=np.int64)
    return ((i * 7 + i // 251) & 0xFF).astype(np.uint8).tobytes()


@pytest.mark.parametrize("pieces", [
    [],
    [1],
    [_ALIGN - 1],
    [_ALIGN],
    [_ALIGN + 1],
    [_BLOCK - 1],
    [_BLOCK],
    [_BLOCK + 1],
    [3, _BLOCK - 3, 1],
    [17, 2 * _BLOCK + 5, _ALIGN, 0, 9],
], ids=lambda p: "+".join(map(str, p)) or "empty")
def test_direct_output_writes_exactly_the_bytes_given(direct_dir, pieces):
    data = pattern(sum(pieces))
    path = direct_dir / "out.bin"
    with DirectOutput(str(path)) as out:
        at = 0
        for n in pieces:
            out.write(memoryview(data)[at:at + n])
            at += n
    assert path.read_bytes() == data


def test_open_output_chooses_direct_io_only_for_large_files(direct_dir):
    small = open_output(str(direct_dir / "a"), output.DIRECT_MIN_BYTES - 1)
    large = open_output(str(direct_dir / "b"), output.DIRECT_MIN_BYTES)
    for out in (small, large):
        out.__exit__(None, None, None)
    assert type(small) is Output and type(large) is DirectOutput


def test_open_output_falls_back_where_direct_io_is_refused(tmp_path, monkeypatch):
    def refuse(path):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(output, "DirectOutput", refuse)
    with open_output(str(tmp_path / "m"), 1 << 40) as out:
        out.write(b"abc")
    assert (tmp_path / "m").read_bytes() == b"abc"


def test_compiling_through_direct_io_equals_the_in_memory_model(direct_dir, monkeypatch):
    monkeypatch.setattr(output, "DIRECT_MIN_BYTES", 0)
    used = []
    real = compile_mod._open_output
    monkeypatch.setattr(compile_mod, "_open_output", lambda p, n=0: used.append(real(p, n)) or used[-1])
    net = cnndsl.load(SPECS / "lenet5.cnn")
    net.compile(CompileOptions(seed=5, output=direct_dir / "m.onnx"))
    assert [type(o) for o in used] == [DirectOutput]
    assert (direct_dir / "m.onnx").read_bytes() == net.to_onnx(seed=5).SerializeToString()


def test_a_failed_direct_write_leaves_the_existing_model_and_no_temporary(direct_dir, monkeypatch):
    existing = direct_dir / "m.onnx"
    existing.write_bytes(b"precious")
    monkeypatch.setattr(output, "DIRECT_MIN_BYTES", 0)
    writes = []
    real_write = os.write

    def full_disk(fd, data):
        writes.append(len(data))
        if len(writes) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(output.os, "write", full_disk)
    monkeypatch.setattr(output, "_BLOCK", 64 << 10)  # several blocks for lenet5's 247 KB
    with pytest.raises(CompileError, match="No space left on device"):
        cnndsl.load(SPECS / "lenet5.cnn").compile(CompileOptions(output=existing))
    assert existing.read_bytes() == b"precious"
    assert os.listdir(direct_dir) == ["m.onnx"]
