"""The atomic publisher (cnndsl.io): whole or nothing, for files and folders, under every failure."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest

from cnndsl import io
from cnndsl.errors import CnnDslError

OLD = b"the user's precious file"


def snapshot(folder) -> dict:
    """Every path under ``folder`` (relative) -> its bytes, or 'dir', and its mode."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            kind = "dir" if os.path.isdir(path) else Path(path).read_bytes()
            out[os.path.relpath(path, folder)] = (kind, stat.S_IMODE(os.lstat(path).st_mode))
    return out


# -- targets: what is published, made as it would be by a writer ------------------------------------

def one_file(pub, tmp_path, fail):
    with open(pub.file(tmp_path / "out.bin"), "wb") as fh:
        fh.write(b"new" * 1000)
        fail("writing")
    fail("written")


def two_files(pub, tmp_path, fail):
    """A model and its external data: the data is staged (and published) first."""
    for name in ("out.bin.data", "out.bin"):
        with open(pub.file(tmp_path / name), "wb") as fh:
            fh.write(name.encode() * 100)
            fail("writing")
        fail(f"written {name}")
    fail("written")


def one_folder(pub, tmp_path, fail):
    staged = pub.folder(tmp_path / "repo")
    os.mkdir(os.path.join(staged, "1"))
    with open(os.path.join(staged, "1", "model.onnx"), "wb") as fh:
        fh.write(b"model")
        fail("writing")
    fail("written")


TARGETS = {"file": one_file, "two files": two_files, "folder": one_folder}


def make_existing(tmp_path, target: str) -> None:
    if target == "folder":
        (tmp_path / "repo" / "1").mkdir(parents=True)
        (tmp_path / "repo" / "1" / "model.onnx").write_bytes(OLD)
        (tmp_path / "repo" / "config.pbtxt").write_bytes(OLD)
    else:
        for name in ("out.bin", "out.bin.data") if target == "two files" else ("out.bin",):
            (tmp_path / name).write_bytes(OLD)


# -- failures: where and how a publication is cut short -----------------------------------------------

class Boom(Exception):
    pass


def raising(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


ENOSPC = OSError(errno.ENOSPC, "No space left on device")
FAILURES = {  # name -> (where: a point the writer reaches, or a function of cnndsl.io to break; exception)
    "full disk while writing": ("writing", ENOSPC),
    "permission denied while writing": ("writing", OSError(errno.EACCES, "Permission denied")),
    "interrupt while writing": ("writing", KeyboardInterrupt()),
    "interrupt after the first file": ("written out.bin.data", KeyboardInterrupt()),
    "a bug in the writer": ("written", Boom()),
    "read-only file system when staging": ("_make_staging", OSError(errno.EROFS, "Read-only file system")),
    "fsync fails": ("_sync", OSError(errno.EIO, "Input/output error")),
    "interrupt while syncing": ("_sync", KeyboardInterrupt()),
    "chmod fails": ("os.chmod", OSError(errno.EPERM, "Operation not permitted")),
    "rename fails": ("os.replace", OSError(errno.EXDEV, "Invalid cross-device link")),
    "interrupt while renaming": ("os.replace", KeyboardInterrupt()),
    "folder swap fails": ("os.rename", OSError(errno.EBUSY, "Device or resource busy")),
}


def arm(monkeypatch, where: str, exc):
    """Break ``where`` with ``exc``; returns the writer's fail(point) callback."""
    if where.startswith("os."):
        monkeypatch.setattr(f"cnndsl.io.{where}", raising(exc))
    elif where.startswith("_"):
        monkeypatch.setattr(io, where, raising(exc))

    def fail(point: str) -> None:
        if point == where:
            raise exc

    return fail


def applies(failure: str, target: str, existing: bool) -> bool:
    """Whether the failure can happen to this target: an existing folder is swapped with os.rename,
    everything else is moved in with os.replace; only two files have a first file."""
    where = FAILURES[failure][0]
    if where == "os.rename":
        return target == "folder" and existing
    if where == "os.replace":
        return not (target == "folder" and existing)
    return target == "two files" or where != "written out.bin.data"


CASES = [(f, t, e) for f in FAILURES for t in TARGETS for e in (False, True) if applies(f, t, e)]


@pytest.mark.parametrize("failure, target, existing", CASES,
                         ids=[f"{f}-{t}-{'existing' if e else 'new'}" for f, t, e in CASES])
def test_a_failure_publishes_nothing_and_leaves_nothing(tmp_path, monkeypatch, failure, target, existing):
    where, exc = FAILURES[failure]
    if existing:
        make_existing(tmp_path, target)
    before = snapshot(tmp_path)
    fail = arm(monkeypatch, where, exc)
    expected = type(exc) if isinstance(exc, (KeyboardInterrupt, Boom)) else CnnDslError
    with pytest.raises(expected):
        with io.publish(lambda e: CnnDslError(f"cannot write: {e.strerror}")) as pub:
            TARGETS[target](pub, tmp_path, fail)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


def test_an_os_error_becomes_the_writers_error(tmp_path):
    with pytest.raises(CnnDslError, match="cannot write the thing: No space left on device") as info:
        with io.publish(lambda e: CnnDslError(f"cannot write the thing: {e.strerror}", path="x")) as pub:
            pub.file(tmp_path / "x")
            raise ENOSPC
    assert info.value.path == "x" and os.listdir(tmp_path) == []
    with pytest.raises(OSError, match="No space"), io.publish() as pub:  # no error given: the OSError itself
        raise ENOSPC


@pytest.mark.parametrize("make", [lambda p: None, lambda p: os.mkdir(p / "gone")], ids=["missing", "a file"])
def test_staging_where_it_cannot_is_a_staging_error(tmp_path, make):
    folder = tmp_path / "gone"
    make(tmp_path)
    if folder.exists():
        os.rmdir(folder)
        folder.write_text("a file, not a folder")
    seen = []
    with pytest.raises(CnnDslError):
        with io.publish(lambda e: seen.append(e) or CnnDslError(str(e.strerror))) as pub:
            pub.file(folder / "out.bin")
    assert isinstance(seen[0], io.StagingError) and seen[0].errno in (errno.ENOENT, errno.ENOTDIR)


# -- what a clean publication gives ----------------------------------------------------------------------

@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("target", TARGETS)
def test_a_clean_publication_replaces_the_targets_and_leaves_no_staging(tmp_path, target, existing):
    if existing:
        make_existing(tmp_path, target)
    with io.publish() as pub:
        TARGETS[target](pub, tmp_path, lambda point: None)
    after = snapshot(tmp_path)
    assert not [p for p in after if io.MARK in p]
    if target == "folder":
        assert sorted(after) == ["repo", "repo/1", "repo/1/model.onnx"]  # the old folder, config and all, is gone
        assert (tmp_path / "repo" / "1" / "model.onnx").read_bytes() == b"model"
    else:
        assert OLD not in [content for content, _ in after.values()]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_new_targets_get_what_open_and_mkdir_give(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert io.umask() == mask
        io.write_bytes(str(tmp_path / "f"), b"x")
        with open(tmp_path / "plain", "wb"):
            pass
        with io.publish() as pub:
            pub.folder(tmp_path / "d")
        os.mkdir(tmp_path / "plain_dir")
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE(os.stat(tmp_path / name).st_mode) for name in ("f", "plain", "d", "plain_dir")}
    assert modes == {"f": 0o666 & ~mask, "plain": 0o666 & ~mask, "d": 0o777 & ~mask, "plain_dir": 0o777 & ~mask}


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755, 0o444])
def test_a_replaced_target_keeps_its_mode(tmp_path, mode):
    (tmp_path / "f").write_bytes(OLD)
    (tmp_path / "d").mkdir()
    os.chmod(tmp_path / "f", mode)
    os.chmod(tmp_path / "d", mode | 0o700)
    io.write_bytes(str(tmp_path / "f"), b"new")
    with io.publish() as pub:
        pub.folder(tmp_path / "d")
    assert (tmp_path / "f").read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == mode
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == mode | 0o700


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
def test_a_replaced_target_keeps_its_owner(tmp_path):
    (tmp_path / "f").write_bytes(OLD)
    os.chown(tmp_path / "f", 1234, 2345)
    io.write_bytes(str(tmp_path / "f"), b"new")
    st = os.stat(tmp_path / "f")
    assert (st.st_uid, st.st_gid) == (1234, 2345)


def test_a_symlink_target_is_replaced_not_followed(tmp_path):
    (tmp_path / "real").write_bytes(OLD)
    os.symlink("real", tmp_path / "link")
    io.write_bytes(str(tmp_path / "link"), b"new")
    assert (tmp_path / "real").read_bytes() == OLD and (tmp_path / "link").read_bytes() == b"new"
    assert not os.path.islink(tmp_path / "link")


def test_data_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    sync, replace, rename = io._sync, os.replace, os.rename
    monkeypatch.setattr(io, "_sync", lambda p: events.append(("sync", os.path.relpath(p, tmp_path))) or sync(p))
    monkeypatch.setattr(io.os, "replace", lambda a, b: events.append(("replace", os.path.basename(b))) or replace(a, b))
    monkeypatch.setattr(io.os, "rename", lambda a, b: events.append(("rename", os.path.basename(b))) or rename(a, b))
    with io.publish() as pub:
        data, model = pub.file(tmp_path / "m.onnx.data"), pub.file(tmp_path / "m.onnx")
        staged = pub.folder(tmp_path / "repo")
        (tmp_path / staged / "config.pbtxt").write_text("x")
    monkeypatch.undo()
    names = {os.path.basename(data): "data", os.path.basename(model): "model", os.path.basename(staged): "repo",
             os.path.join(os.path.basename(staged), "config.pbtxt"): "repo/config.pbtxt", ".": "folder"}
    assert [(what, names.get(path, path)) for what, path in events] == [
        ("sync", "data"), ("replace", "m.onnx.data"), ("sync", "model"), ("replace", "m.onnx"),
        ("sync", "repo/config.pbtxt"), ("sync", "repo"), ("replace", "repo"), ("sync", "folder")]


def test_an_early_flush_is_waited_for_and_the_file_synced_again(tmp_path, monkeypatch):
    """A file flushed early (in a thread, while the writer goes on) is published only once that
    fsync has ended, and synced again before its rename: it may have been written to since."""
    import threading

    events, sync, replace, release = [], io._sync, os.replace, threading.Event()

    def slow_sync(path):
        if threading.current_thread() is not threading.main_thread():
            release.wait(10)
            events.append("early sync")
        else:
            events.append("sync")
        sync(path)

    monkeypatch.setattr(io, "_sync", slow_sync)
    monkeypatch.setattr(io.os, "replace", lambda a, b: events.append("replace") or replace(a, b))
    with io.publish() as pub:
        staged = pub.file(tmp_path / "big.bin")
        Path(staged).write_bytes(b"early")
        pub.flush_early(staged)
        Path(staged).write_bytes(b"rewritten")
        events.append("writer done")
        release.set()
    assert events == ["writer done", "early sync", "sync", "replace", "sync"]  # the last: the folder
    assert (tmp_path / "big.bin").read_bytes() == b"rewritten"


def test_an_early_flush_that_fails_publishes_nothing(tmp_path, monkeypatch):
    def eio(path):
        raise OSError(errno.EIO, "Input/output error", path)

    with pytest.raises(CnnDslError, match="cannot write: Input/output error"):
        with io.publish(lambda e: CnnDslError(f"cannot write: {e.strerror}")) as pub:
            staged = pub.file(tmp_path / "big.bin")
            monkeypatch.setattr(io, "_sync", eio)
            pub.flush_early(staged)
    assert os.listdir(tmp_path) == []


def test_staging_names_are_recognisable_and_beside_the_target(tmp_path):
    names = []
    with io.publish() as pub:
        names.append(pub.file(tmp_path / "model.onnx"))
        names.append(pub.folder(tmp_path / "maps"))
        names.append(pub.file(tmp_path / ("x" * 250)))
    for name in names:
        assert os.path.dirname(name) == str(tmp_path)
        pattern = rf"\.(model\.onnx|maps|x{{96}})\.cnndsl-{os.getpid()}-[0-9a-f]{{8}}"
        assert re.fullmatch(pattern, os.path.basename(name))


def test_a_folder_swap_that_fails_puts_the_old_folder_back(tmp_path, monkeypatch):
    make_existing(tmp_path, "folder")
    before = snapshot(tmp_path)
    rename = os.rename
    calls = []

    def second_fails(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise KeyboardInterrupt
        rename(a, b)

    monkeypatch.setattr(io.os, "rename", second_fails)
    with pytest.raises(KeyboardInterrupt), io.publish() as pub:
        pub.folder(tmp_path / "repo")
    monkeypatch.undo()
    assert len(calls) == 3 and snapshot(tmp_path) == before  # aside, in (interrupted), back
