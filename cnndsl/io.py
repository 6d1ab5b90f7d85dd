"""Publishing files and folders atomically: each appears whole under its final name, or not at all.

A writer asks the publication for a staging path beside each target, writes there, and the
publication renames everything into place when the block ends cleanly::

    with publish(lambda exc: GraphError(f"cannot write the diagram: {exc.strerror}", path=path)) as pub:
        with open(pub.file(path), "wb") as fh:
            fh.write(data)

The rules, the same for every writer:

- Names: a staging file or folder is ``.NAME.cnndsl-<pid>-XXXXXXXX`` in the target's own folder,
  so the rename never crosses file systems and the left-overs of a killed process are recognisable.
- Durability: every staged file is fsynced before its rename (a staged folder: every file and
  folder in it); every folder that a rename changed is fsynced after the renames. A writer that
  has finished a large file while it still has work to do may start its fsync early
  (``flush_early``): it runs in the background, and the commit waits for it.
- Permissions: those a plain ``open`` (``mkdir``, for a folder) would give, 0o666 (0o777) less
  the umask; a file or folder that is replaced keeps its mode, and its owner where we may set it.
- Failure: on any exception or interrupt, inside the block or while publishing, the targets not
  yet published are as they were, and every staging name is removed.
- Order: targets are published in the order they were staged (a model's external data before
  the model that names it); a replaced folder is swapped out whole and its old copy removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

MARK = ".cnndsl-"  # in every staging name: `.NAME.cnndsl-<pid>-XXXXXXXX`
_BASE_CHARS = 96  # of NAME kept in a staging name, so that it stays within NAME_MAX (255 bytes)
_TRIES = 100
_STAGED = re.compile(r"\..*\.cnndsl-(\d+)-[0-9a-f]{8}", re.DOTALL)  # a staging name; group 1 is the pid


def _output_error(target, what: str, hint: str):
    from cnndsl.errors import CnnDslError

    return CnnDslError(f"the output {what}", path=os.fspath(target) or "''", hint=hint)


class StagingError(OSError):
    """A staging file or folder could not be made (a missing or read-only folder, a full disk)."""


_INPUTS: dict[tuple[int, int], str] = {}  # (device, inode) -> path, of every file this process reads


def reading(path: str | os.PathLike) -> None:
    """Note that this process reads ``path`` (a spec, weights, an image, a model): no publication
    may replace it, under any name (a hard link, a symlink, ./x)."""
    try:
        st = os.stat(path)
    except OSError:
        return
    _INPUTS[(st.st_dev, st.st_ino)] = os.fspath(path)


def input_kind(path: str | os.PathLike) -> str | None:
    """None for a regular file (or one that does not exist: the caller says so); else what it is
    (a FIFO, a device, a folder), which cnndsl refuses to read: a FIFO would block, a device
    (/dev/zero, /dev/urandom) never ends."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def forget_input(path: str | os.PathLike) -> None:
    """Note that this process no longer holds ``path`` as an input: a temporary copy it read and is about to
    remove (the playground's uploads), whose inode the file system will give to another file."""
    rewriting(path)


def rewriting(path: str | os.PathLike) -> None:
    """Note that the command replaces ``path``, an input it read, on purpose (`cnndsl fmt`)."""
    try:
        st = os.stat(path)
    except OSError:
        return
    _INPUTS.pop((st.st_dev, st.st_ino), None)


def _check_not_input(target: str) -> None:
    if not os.path.basename(os.path.abspath(target)) or not os.fspath(target):
        raise _output_error(target, "is not a file name", "name the output file")
    kind = input_kind(target)
    if kind is not None and kind != "a folder":
        raise _output_error(target, f"is {kind}, not a file cnndsl can replace", "write the output to a file")
    try:
        st = os.stat(target)
    except OSError:
        return
    source = _INPUTS.get((st.st_dev, st.st_ino))
    if source is not None:
        from cnndsl.errors import CnnDslError

        same = "" if os.path.abspath(source) == os.path.abspath(target) else f" (it is {source})"
        raise CnnDslError(f"the output is an input of this command{same}: refusing to overwrite it", path=target,
                          hint="write the output to another file (-o); cnndsl never replaces a file it reads")


def staging_name(path: str) -> str:
    """A fresh staging path for ``path``, in its folder: ``.NAME.cnndsl-<pid>-XXXXXXXX``."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base[:_BASE_CHARS]}{MARK}{os.getpid()}-{os.urandom(4).hex()}")


def _make_staging(path: str, folder: bool) -> str:
    """Make a new, private (0o600 / 0o700) staging file or folder for ``path``; returns its path."""
    for _ in range(_TRIES):
        staged = staging_name(path)
        try:
            if folder:
                os.mkdir(staged, 0o700)
            else:
                os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
            return staged
        except FileExistsError:
            continue
        except OSError as exc:
            raise StagingError(exc.errno, exc.strerror, exc.filename) from None
    raise StagingError(f"no free staging name beside {path}")  # pragma: no cover


def sweep(folder: str) -> list[str]:
    """Remove the staging files and folders that cnndsl processes which no longer run (killed by
    SIGKILL, a crash, a power cut) left in ``folder``; returns their paths. Only names of our own
    making, owned by this user, whose process is gone: a live writer's staging is never touched."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _STAGED.fullmatch(name)
        if match is None or _alive(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        try:
            if os.lstat(path).st_uid != os.geteuid():
                continue
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a pid at all: leave it
    return True


class Publication:
    """Targets staged so far and how to publish or discard them (see ``publish``)."""

    def __init__(self) -> None:
        self._staged: list[tuple[str, str, bool]] = []  # (staging path, target, is a folder), in order
        self._leftovers: list[str] = []  # staging paths to remove: unpublished ones, replaced folders
        self._swept: set[str] = set()  # folders cleared of dead processes' staging names
        self._early: list[tuple[threading.Thread, list[OSError]]] = []  # per early fsync: its thread, its error

    def file(self, path: str) -> str:
        """A staging file for the file ``path``, made empty now; write it (reopening it is fine)."""
        return self._stage(path, folder=False)

    def folder(self, path: str) -> str:
        """A staging folder for the folder ``path``, made empty now; fill it. An existing folder at
        ``path`` is replaced whole when published."""
        return self._stage(path, folder=True)

    def _stage(self, path: str, folder: bool) -> str:
        _check_not_input(path)
        parent = os.path.dirname(os.path.abspath(path))
        if parent not in self._swept:
            self._swept.add(parent)
            sweep(parent)
        staged = _make_staging(path, folder)
        self._staged.append((staged, os.path.abspath(path), folder))
        self._leftovers.append(staged)
        return staged

    def flush_early(self, staged: str) -> None:
        """Start the fsync of a staged file that is complete, in a thread, so that the writer's
        work before the publication overlaps the wait for the disk; ``commit`` waits for it (and
        syncs the file again, in case it was written to since)."""
        import threading

        failed: list[OSError] = []

        def run() -> None:
            try:
                _sync(staged)
            except OSError as exc:  # raised by commit, in the writer's thread
                failed.append(exc)

        thread = threading.Thread(target=run, name="cnndsl-flush", daemon=True)
        thread.start()
        self._early.append((thread, failed))

    def commit(self) -> None:
        """Publish each staged target, in order; then fsync the folders the renames changed."""
        for thread, failed in self._early:
            thread.join()
            if failed:
                raise failed[0]
        parents: list[str] = []
        for staged, target, folder in self._staged:
            if folder:
                _sync_tree(staged)
            else:
                _sync(staged)
            _keep_mode(staged, target, folder)
            if folder and os.path.isdir(target) and not os.path.islink(target):
                self._swap(staged, target)
            else:
                os.replace(staged, target)
            self._leftovers.remove(staged)
            if os.path.dirname(target) not in parents:
                parents.append(os.path.dirname(target))
        for parent in parents:
            _sync_folder(parent)

    def _swap(self, staged: str, target: str) -> None:
        """Replace the folder ``target`` by ``staged``: move the old one aside (removed after), move
        the new one in; put the old one back if that fails or is interrupted."""
        aside = staging_name(target)
        try:
            os.rename(target, aside)
            os.rename(staged, target)
        except BaseException:
            if os.path.lexists(aside) and not os.path.lexists(target):
                os.rename(aside, target)
            raise
        self._leftovers.append(aside)

    def discard(self) -> None:
        """Remove what is left staged (everything, unless published) and the replaced folders."""
        import shutil

        for path in reversed(self._leftovers):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        self._leftovers.clear()


@contextlib.contextmanager
def publish(error: Callable[[OSError], Exception] | None = None) -> Iterator[Publication]:
    """A publication: stage targets in the block; they are published when it ends cleanly, and
    discarded otherwise. ``error(exc)``, where given, is raised instead of an OSError from the
    block or from publishing (a StagingError where a staging name could not be made)."""
    pub = Publication()
    try:
        yield pub
        pub.commit()
    except OSError as exc:
        if error is None:
            raise
        raise error(exc) from None
    finally:
        pub.discard()


def write_bytes(path: str, data: bytes, error: Callable[[OSError], Exception] | None = None) -> None:
    """Publish ``data`` as the file ``path`` (see ``publish``)."""
    with publish(error) as pub, open(pub.file(path), "wb") as fh:
        fh.write(data)


def umask() -> int:
    """The process's umask, read without changing it where Linux tells it (/proc), else by setting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _keep_mode(staged: str, target: str, folder: bool) -> None:
    """Give ``staged`` the mode (and owner) of the ``target`` it replaces, or what open/mkdir gives."""
    try:
        old = os.lstat(target)
    except FileNotFoundError:
        old = None
    if old is None or stat.S_ISDIR(old.st_mode) != folder or stat.S_ISLNK(old.st_mode):
        os.chmod(staged, (0o777 if folder else 0o666) & ~umask())
        return
    new = os.lstat(staged)
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid) and hasattr(os, "chown"):
        with contextlib.suppress(OSError):  # only root may give a file away; others keep theirs
            os.chown(staged, old.st_uid, old.st_gid)
    os.chmod(staged, stat.S_IMODE(old.st_mode))  # after chown, which may clear setuid/setgid bits


def _sync(path: str) -> None:
    """fsync a staged file's data (and size) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(folder: str) -> None:
    """fsync every file in a staged folder, then every folder in it, deepest first."""
    for root, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                _sync(os.path.join(root, name))
        _sync_folder(root)


def _sync_folder(folder: str) -> None:
    """fsync a folder, so the renames in it last; best effort (some file systems refuse it, and
    what was renamed is already published)."""
    with contextlib.suppress(OSError):
        _sync(folder)
